with source as (

    select * from {{ source('partner_center', 'partner_associations') }}

),

renamed as (

    select
        cast(association_id as varchar) as association_id,
        cast(partner_id as varchar) as partner_id,
        cast(subscription_id as varchar) as subscription_id,
        cast(association_type as varchar) as association_type,
        cast(cpor_incentive as varchar) as cpor_incentive,
        cast(valid_from as date) as valid_from,
        cast(valid_to as date) as valid_to,
        cast(export_month as date) as snapshot_month,
        cast(load_id as varchar) as load_id
    from source

)

select * from renamed
