with source as (

    select * from {{ source('partner_center', 'billing_lines') }}

),

renamed as (

    select
        cast(line_id as varchar) as line_id,
        cast(billing_date as date) as billing_date,
        cast(subscription_id as varchar) as subscription_id,
        cast(line_type as varchar) as line_type,
        cast(amount_usd as decimal(18,4)) as amount_usd,
        cast(export_month as date) as snapshot_month,
        cast(load_id as varchar) as load_id
    from source

)

select * from renamed
