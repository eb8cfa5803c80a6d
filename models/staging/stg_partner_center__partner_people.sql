with source as (

    select * from {{ source('partner_center', 'partner_people') }}

),

renamed as (

    select
        cast(person_id as {{ dbt.type_string() }}) as person_id,
        cast(partner_id as {{ dbt.type_string() }}) as partner_id,
        cast(valid_from as date) as valid_from,
        cast(valid_to as date) as valid_to,
        cast(export_month as date) as snapshot_month,
        cast(load_id as {{ dbt.type_string() }}) as load_id
    from source

)

select * from renamed
