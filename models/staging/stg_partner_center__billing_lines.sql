with source as (

    select * from {{ source('partner_center', 'billing_lines') }}

),

renamed as (

    select
        cast(line_id as {{ dbt.type_string() }}) as line_id,
        cast(billing_date as date) as billing_date,
        cast(subscription_id as {{ dbt.type_string() }}) as subscription_id,
        cast(line_type as {{ dbt.type_string() }}) as line_type,
        -- DECIMAL(20,6): every amount of the contract (|amount| < 10^10, at most
        -- 6 digits after the point) exactly, as pci/contract.py AMOUNT_TYPE
        cast(amount_usd as decimal(20, 6)) as amount_usd,
        cast(export_month as date) as snapshot_month,
        cast(load_id as {{ dbt.type_string() }}) as load_id
    from source

)

select * from renamed
