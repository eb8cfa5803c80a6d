-- Every points column lies between 0 and the metric's max_points in seed
-- pci_metrics. Returns the offending (score_month, partner_id, metric, points).
with scores as (

    select * from {{ ref('pci_monthly_scores') }}

),

points as (

    {% for metric in pci_metric_names() -%}
        {{ 'union all' if not loop.first }}
        select score_month, partner_id, '{{ metric }}' as metric, points_{{ metric }} as points
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
