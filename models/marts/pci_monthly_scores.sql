-- The scores: one row per score month M (landed, between the vars) and
-- partner of the export of M, with the six metric values, their points,
-- pci_score, competency level [D-3] and window_complete. Exactly the columns
-- and types of the output contract (raw-exports.md, section 4), enforced by
-- the model's contract (pci_monthly_scores.yml).
{%- set metric_names = pci_metric_names() %}
{#- the metrics whose value is the sum of their contributions' amount #}
{%- set summed_metrics = metric_names | reject('equalto', 'mau_growth') | list %}
{#- the metrics whose value is a count (points from value / 1) #}
{%- set count_metrics = summed_metrics | reject('equalto', 'net_new_revenue') | list %}

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
        {{- pci_pivot('metric', summed_metrics, 'amount', aggregate='sum') }}
    from contributions
    group by score_month, partner_id

),

rules as (

    -- one row: <metric>_threshold and <metric>_max_points of every metric
    select
        {{- pci_pivot('metric', metric_names, 'threshold', suffix='_threshold') }},
        {{- pci_pivot('metric', metric_names, 'max_points', suffix='_max_points') }}
    from metrics

),

values_per_partner as (

    select
        score_months.score_month,
        partners.partner_id,
        cast(round(coalesce(metric_values.net_new_revenue, 0), 2) as decimal(18, 2)) as net_new_revenue_usd,
        {% for metric in count_metrics -%}
            cast(coalesce(metric_values.{{ metric }}, 0) as integer) as {{ metric }},
        {% endfor -%}
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
        -- revenue in cents: value = cents / 100
        {{ pci_points(
            'values_per_partner.net_new_revenue_usd * 100', '100',
            'rules.net_new_revenue_threshold', 'rules.net_new_revenue_max_points'
        ) }} as points_net_new_revenue,
        {% for metric in count_metrics -%}
            {{ pci_points(
                'values_per_partner.' ~ metric, '1',
                'rules.' ~ metric ~ '_threshold', 'rules.' ~ metric ~ '_max_points'
            ) }} as points_{{ metric }},
        {% endfor -%}
        -- growth = (current - baseline) / baseline, 0 points when not eligible
        case
            when values_per_partner.is_mau_eligible
                then {{ pci_points(
                    'values_per_partner.mau_current - values_per_partner.mau_baseline',
                    'case when values_per_partner.is_mau_eligible then values_per_partner.mau_baseline else 1 end',
                    'rules.mau_growth_threshold', 'rules.mau_growth_max_points'
                ) }}
            else cast(0 as decimal(5, 2))
        end as points_mau_growth
    from values_per_partner
    cross join rules

),

scored as (

    select
        points.*,
        cast(
            {% for metric in metric_names -%}
                {{ '+ ' if not loop.first }}points.points_{{ metric }}
            {% endfor -%}
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
    on level_bands.min_score <= scored.pci_score
    and (level_bands.next_min_score is null or level_bands.next_min_score > scored.pci_score)
