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

metric_values as (

    select
        score_month,
        partner_id,
        {{- pci_pivot('metric', summed_metrics, 'amount', aggregate='sum') }}
    from contributions
    group by score_month, partner_id

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

)

-- points, pci_score and level [D-3] from the values: macro pci_score_rows
-- (seeds pci_metrics and pci_levels; shared with pci_next_month_projection)
{{ pci_score_rows('values_per_partner', ['score_month', 'partner_id']) }}
