-- Every points column lies between 0 and the metric's max_points in seed
-- pci_metrics. Returns the offending (score_month, partner_id, metric, points).
with scores as (

    select * from {{ ref('pci_monthly_scores') }}

),

points as (

    select score_month, partner_id, 'net_new_revenue' as metric, points_net_new_revenue as points from scores
    union all
    select score_month, partner_id, 'net_customer_adds', points_net_customer_adds from scores
    union all
    select score_month, partner_id, 'functional_consultants', points_functional_consultants from scores
    union all
    select score_month, partner_id, 'developers', points_developers from scores
    union all
    select score_month, partner_id, 'new_deployments', points_new_deployments from scores
    union all
    select score_month, partner_id, 'mau_growth', points_mau_growth from scores

)

select points.*, metrics.max_points
from points
left join {{ ref('pci_metrics') }} as metrics
    on metrics.metric = points.metric
where metrics.metric is null
   or points.points is null
   or points.points < 0
   or points.points > metrics.max_points
