-- The landed months: export months with a current load.
with loads as (

    select * from {{ ref('stg_partner_center__loads') }}

),

landed as (

    select distinct export_month as month
    from loads
    where is_current

)

select
    landed.month,
    previous_landed.month is not null as is_previous_month_landed
from landed
left join landed as previous_landed
    on previous_landed.month = {{ pci_add_months('landed.month', -1) }}
