-- Debited customer losses [D-6]: a loss of t in m is debited (-1) to the
-- partners credited with the add that began t's current spell, if that add
-- happened in m-12 .. m-1. A spell whose add is older, or that began before
-- the earliest landed month, is debited to nobody.
with spells as (

    select * from {{ ref('int_customer_seat_spells') }}
    where loss_month is not null and add_month is not null

),

add_credits as (

    select * from {{ ref('int_customer_add_credits') }}
    where {{ pci_month_horizon('add_month', -23) }}

)

select
    spells.tenant_id,
    spells.loss_month,
    spells.add_month,
    add_credits.partner_id
from spells
inner join add_credits
    on add_credits.tenant_id = spells.tenant_id
    and add_credits.add_month = spells.add_month
where spells.add_month >= {{ pci_add_months('spells.loss_month', -12) }}
