with source as (

    select * from {{ source('partner_center', 'tenants') }}

),

renamed as (

    select
        cast(tenant_id as varchar) as tenant_id,
        cast(tenant_name as varchar) as tenant_name,
        cast(is_production as boolean) as is_production,
        cast(export_month as date) as snapshot_month,
        cast(load_id as varchar) as load_id
    from source

)

select * from renamed
