with source as (

    select * from {{ source('partner_center', 'loads') }}

),

renamed as (

    select
        cast(load_id as {{ dbt.type_string() }}) as load_id,
        cast(export_month as date) as export_month,
        cast(manifest_sha256 as {{ dbt.type_string() }}) as manifest_sha256,
        cast(landed_at as timestamp) as landed_at,
        cast(is_current as boolean) as is_current
    from source

)

select * from renamed
