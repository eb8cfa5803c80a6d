-- MAU a partner is credited with per subscription and month: the paid
-- qualifying-product subscriptions (any channel) on which the partner is
-- usage-family credited in m, with the subscription's MAU in m (no row = 0).
-- Only the months the score range reads: each score month M, its baseline
-- M-12, and M-11 (the MAU baseline of the projection of M+1,
-- pci_next_month_projection).
with credits as (

    select month, subscription_id, partner_id
    from {{ ref('int_subscription_partner_credits') }}
    where metric_family = 'usage'
        and {{ pci_score_months_shifted('month', [0, -11, -12]) }}

),

subscription_months as (

    select * from {{ ref('int_subscription_months') }}
    where is_paid and is_qualifying_product
        and {{ pci_score_months_shifted('month', [0, -11, -12]) }}

),

mau as (

    select * from {{ ref('stg_partner_center__mau_snapshots') }}
    where {{ pci_score_months_shifted('snapshot_month', [0, -11, -12]) }}

)

select
    credits.month,
    credits.partner_id,
    credits.subscription_id,
    subscription_months.tenant_id,
    cast(coalesce(mau.monthly_active_users, 0) as bigint) as monthly_active_users
from credits
inner join subscription_months
    on subscription_months.month = credits.month
    and subscription_months.subscription_id = credits.subscription_id
left join mau
    on mau.snapshot_month = credits.month
    and mau.subscription_id = credits.subscription_id
