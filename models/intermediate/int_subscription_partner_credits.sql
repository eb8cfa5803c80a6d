-- Who is credited for a paid subscription in month m, per metric family [D-2]:
--   transaction family (revenue, customer adds): every CSP partner, plus the
--     CPOR partner(s) with incentive OSA if any is in effect, else every DPOR.
--   usage family (deployments, MAU growth): every CSP partner, plus the CPOR
--     partner(s) with incentive OSU if any is in effect, else every DPOR.
-- A partner is credited once per subscription, month and family. Months of the
-- score range F .. L: the transaction family from F-23 (customer adds a loss of
-- the window can be debited to), the usage family in each score month M and M-12.
with associations as (

    select * from {{ ref('int_associations_in_effect') }}

),

paid_subscriptions as (

    select month, subscription_id
    from {{ ref('int_subscription_months') }}
    where is_paid

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

advisor_presence as (

    select
        month,
        subscription_id,
        {{ dbt.bool_or("association_type = 'CPOR' and cpor_incentive = 'OSA'") }} as has_osa_cpor,
        {{ dbt.bool_or("association_type = 'CPOR' and cpor_incentive = 'OSU'") }} as has_osu_cpor
    from in_effect
    group by month, subscription_id

),

classified as (

    select
        in_effect.month,
        in_effect.subscription_id,
        in_effect.partner_id,
        in_effect.association_type = 'CSP'
            or (in_effect.association_type = 'CPOR' and in_effect.cpor_incentive = 'OSA')
            or (in_effect.association_type = 'DPOR' and not advisor_presence.has_osa_cpor)
            as is_transaction_credited,
        in_effect.association_type = 'CSP'
            or (in_effect.association_type = 'CPOR' and in_effect.cpor_incentive = 'OSU')
            or (in_effect.association_type = 'DPOR' and not advisor_presence.has_osu_cpor)
            as is_usage_credited
    from in_effect
    inner join advisor_presence
        on advisor_presence.month = in_effect.month
        and advisor_presence.subscription_id = in_effect.subscription_id

),

partner_flags as (

    -- a partner holding several associations to the subscription is credited once
    select
        month,
        subscription_id,
        partner_id,
        {{ dbt.bool_or('is_transaction_credited') }} as is_transaction_credited,
        {{ dbt.bool_or('is_usage_credited') }} as is_usage_credited
    from classified
    group by month, subscription_id, partner_id

)

select month, subscription_id, partner_id, 'transaction' as metric_family
from partner_flags
where is_transaction_credited
union all
-- the usage family is read only in score months and their baseline months
select month, subscription_id, partner_id, 'usage' as metric_family
from partner_flags
where is_usage_credited
  and {{ pci_score_months_shifted('month', [0, -12]) }}
