with source as (

    select * from {{ source('partner_center', 'products') }}

),

renamed as (

    select
        cast(product_id as {{ dbt.type_string() }}) as product_id,
        cast(product_name as {{ dbt.type_string() }}) as product_name,
        cast(export_month as date) as snapshot_month,
        cast(load_id as {{ dbt.type_string() }}) as load_id
    from source

)

select * from renamed
