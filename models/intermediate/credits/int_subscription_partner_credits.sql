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

partner_roles as (

    -- one row per partner, subscription and month: the kinds of association it holds
    -- (a partner holding several associations to the subscription is credited once)
    select
        month,
        subscription_id,
        partner_id,
        {{ dbt.bool_or("association_type = 'CSP'") }} as is_csp,
        {{ dbt.bool_or("association_type = 'CPOR' and cpor_incentive = 'OSA'") }} as is_osa_cpor,
        {{ dbt.bool_or("association_type = 'CPOR' and cpor_incentive = 'OSU'") }} as is_osu_cpor,
        {{ dbt.bool_or("association_type = 'DPOR'") }} as is_dpor
    from in_effect
    group by month, subscription_id, partner_id

),

advisor_presence as (

    -- the few subscription-months with a CPOR advisor, and the incentives it carries
    select
        month,
        subscription_id,
        {{ dbt.bool_or("cpor_incentive = 'OSA'") }} as has_osa_cpor,
        {{ dbt.bool_or("cpor_incentive = 'OSU'") }} as has_osu_cpor
    from in_effect
    where association_type = 'CPOR'
    group by month, subscription_id

),

partner_flags as (

    select
        partner_roles.month,
        partner_roles.subscription_id,
        partner_roles.partner_id,
        (
            partner_roles.is_csp
            or partner_roles.is_osa_cpor
            or (partner_roles.is_dpor and not coalesce(advisor_presence.has_osa_cpor, false))
        ) as is_transaction_credited,
        (
            partner_roles.is_csp
            or partner_roles.is_osu_cpor
            or (partner_roles.is_dpor and not coalesce(advisor_presence.has_osu_cpor, false))
        ) as is_usage_credited
    from partner_roles
    left join advisor_presence
        on advisor_presence.month = partner_roles.month
        and advisor_presence.subscription_id = partner_roles.subscription_id

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
