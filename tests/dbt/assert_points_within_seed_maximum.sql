-- Every points column of the scores and of the next month's projection lies
-- between 0 and the metric's max_points in seed pci_metrics. Returns the
-- offending (mart, score_month, partner_id, metric, points).
{%- set points_columns = [] %}
{%- for metric in pci_metric_names() %}{% do points_columns.append('points_' ~ metric) %}{% endfor %}

with scores as (

    select 'pci_monthly_scores' as mart, score_month, partner_id, {{ points_columns | join(', ') }}
    from {{ ref('pci_monthly_scores') }}
    union all
    select 'pci_next_month_projection' as mart, score_month, partner_id, {{ points_columns | join(', ') }}
    from {{ ref('pci_next_month_projection') }}

),

points as (

    {% for metric in pci_metric_names() -%}
        {{ 'union all' if not loop.first }}
        select mart, score_month, partner_id, '{{ metric }}' as metric, points_{{ metric }} as points
        from scores
    {% endfor %}
)

select points.*, metrics.max_points
from points
left join {{ ref('pci_metrics') }} as metrics
    on metrics.metric = points.metric
where
    metrics.metric is null
    or points.points is null
    or points.points < 0
    or points.points > metrics.max_points
