-- Partner associations in effect in month m [D-1]: valid_from <= EOM(m) and
-- (valid_to is null or valid_to >= EOM(m)), read from the export of month m.
with associations as (

    select * from {{ ref('stg_partner_center__partner_associations') }}

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
where valid_from <= {{ pci_end_of_month('snapshot_month') }}
  and (valid_to is null or valid_to >= {{ pci_end_of_month('snapshot_month') }})
