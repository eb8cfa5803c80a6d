{%- set partition = {'column': 'add_month', 'lookback': 1, 'horizon': -23} -%}
{{ config(pci_partitioned(partition)) }}
-- Credited customer adds: an add of tenant t in m is credited (+1) to every
-- partner transaction-family credited in m on any of t's subscriptions that
-- count toward its seats in m (paid, qualifying product, qualifying channel,
-- with or without seats). No credited partner: the add came direct.
with adds as (

    select tenant_id, event_month as add_month
    from {{ ref('int_customer_seat_events') }}
    where event_type = 'add'
        and {{ pci_partition_filter('event_month', partition) }}

),

counting_subscriptions as (

    select month, subscription_id, tenant_id
    from {{ ref('int_subscription_months') }}
    where is_paid and is_qualifying_product and is_qualifying_channel
        and {{ pci_partition_filter('month', partition) }}

),

credits as (

    select month, subscription_id, partner_id
    from {{ ref('int_subscription_partner_credits') }}
    where metric_family = 'transaction'
        and {{ pci_partition_filter('month', partition) }}

)

select distinct
    adds.tenant_id,
    adds.add_month,
    credits.partner_id
from adds
inner join counting_subscriptions
    on counting_subscriptions.month = adds.add_month
    and counting_subscriptions.tenant_id = adds.tenant_id
inner join credits
    on credits.month = counting_subscriptions.month
    and credits.subscription_id = counting_subscriptions.subscription_id
