{%- set partition = {'column': 'billing_month', 'lookback': 0, 'horizon': -11} -%}
{{ config(pci_partitioned(partition)) }}
-- Revenue credited to partners [D-5]: each qualifying line is credited to the
-- transaction-family partners of its subscription in the line's billing month.
-- One row per partner, subscription and billing month. The sum is exact
-- (DECIMAL(38,6): 32 digits before the point, far more than any number of lines
-- below 10^10 each can reach); it is rounded once, to cents, in the mart, whose
-- DECIMAL(18,2) holds a partner's window total below 10^16: e.g. one million
-- lines at the largest amount (10^10 - 10^-6) in one 12-month window.
-- Kept by billing month: month m's lines and the credits in effect in m, both
-- kept partitions of m; a score range F .. L reads F-11 .. L.
with lines as (

    select * from {{ ref('int_ea_first_year_revenue') }}
    where {{ pci_partition_filter('billing_month', partition) }}

),

credits as (

    select month, subscription_id, partner_id
    from {{ ref('int_subscription_partner_credits') }}
    where metric_family = 'transaction'
        and {{ pci_partition_filter('month', partition) }}

)

select
    credits.partner_id,
    lines.subscription_id,
    lines.tenant_id,
    lines.billing_month,
    cast(sum(lines.signed_amount_usd) as decimal(38, 6)) as revenue_usd,
    cast(count(*) as integer) as billing_lines
from lines
inner join credits
    on credits.month = lines.billing_month
    and credits.subscription_id = lines.subscription_id
group by credits.partner_id, lines.subscription_id, lines.tenant_id, lines.billing_month
