{{ config(materialized='view') }}
-- (read once, by int_customer_loss_debits: a view saves writing it)
-- Spells: runs of months in which a tenant has seats. A spell starts with an
-- add (add_month) or, when it began before the earliest landed month, with no
-- add (add_month null); it ends with a loss (loss_month) or is still open.
with events as (

    select * from {{ ref('int_customer_seat_events') }}
    -- the event months of the score range (F-23 .. L): a spell that began before is seen
    -- without its add, and debited to nobody, as with the whole history
    where {{ pci_month_horizon('event_month', -23) }}

),

ordered as (

    select
        tenant_id,
        event_month,
        event_type,
        lag(event_type) over (partition by tenant_id order by event_month) as previous_event_type,
        lead(event_type) over (partition by tenant_id order by event_month) as next_event_type,
        lead(event_month) over (partition by tenant_id order by event_month) as next_event_month
    from events

),

spells_with_add as (

    select
        tenant_id,
        event_month as add_month,
        case when next_event_type = 'loss' then next_event_month end as loss_month
    from ordered
    where event_type = 'add'

),

spells_without_add as (

    select
        tenant_id,
        cast(null as date) as add_month,
        event_month as loss_month
    from ordered
    where event_type = 'loss'
        and (previous_event_type is null or previous_event_type <> 'add')

)

select * from spells_with_add
union all
select * from spells_without_add
