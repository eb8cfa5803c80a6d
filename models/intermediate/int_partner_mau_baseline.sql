-- MAU growth per score month M and partner [D-9]: current = MAU(p, M),
-- baseline = MAU(p, M-12) with the partner's credits as they were at M-12
-- (0 when M-12 is not landed). Eligible when baseline >= 50; growth =
-- (current - baseline) / baseline, null when not eligible.
-- The partner's MAU is summed exactly (HUGEINT) and kept as the mart's BIGINT:
-- that holds the sum of 9.2 million subscriptions at the largest MAU of the
-- contract (10^12 - 1) in one month; a larger sum fails the build rather than wrap.
with score_months as (

    select score_month from {{ ref('int_score_months') }}

),

partner_mau as (

    select month, partner_id, sum(monthly_active_users) as monthly_active_users
    from {{ ref('int_partner_subscription_mau') }}
    group by month, partner_id

),

current_mau as (

    select score_months.score_month, partner_mau.partner_id, partner_mau.monthly_active_users
    from score_months
    inner join partner_mau
        on partner_mau.month = score_months.score_month

),

baseline_mau as (

    select score_months.score_month, partner_mau.partner_id, partner_mau.monthly_active_users
    from score_months
    inner join partner_mau
        on partner_mau.month = {{ pci_add_months('score_months.score_month', -12) }}

),

combined as (

    select
        coalesce(current_mau.score_month, baseline_mau.score_month) as score_month,
        coalesce(current_mau.partner_id, baseline_mau.partner_id) as partner_id,
        cast(coalesce(current_mau.monthly_active_users, 0) as bigint) as mau_current,
        cast(coalesce(baseline_mau.monthly_active_users, 0) as bigint) as mau_baseline
    from current_mau
    full outer join baseline_mau
        on baseline_mau.score_month = current_mau.score_month
        and baseline_mau.partner_id = current_mau.partner_id

)

select
    score_month,
    partner_id,
    mau_current,
    mau_baseline,
    mau_baseline >= 50 as is_eligible,
    case
        when mau_baseline >= 50
            then cast(mau_current - mau_baseline as double) / cast(mau_baseline as double)
    end as mau_growth
from combined
