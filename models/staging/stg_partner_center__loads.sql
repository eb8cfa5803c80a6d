with source as (

    select * from {{ source('partner_center', 'loads') }}

),

renamed as (

    select
        cast(load_id as varchar) as load_id,
        cast(export_month as date) as export_month,
        cast(manifest_sha256 as varchar) as manifest_sha256,
        cast(landed_at as timestamp) as landed_at,
        cast(is_current as boolean) as is_current
    from source

)

select * from renamed
