{%- set partition = {'column': 'billing_month', 'lookback': 0, 'horizon': -11} -%}
{{ config(pci_partitioned(partition)) }}
-- Qualifying revenue lines: billing lines of a qualifying product sold through
-- a qualifying channel (state of the subscription in the line's billing
-- month), signed (CHARGE positive, CREDIT negative). A line of an EA
-- subscription counts only in the agreement's first year:
-- ea_agreement_start <= billing_date < ea_agreement_start + 1 year
-- (one year after 29 February is 28 February). Amounts stay exact: a signed
-- amount of the contract (|amount| < 10^10, 6 decimals) is a DECIMAL(20,6).
-- Kept by billing month (macros/pci_partitions.sql): a line's billing date is
-- inside its export month (a rule of the contract, checked at landing), so a
-- month's lines are a function of that month's export; a score range F .. L
-- reads F-11 .. L.
with billing_lines as (

    select * from {{ ref('stg_partner_center__billing_lines') }}
    -- the months derived (billing_date is inside the export month)
    where {{ pci_partition_filter('snapshot_month', partition) }}

),

subscription_months as (

    select * from {{ ref('int_subscription_months') }}
    where {{ pci_partition_filter('month', partition) }}

),

lines as (

    select
        billing_lines.line_id,
        billing_lines.billing_date,
        cast({{ dbt.date_trunc('month', 'billing_lines.billing_date') }} as date) as billing_month,
        billing_lines.subscription_id,
        subscription_months.tenant_id,
        subscription_months.sales_channel,
        subscription_months.ea_agreement_start,
        case billing_lines.line_type
            when 'CHARGE' then billing_lines.amount_usd
            when 'CREDIT' then -billing_lines.amount_usd
        end as signed_amount_usd
    from billing_lines
    inner join subscription_months
        on subscription_months.month = billing_lines.snapshot_month
        and subscription_months.subscription_id = billing_lines.subscription_id
    where subscription_months.is_qualifying_product
        and subscription_months.is_qualifying_channel

)

select
    line_id,
    billing_date,
    billing_month,
    subscription_id,
    tenant_id,
    sales_channel,
    cast(signed_amount_usd as decimal(20, 6)) as signed_amount_usd
from lines
where
    sales_channel <> 'EA'
    or (
        billing_date >= ea_agreement_start
        and billing_date < cast({{ dbt.dateadd('year', 1, 'ea_agreement_start') }} as date)
    )
