with source as (

    select * from {{ source('partner_center', 'tenants') }}

),

renamed as (

    select
        cast(tenant_id as {{ dbt.type_string() }}) as tenant_id,
        cast(tenant_name as {{ dbt.type_string() }}) as tenant_name,
        cast(is_production as boolean) as is_production,
        cast(export_month as date) as snapshot_month,
        cast(load_id as {{ dbt.type_string() }}) as load_id
    from source

)

select * from renamed
