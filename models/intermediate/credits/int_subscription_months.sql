{%- set partition = {'column': 'month', 'lookback': 0, 'horizon': -24} -%}
{{ config(pci_partitioned(partition)) }}
-- Every subscription in every landed month (state as of EOM(m) from the
-- export of month m), flagged with whether its product and channel qualify.
-- Kept by month (macro pci_partition_filter: a build derives only the months
-- whose load changed); a score range needs M-24 .. M (a loss in M-11 is debited
-- to an add of M-23 at the earliest, which needs seats of M-24).
with subscriptions as (

    select * from {{ ref('stg_partner_center__subscriptions') }}
    where {{ pci_partition_filter('snapshot_month', partition) }}

),

qualifying_products as (

    select * from {{ ref('qualifying_products') }}

),

qualifying_channels as (

    select * from {{ ref('qualifying_channels') }}

)

select
    subscriptions.snapshot_month as month,
    subscriptions.subscription_id,
    subscriptions.tenant_id,
    subscriptions.product_id,
    subscriptions.sales_channel,
    subscriptions.is_paid,
    subscriptions.ea_agreement_start,
    qualifying_products.product_id is not null as is_qualifying_product,
    qualifying_channels.sales_channel is not null as is_qualifying_channel
from subscriptions
left join qualifying_products
    on qualifying_products.product_id = subscriptions.product_id
left join qualifying_channels
    on qualifying_channels.sales_channel = subscriptions.sales_channel
