-- The scores: one row per score month M (landed, between the vars) and
-- partner of the export of M, with the six metric values, their points,
-- pci_score, competency level [D-3] and window_complete. Exactly the columns
-- and types of the output contract (raw-exports.md, section 4).
with score_months as (

    select score_month, window_complete from {{ ref('int_score_months') }}
    where is_landed

),

partners as (

    select snapshot_month, partner_id from {{ ref('stg_partner_center__partners') }}
    where {{ pci_month_horizon('snapshot_month', 0) }}

),

contributions as (

    select * from {{ ref('pci_metric_contributions') }}

),

mau as (

    select * from {{ ref('int_partner_mau_baseline') }}

),

metrics as (

    select * from {{ ref('pci_metrics') }}

),

levels as (

    select * from {{ ref('pci_levels') }}

),

level_bands as (

    select
        level,
        min_score,
        lead(min_score) over (order by min_score) as next_min_score
    from levels

),

metric_values as (

    select
        score_month,
        partner_id,
        sum(case when metric = 'net_new_revenue' then amount end) as net_new_revenue,
        sum(case when metric = 'net_customer_adds' then amount end) as net_customer_adds,
        sum(case when metric = 'functional_consultants' then amount end) as functional_consultants,
        sum(case when metric = 'developers' then amount end) as developers,
        sum(case when metric = 'new_deployments' then amount end) as new_deployments
    from contributions
    group by score_month, partner_id

),

rules as (

    select
        max(case when metric = 'net_new_revenue' then threshold end) as revenue_threshold,
        max(case when metric = 'net_new_revenue' then max_points end) as revenue_max_points,
        max(case when metric = 'net_customer_adds' then threshold end) as adds_threshold,
        max(case when metric = 'net_customer_adds' then max_points end) as adds_max_points,
        max(case when metric = 'functional_consultants' then threshold end) as consultants_threshold,
        max(case when metric = 'functional_consultants' then max_points end) as consultants_max_points,
        max(case when metric = 'developers' then threshold end) as developers_threshold,
        max(case when metric = 'developers' then max_points end) as developers_max_points,
        max(case when metric = 'new_deployments' then threshold end) as deployments_threshold,
        max(case when metric = 'new_deployments' then max_points end) as deployments_max_points,
        max(case when metric = 'mau_growth' then threshold end) as growth_threshold,
        max(case when metric = 'mau_growth' then max_points end) as growth_max_points
    from metrics

),

values_per_partner as (

    select
        score_months.score_month,
        partners.partner_id,
        cast(round(coalesce(metric_values.net_new_revenue, 0), 2) as decimal(18, 2)) as net_new_revenue_usd,
        cast(coalesce(metric_values.net_customer_adds, 0) as integer) as net_customer_adds,
        cast(coalesce(metric_values.functional_consultants, 0) as integer) as functional_consultants,
        cast(coalesce(metric_values.developers, 0) as integer) as developers,
        cast(coalesce(metric_values.new_deployments, 0) as integer) as new_deployments,
        cast(coalesce(mau.mau_baseline, 0) as bigint) as mau_baseline,
        cast(coalesce(mau.mau_current, 0) as bigint) as mau_current,
        coalesce(mau.is_eligible, false) as is_mau_eligible,
        cast(mau.mau_growth as double) as mau_growth,
        score_months.window_complete
    from score_months
    inner join partners
        on partners.snapshot_month = score_months.score_month
    left join metric_values
        on metric_values.score_month = score_months.score_month
        and metric_values.partner_id = partners.partner_id
    left join mau
        on mau.score_month = score_months.score_month
        and mau.partner_id = partners.partner_id

),

points as (

    select
        values_per_partner.*,
        {{ pci_points('net_new_revenue_usd * 100', '100', 'rules.revenue_threshold', 'rules.revenue_max_points') }} as points_net_new_revenue,
        {{ pci_points('net_customer_adds', '1', 'rules.adds_threshold', 'rules.adds_max_points') }} as points_net_customer_adds,
        {{ pci_points('functional_consultants', '1', 'rules.consultants_threshold', 'rules.consultants_max_points') }} as points_functional_consultants,
        {{ pci_points('developers', '1', 'rules.developers_threshold', 'rules.developers_max_points') }} as points_developers,
        {{ pci_points('new_deployments', '1', 'rules.deployments_threshold', 'rules.deployments_max_points') }} as points_new_deployments,
        case
            when is_mau_eligible
                then {{ pci_points('mau_current - mau_baseline', 'case when is_mau_eligible then mau_baseline else 1 end', 'rules.growth_threshold', 'rules.growth_max_points') }}
            else cast(0 as decimal(5, 2))
        end as points_mau_growth
    from values_per_partner
    cross join rules

),

scored as (

    select
        points.*,
        cast(
            points_net_new_revenue + points_net_customer_adds + points_functional_consultants
            + points_developers + points_new_deployments + points_mau_growth
            as decimal(5, 2)
        ) as pci_score
    from points

)

select
    scored.score_month,
    scored.partner_id,
    scored.net_new_revenue_usd,
    scored.net_customer_adds,
    scored.functional_consultants,
    scored.developers,
    scored.new_deployments,
    scored.mau_baseline,
    scored.mau_current,
    scored.mau_growth,
    scored.points_net_new_revenue,
    scored.points_net_customer_adds,
    scored.points_functional_consultants,
    scored.points_developers,
    scored.points_new_deployments,
    scored.points_mau_growth,
    scored.pci_score,
    cast(level_bands.level as varchar) as competency_level,
    scored.window_complete
from scored
inner join level_bands
    on scored.pci_score >= level_bands.min_score
    and (level_bands.next_min_score is null or scored.pci_score < level_bands.next_min_score)
