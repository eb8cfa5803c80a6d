with source as (

    select * from {{ source('partner_center', 'seat_snapshots') }}

),

renamed as (

    select
        cast(subscription_id as {{ dbt.type_string() }}) as subscription_id,
        cast(paid_seats as bigint) as paid_seats,
        cast(export_month as date) as snapshot_month,
        cast(load_id as {{ dbt.type_string() }}) as load_id
    from source

)

select * from renamed
