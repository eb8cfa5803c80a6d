with source as (

    select * from {{ source('partner_center', 'subscriptions') }}

),

renamed as (

    select
        cast(subscription_id as {{ dbt.type_string() }}) as subscription_id,
        cast(tenant_id as {{ dbt.type_string() }}) as tenant_id,
        cast(product_id as {{ dbt.type_string() }}) as product_id,
        cast(sales_channel as {{ dbt.type_string() }}) as sales_channel,
        cast(is_paid as boolean) as is_paid,
        cast(ea_agreement_start as date) as ea_agreement_start,
        cast(export_month as date) as snapshot_month,
        cast(load_id as {{ dbt.type_string() }}) as load_id
    from source

)

select * from renamed
