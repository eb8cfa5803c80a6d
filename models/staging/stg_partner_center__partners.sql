with source as (

    select * from {{ source('partner_center', 'partners') }}

),

renamed as (

    select
        cast(partner_id as {{ dbt.type_string() }}) as partner_id,
        cast(partner_name as {{ dbt.type_string() }}) as partner_name,
        cast(country as {{ dbt.type_string() }}) as country,
        cast(export_month as date) as snapshot_month,
        cast(load_id as {{ dbt.type_string() }}) as load_id
    from source

)

select * from renamed
