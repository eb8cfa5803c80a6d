-- MAU growth per score month M and partner [D-9]: current = MAU(p, M),
-- baseline = MAU(p, M-12) with the partner's credits as they were at M-12
-- (0 when M-12 is not landed). Eligible when the baseline is at least
-- mau_growth_min_baseline of seed pci_rule_constants; growth =
-- (current - baseline) / baseline, null when not eligible.
-- The partner's MAU is summed exactly (HUGEINT) and kept as the mart's BIGINT:
-- that holds the sum of 9.2 million subscriptions at the largest MAU of the
-- contract (10^12 - 1) in one month; a larger sum fails the build rather than wrap.
with score_months as (

    select score_month from {{ ref('int_score_months') }}

),

rule_constants as (

    select mau_growth_min_baseline from {{ ref('pci_rule_constants') }}

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
    combined.score_month,
    combined.partner_id,
    combined.mau_current,
    combined.mau_baseline,
    combined.mau_baseline >= rule_constants.mau_growth_min_baseline as is_eligible,
    case
        when combined.mau_baseline >= rule_constants.mau_growth_min_baseline
            then cast(combined.mau_current - combined.mau_baseline as double)
                / cast(combined.mau_baseline as double)
    end as mau_growth
from combined
cross join rule_constants
