with source as (

    select * from {{ source('partner_center', 'exam_passes') }}

),

renamed as (

    select
        cast(person_id as {{ dbt.type_string() }}) as person_id,
        cast(exam_code as {{ dbt.type_string() }}) as exam_code,
        cast(passed_on as date) as passed_on,
        cast(expires_on as date) as expires_on,
        cast(export_month as date) as snapshot_month,
        cast(load_id as {{ dbt.type_string() }}) as load_id
    from source

)

select * from renamed
