-- New deployments [D-8]: per score month M and partner, the distinct tenants
-- with is_production true in M that have at least one crossed, paid (in M),
-- qualifying-product subscription (any channel) on which the partner is
-- usage-family credited in M.
with crossings as (

    select * from {{ ref('int_deployment_crossings') }}

),

subscription_months as (

    select * from {{ ref('int_subscription_months') }}
    where is_paid and is_qualifying_product
        and {{ pci_month_horizon('month', 0) }}

),

credits as (

    select month, subscription_id, partner_id
    from {{ ref('int_subscription_partner_credits') }}
    where metric_family = 'usage'
        and {{ pci_month_horizon('month', 0) }}

),

tenants as (

    select * from {{ ref('stg_partner_center__tenants') }}
    where is_production
        and {{ pci_month_horizon('snapshot_month', 0) }}

),

crossing_credits as (

    select distinct
        crossings.score_month,
        credits.partner_id,
        subscription_months.tenant_id,
        crossings.subscription_id
    from crossings
    inner join subscription_months
        on subscription_months.month = crossings.score_month
        and subscription_months.subscription_id = crossings.subscription_id
    inner join credits
        on credits.month = crossings.score_month
        and credits.subscription_id = crossings.subscription_id
    inner join tenants
        on tenants.snapshot_month = crossings.score_month
        and tenants.tenant_id = subscription_months.tenant_id

)

select
    score_month,
    partner_id,
    tenant_id,
    {{ dbt.listagg('subscription_id', "','", 'order by subscription_id') }} as crossing_subscriptions
from crossing_credits
group by score_month, partner_id, tenant_id
