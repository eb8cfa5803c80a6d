-- Subscriptions that crossed the deployment threshold for score month M:
-- MAU(M-12) < 5 (no row, a subscription that did not exist, or a baseline
-- month that is not landed all count as < 5) and MAU >= 5 in at least one
-- month of M-11 .. M.
with score_months as (

    select score_month from {{ ref('int_score_months') }}

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
    inner join mau
        on mau.snapshot_month >= {{ pci_add_months('score_months.score_month', -11) }}
        and mau.snapshot_month <= score_months.score_month
    where mau.monthly_active_users >= 5
    group by score_months.score_month, mau.subscription_id

)

select
    window_peaks.score_month,
    window_peaks.subscription_id,
    window_peaks.first_month_at_threshold,
    window_peaks.peak_mau,
    coalesce(baseline.monthly_active_users, 0) as baseline_mau
from window_peaks
left join mau as baseline
    on baseline.snapshot_month = {{ pci_add_months('window_peaks.score_month', -12) }}
    and baseline.subscription_id = window_peaks.subscription_id
where coalesce(baseline.monthly_active_users, 0) < 5
