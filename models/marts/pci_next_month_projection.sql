-- The next month's projection: one row per score month M (landed, between the
-- vars) and partner of the export of M, with what the score of M+1 would be
-- under the rules if the export of M+1 were the export of M without billing
-- lines (same partners, tenants, subscriptions, associations, people, exam
-- passes, seats and MAU). Computed from months <= M only; M+1 is never read.
-- Per metric (docs/rules.md, "Next month's projection"):
--   revenue: the credited lines billed in M-10 .. M (M-11 leaves the window,
--     M+1 has no lines);
--   customer adds: the credited adds and debited losses of M-10 .. M (M+1 has
--     the seats of M, so no add or loss);
--   consultants, developers: the affiliations and exam passes of the export
--     of M judged at EOM(M+1) [D-1, D-7];
--   deployments: MAU below the threshold at M-11 and at or above it in some
--     month of M-10 .. M (MAU of M+1 = MAU of M), the subscriptions, tenants
--     and associations of M, credits judged at EOM(M+1) [D-2, D-8];
--   MAU growth: current = MAU of M on the usage credits judged at EOM(M+1);
--     baseline = the partner's MAU at M-11 with the credits of M-11 [D-9].
-- window_complete: all of M-11 .. M landed (M+1 counts as landed).
-- Same columns and types as pci_monthly_scores plus projected_month, enforced
-- by the model's contract (pci_next_month_projection.yml).
with score_months as (

    select
        score_month,
        {{ pci_add_months('score_month', 1) }} as projected_month
    from {{ ref('int_score_months') }}
    where is_landed

),

landed_months as (

    select month from {{ ref('int_landed_months') }}

),

rule_constants as (

    select deployment_mau_threshold, mau_growth_min_baseline from {{ ref('pci_rule_constants') }}

),

projection_windows as (

    -- the projection's window M-10 .. M+1 and baseline M-11: M+1 is the
    -- hypothetical export, so the window is complete when M-11 .. M are landed
    select
        score_months.score_month,
        score_months.projected_month,
        count(landed_months.month) = 12 as window_complete
    from score_months
    left join landed_months
        on landed_months.month >= {{ pci_add_months('score_months.score_month', -11) }}
        and landed_months.month <= score_months.score_month
    group by score_months.score_month, score_months.projected_month

),

partners as (

    select snapshot_month, partner_id from {{ ref('stg_partner_center__partners') }}
    where {{ pci_month_horizon('snapshot_month', 0) }}

),

-- the windows' months of the kept revenue partitions
revenue_credits as (

    select * from {{ ref('int_partner_revenue_credits') }}
    where {{ pci_month_horizon('billing_month', -10) }}

),

-- metric 1: lines billed in M-10 .. M, credited in their billing month [D-5]
revenue as (

    select
        score_months.score_month,
        revenue.partner_id,
        sum(revenue.revenue_usd) as net_new_revenue
    from score_months
    inner join revenue_credits as revenue
        on revenue.billing_month >= {{ pci_add_months('score_months.score_month', -10) }}
        and revenue.billing_month <= score_months.score_month
    group by score_months.score_month, revenue.partner_id

),

-- metric 2: adds and losses of M-10 .. M [D-6]; M+1 has the seats of M: no event
customer_events as (

    select
        score_months.score_month,
        adds.partner_id,
        1 as amount
    from score_months
    inner join {{ ref('int_customer_add_credits') }} as adds
        on adds.add_month >= {{ pci_add_months('score_months.score_month', -10) }}
        and adds.add_month <= score_months.score_month
    union all
    select
        score_months.score_month,
        losses.partner_id,
        -1 as amount
    from score_months
    inner join {{ ref('int_customer_loss_debits') }} as losses
        on losses.loss_month >= {{ pci_add_months('score_months.score_month', -10) }}
        and losses.loss_month <= score_months.score_month

),

customer_adds as (

    select score_month, partner_id, sum(amount) as net_customer_adds
    from customer_events
    group by score_month, partner_id

),

