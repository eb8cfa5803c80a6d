with source as (

    select * from {{ source('partner_center', 'partners') }}

),

renamed as (

    select
        cast(partner_id as varchar) as partner_id,
        cast(partner_name as varchar) as partner_name,
        cast(country as varchar) as country,
        cast(export_month as date) as snapshot_month,
        cast(load_id as varchar) as load_id
    from source

)

select * from renamed
