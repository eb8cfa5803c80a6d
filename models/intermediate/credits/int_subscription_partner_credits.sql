{%- set partition = {'column': 'month', 'lookback': 0, 'horizon': -23} -%}
{{ config(pci_partitioned(partition)) }}
-- Who is credited for a paid subscription in month m, per metric family [D-2]:
--   transaction family (revenue, customer adds): every CSP partner, plus the
--     CPOR partner(s) with incentive OSA if any is in effect, else every DPOR.
--   usage family (deployments, MAU growth): every CSP partner, plus the CPOR
--     partner(s) with incentive OSU if any is in effect, else every DPOR.
-- A partner is credited once per subscription, month and family. Kept by month;
-- a score range F .. L reads the transaction family from F-23 (customer adds a
-- loss of the window can be debited to), the usage family in each score month M,
-- in M-12 (the score's MAU baseline) and in M-11 (the MAU baseline of the
-- projection of M+1, pci_next_month_projection).
with associations as (

    select * from {{ ref('int_associations_in_effect') }}

),

paid_subscriptions as (

    select month, subscription_id
    from {{ ref('int_subscription_months') }}
    where is_paid
        and {{ pci_partition_filter('month', partition) }}

),

in_effect as (

    select
        associations.month,
        associations.subscription_id,
        associations.partner_id,
        associations.association_type,
        associations.cpor_incentive
    from associations
    inner join paid_subscriptions
        on paid_subscriptions.month = associations.month
        and paid_subscriptions.subscription_id = associations.subscription_id

),

partner_flags as (

    -- macro pci_credit_flags: the family rules above (shared with pci_next_month_projection)
    {{ pci_credit_flags('in_effect') }}

)

select month, subscription_id, partner_id, 'transaction' as metric_family
from partner_flags
where is_transaction_credited
union all
select month, subscription_id, partner_id, 'usage' as metric_family
from partner_flags
where is_usage_credited
