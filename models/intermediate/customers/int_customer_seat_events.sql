{%- set partition = {'column': 'event_month', 'lookback': 1, 'horizon': -23} -%}
{{ config(pci_partitioned(partition)) }}
-- Customer adds and losses. Add of t in m: seats(t, m-1) = 0 and seats(t, m) > 0;
-- loss: seats(t, m-1) > 0 and seats(t, m) = 0. An event in m needs both m-1 and
-- m landed, so the earliest landed month has no events. Kept by event month (an
-- event month reads the loads of m-1 and m); a score range needs M-23 .. M (adds
-- of M-23 can be debited by a loss in M-11); seats are kept from M-24 on, so
-- every event month has its previous month.
with seats as (

    select month, tenant_id
    from {{ ref('int_tenant_monthly_seats') }}
    where paid_seats > 0
        and {{ pci_partition_filter('month', partition, [0, -1]) }}

),

event_months as (

    select month, {{ pci_add_months('month', -1) }} as previous_month
    from {{ ref('int_landed_months') }}
    where is_previous_month_landed
        and {{ pci_partition_filter('month', partition) }}

),

adds as (

    select current_seats.tenant_id, event_months.month as event_month, 'add' as event_type
    from event_months
    inner join seats as current_seats
        on current_seats.month = event_months.month
    left join seats as previous_seats
        on previous_seats.month = event_months.previous_month
        and previous_seats.tenant_id = current_seats.tenant_id
    where previous_seats.tenant_id is null

),

losses as (

    select previous_seats.tenant_id, event_months.month as event_month, 'loss' as event_type
    from event_months
    inner join seats as previous_seats
        on previous_seats.month = event_months.previous_month
    left join seats as current_seats
        on current_seats.month = event_months.month
        and current_seats.tenant_id = previous_seats.tenant_id
    where current_seats.tenant_id is null

)

select * from adds
union all
select * from losses