-- metrics 3 and 4: the people and exam passes of the export of M at EOM(M+1)
people as (

    select * from {{ ref('stg_partner_center__partner_people') }}
    where {{ pci_month_horizon('snapshot_month', 0) }}

),

exam_passes as (

    select * from {{ ref('stg_partner_center__exam_passes') }}
    where {{ pci_month_horizon('snapshot_month', 0) }}

),

combinations as (

    select * from {{ ref('certification_exam_combinations') }}

),

next_month_affiliations as (

    select snapshot_month as month, person_id, partner_id
    from people
    where {{ pci_in_effect(pci_add_months('snapshot_month', 1)) }}

),

next_month_active_exams as (

    select distinct snapshot_month as month, person_id, exam_code
    from exam_passes
    where {{ pci_exam_active(pci_add_months('snapshot_month', 1)) }}

),

certified_people as (

    {{ pci_certified_people('next_month_affiliations', 'next_month_active_exams', 'combinations') }}

),

people_counts as (

    select
        month as score_month,
        partner_id,
        {{- pci_pivot('metric', ['functional_consultants', 'developers'], 'person_id', aggregate='count') }}
    from certified_people
    group by month, partner_id

),

-- metrics 5 and 6: the subscriptions of M (paid and qualifying in M+1 as in M),
-- their associations judged at EOM(M+1), the usage family [D-2]
subscription_months as (

    select * from {{ ref('int_subscription_months') }}
    where {{ pci_month_horizon('month', 0) }}

),

associations as (

    select * from {{ ref('stg_partner_center__partner_associations') }}
    where {{ pci_month_horizon('snapshot_month', 0) }}

),

next_month_in_effect as (

    select
        associations.snapshot_month as month,
        associations.subscription_id,
        associations.partner_id,
        associations.association_type,
        associations.cpor_incentive
    from associations
    inner join subscription_months
        on subscription_months.month = associations.snapshot_month
        and subscription_months.subscription_id = associations.subscription_id
    where subscription_months.is_paid
        and {{ pci_in_effect(pci_add_months('associations.snapshot_month', 1)) }}

),

next_month_credit_flags as (

    {{ pci_credit_flags('next_month_in_effect') }}

),

next_month_usage_credits as (

    -- paid qualifying-product subscriptions (any channel) a partner is usage-credited on
    select
        next_month_credit_flags.month,
        next_month_credit_flags.subscription_id,
        next_month_credit_flags.partner_id,
        subscription_months.tenant_id
    from next_month_credit_flags
    inner join subscription_months
        on subscription_months.month = next_month_credit_flags.month
        and subscription_months.subscription_id = next_month_credit_flags.subscription_id
    where next_month_credit_flags.is_usage_credited
        and subscription_months.is_qualifying_product

),

mau as (

    select * from {{ ref('stg_partner_center__mau_snapshots') }}
    -- the projection's baselines and windows: M-11 .. M
    where {{ pci_month_horizon('snapshot_month', -11) }}

),

window_peaks as (

    -- subscriptions at or above the threshold in some month of M-10 .. M
    -- (the MAU of M+1 is the MAU of M)
    select
        score_months.score_month,
        mau.subscription_id
    from score_months
    cross join rule_constants
    inner join mau
        on mau.snapshot_month >= {{ pci_add_months('score_months.score_month', -10) }}
        and mau.snapshot_month <= score_months.score_month
    where mau.monthly_active_users >= rule_constants.deployment_mau_threshold
    group by score_months.score_month, mau.subscription_id

),

crossings as (

    -- ... and below it at M-11 (no row, or M-11 not landed: 0)
    select
        window_peaks.score_month,
        window_peaks.subscription_id
    from window_peaks
    cross join rule_constants
    left join mau as baseline
        on baseline.snapshot_month = {{ pci_add_months('window_peaks.score_month', -11) }}
        and baseline.subscription_id = window_peaks.subscription_id
    where coalesce(baseline.monthly_active_users, 0) < rule_constants.deployment_mau_threshold

),

production_tenants as (

    select snapshot_month, tenant_id from {{ ref('stg_partner_center__tenants') }}
    where is_production
        and {{ pci_month_horizon('snapshot_month', 0) }}

),

