-- For every score month, partner and metric, the contributions sum to the
-- metric value of pci_monthly_scores (mau_growth: the 'current' rows sum to
-- mau_current and the 'baseline' rows to mau_baseline). Returns the
-- disagreeing (score_month, partner_id, metric) with both values.
{%- set count_metrics = pci_metric_names() | reject('in', ['net_new_revenue', 'mau_growth']) | list %}
with contributions as (

    select
        score_month,
        partner_id,
        case when metric = 'mau_growth' then 'mau_' || detail else metric end as metric,
        sum(amount) as contributed
    from {{ ref('pci_metric_contributions') }}
    group by 1, 2, 3

),

scores as (

    select * from {{ ref('pci_monthly_scores') }}

),

metric_values as (

    select
        score_month,
        partner_id,
        'net_new_revenue' as metric,
        cast(net_new_revenue_usd as decimal(38, 6)) as metric_value
    from scores
    {% for column in count_metrics + ['mau_current', 'mau_baseline'] -%}
        union all
        select score_month, partner_id, '{{ column }}', {{ column }}
        from scores
    {% endfor %}

)

select
    coalesce(metric_values.score_month, contributions.score_month) as score_month,
    coalesce(metric_values.partner_id, contributions.partner_id) as partner_id,
    coalesce(metric_values.metric, contributions.metric) as metric,
    metric_values.metric_value,
    contributions.contributed
from metric_values
full outer join contributions
    on contributions.score_month = metric_values.score_month
    and contributions.partner_id = metric_values.partner_id
    and contributions.metric = metric_values.metric
where coalesce(metric_values.metric_value, 0)
    <> case
        when coalesce(metric_values.metric, contributions.metric) = 'net_new_revenue'
            then round(coalesce(contributions.contributed, 0), 2)
        else coalesce(contributions.contributed, 0)
    end
