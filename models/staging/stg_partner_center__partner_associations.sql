with source as (

    select * from {{ source('partner_center', 'partner_associations') }}

),

renamed as (

    select
        cast(association_id as {{ dbt.type_string() }}) as association_id,
        cast(partner_id as {{ dbt.type_string() }}) as partner_id,
        cast(subscription_id as {{ dbt.type_string() }}) as subscription_id,
        cast(association_type as {{ dbt.type_string() }}) as association_type,
        cast(cpor_incentive as {{ dbt.type_string() }}) as cpor_incentive,
        cast(valid_from as date) as valid_from,
        cast(valid_to as date) as valid_to,
        cast(export_month as date) as snapshot_month,
        cast(load_id as {{ dbt.type_string() }}) as load_id
    from source

)

select * from renamed
