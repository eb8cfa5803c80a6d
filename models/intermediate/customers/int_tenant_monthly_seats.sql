{%- set partition = {'column': 'month', 'lookback': 0, 'horizon': -24} -%}
{{ config(pci_partitioned(partition)) }}
-- Paid seats of a tenant in month m: the sum of paid_seats over the tenant's
-- paid subscriptions of a qualifying product sold through a qualifying channel
-- in m. A counting subscription without a seat row has 0 seats. A tenant with
-- no counting subscription in a landed month has no row (= 0 seats). Kept by
-- month; a score range F .. L needs F-24 .. L (see int_customer_seat_events).
-- The sum is of the engine's exact integer type (HUGEINT on DuckDB): seat counts are below 10^12 each, so no number of
-- subscriptions of one tenant can overflow it (it is only compared with 0).
with subscription_months as (

    select * from {{ ref('int_subscription_months') }}

),

seat_snapshots as (

    select * from {{ ref('stg_partner_center__seat_snapshots') }}
    where {{ pci_partition_filter('snapshot_month', partition) }}

),

counting_subscriptions as (

    select month, subscription_id, tenant_id
    from subscription_months
    where is_paid and is_qualifying_product and is_qualifying_channel
        and {{ pci_partition_filter('month', partition) }}

)

select
    counting_subscriptions.month,
    counting_subscriptions.tenant_id,
    cast(sum(coalesce(seat_snapshots.paid_seats, 0)) as {{ pci_type_exact_integer() }}) as paid_seats,
    cast(count(*) as integer) as counting_subscriptions
from counting_subscriptions
left join seat_snapshots
    on seat_snapshots.snapshot_month = counting_subscriptions.month
    and seat_snapshots.subscription_id = counting_subscriptions.subscription_id
group by counting_subscriptions.month, counting_subscriptions.tenant_id