deployments as (

    select
        next_month_usage_credits.month as score_month,
        next_month_usage_credits.partner_id,
        count(distinct next_month_usage_credits.tenant_id) as new_deployments
    from next_month_usage_credits
    inner join crossings
        on crossings.score_month = next_month_usage_credits.month
        and crossings.subscription_id = next_month_usage_credits.subscription_id
    inner join production_tenants
        on production_tenants.snapshot_month = next_month_usage_credits.month
        and production_tenants.tenant_id = next_month_usage_credits.tenant_id
    group by next_month_usage_credits.month, next_month_usage_credits.partner_id

),

mau_current as (

    select
        next_month_usage_credits.month as score_month,
        next_month_usage_credits.partner_id,
        sum(coalesce(mau.monthly_active_users, 0)) as monthly_active_users
    from next_month_usage_credits
    left join mau
        on mau.snapshot_month = next_month_usage_credits.month
        and mau.subscription_id = next_month_usage_credits.subscription_id
    group by next_month_usage_credits.month, next_month_usage_credits.partner_id

),

mau_baseline as (

    -- the partner's MAU at M-11 with its credits of M-11 [D-9]
    select
        score_months.score_month,
        partner_mau.partner_id,
        sum(partner_mau.monthly_active_users) as monthly_active_users
    from score_months
    inner join {{ ref('int_partner_subscription_mau') }} as partner_mau
        on partner_mau.month = {{ pci_add_months('score_months.score_month', -11) }}
    group by score_months.score_month, partner_mau.partner_id

),

values_per_partner as (

    select
        projection_windows.score_month,
        projection_windows.projected_month,
        partners.partner_id,
        cast(round(coalesce(revenue.net_new_revenue, 0), 2) as decimal(18, 2)) as net_new_revenue_usd,
        cast(coalesce(customer_adds.net_customer_adds, 0) as integer) as net_customer_adds,
        cast(coalesce(people_counts.functional_consultants, 0) as integer) as functional_consultants,
        cast(coalesce(people_counts.developers, 0) as integer) as developers,
        cast(coalesce(deployments.new_deployments, 0) as integer) as new_deployments,
        cast(coalesce(mau_baseline.monthly_active_users, 0) as bigint) as mau_baseline,
        cast(coalesce(mau_current.monthly_active_users, 0) as bigint) as mau_current,
        projection_windows.window_complete
    from projection_windows
    inner join partners
        on partners.snapshot_month = projection_windows.score_month
    left join revenue
        on revenue.score_month = projection_windows.score_month
        and revenue.partner_id = partners.partner_id
    left join customer_adds
        on customer_adds.score_month = projection_windows.score_month
        and customer_adds.partner_id = partners.partner_id
    left join people_counts
        on people_counts.score_month = projection_windows.score_month
        and people_counts.partner_id = partners.partner_id
    left join deployments
        on deployments.score_month = projection_windows.score_month
        and deployments.partner_id = partners.partner_id
    left join mau_baseline
        on mau_baseline.score_month = projection_windows.score_month
        and mau_baseline.partner_id = partners.partner_id
    left join mau_current
        on mau_current.score_month = projection_windows.score_month
        and mau_current.partner_id = partners.partner_id

),

values_with_growth as (

    -- eligible for growth when the baseline reaches the seed's minimum
    select
        values_per_partner.*,
        values_per_partner.mau_baseline >= rule_constants.mau_growth_min_baseline as is_mau_eligible,
        case
            when values_per_partner.mau_baseline >= rule_constants.mau_growth_min_baseline
                then cast(values_per_partner.mau_current - values_per_partner.mau_baseline as double)
                    / cast(values_per_partner.mau_baseline as double)
        end as mau_growth
    from values_per_partner
    cross join rule_constants

)

-- points, pci_score and level [D-3] exactly as pci_monthly_scores: macro pci_score_rows
{{ pci_score_rows('values_with_growth', ['score_month', 'projected_month', 'partner_id']) }}
