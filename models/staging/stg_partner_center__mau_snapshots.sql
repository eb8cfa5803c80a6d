with source as (

    select * from {{ source('partner_center', 'mau_snapshots') }}

),

renamed as (

    select
        cast(subscription_id as {{ dbt.type_string() }}) as subscription_id,
        cast(monthly_active_users as bigint) as monthly_active_users,
        cast(export_month as date) as snapshot_month,
        cast(load_id as {{ dbt.type_string() }}) as load_id
    from source

)

select * from renamed
