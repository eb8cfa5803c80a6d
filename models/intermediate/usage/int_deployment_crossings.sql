-- Subscriptions that crossed the deployment threshold for score month M: MAU
-- at M-12 below the threshold (no row, a subscription that did not exist, or
-- a baseline month that is not landed all count as below) and MAU at or above
-- it in at least one month of M-11 .. M. The threshold is
-- deployment_mau_threshold of seed pci_rule_constants.
with score_months as (

    select score_month from {{ ref('int_score_months') }}

),

rule_constants as (

    select deployment_mau_threshold from {{ ref('pci_rule_constants') }}

),

mau as (

    select * from {{ ref('stg_partner_center__mau_snapshots') }}
    -- baselines and windows of the score range: M-12 .. M
    where {{ pci_month_horizon('snapshot_month', -12) }}

),

window_peaks as (

    select
        score_months.score_month,
        mau.subscription_id,
        min(mau.snapshot_month) as first_month_at_threshold,
        max(mau.monthly_active_users) as peak_mau
    from score_months
    cross join rule_constants
    inner join mau
        on mau.snapshot_month >= {{ pci_add_months('score_months.score_month', -11) }}
        and mau.snapshot_month <= score_months.score_month
    where mau.monthly_active_users >= rule_constants.deployment_mau_threshold
    group by score_months.score_month, mau.subscription_id

)

select
    window_peaks.score_month,
    window_peaks.subscription_id,
    window_peaks.first_month_at_threshold,
    window_peaks.peak_mau,
    coalesce(baseline.monthly_active_users, 0) as baseline_mau
from window_peaks
cross join rule_constants
left join mau as baseline
    on baseline.snapshot_month = {{ pci_add_months('window_peaks.score_month', -12) }}
    and baseline.subscription_id = window_peaks.subscription_id
where coalesce(baseline.monthly_active_users, 0) < rule_constants.deployment_mau_threshold
