{{ config(materialized='view') }}
-- (read once, by int_subscription_partner_credits: a view saves writing it)
-- Partner associations in effect in month m [D-1, macro pci_in_effect], read
-- from the export of month m.
-- Only the months the score range needs: credits of an add in M-23 (an add in
-- m needs seats of m-1, a loss in M-11 is debited to an add in M-23 .. M-12).
with associations as (

    select * from {{ ref('stg_partner_center__partner_associations') }}
    where {{ pci_month_horizon('snapshot_month', -23) }}

)

select
    snapshot_month as month,
    association_id,
    partner_id,
    subscription_id,
    association_type,
    cpor_incentive,
    valid_from,
    valid_to
from associations
where {{ pci_in_effect('snapshot_month') }}
