-- Why a partner got its points: one row per score month, partner, metric and
-- contributor. For every metric the sum of amount equals the metric value in
-- pci_monthly_scores (for mau_growth: per detail 'current' / 'baseline').
with score_months as (

    select score_month from {{ ref('int_score_months') }}
    where is_landed

),

partners as (

    select snapshot_month, partner_id from {{ ref('stg_partner_center__partners') }}
    where {{ pci_month_horizon('snapshot_month', 0) }}

),

-- the windows' months of the kept revenue partitions
revenue_credits as (

    select * from {{ ref('int_partner_revenue_credits') }}
    where {{ pci_month_horizon('billing_month', -11) }}

),

revenue as (

    select
        score_months.score_month,
        revenue.partner_id,
        'net_new_revenue' as metric,
        'subscription' as contributor_kind,
        revenue.subscription_id as contributor_id,
        revenue.tenant_id,
        revenue.subscription_id,
        revenue.billing_month as event_month,
        cast(null as {{ dbt.type_string() }}) as detail,
        cast(revenue.revenue_usd as decimal(38, 6)) as amount
    from score_months
    inner join revenue_credits as revenue
        on revenue.billing_month >= {{ pci_add_months('score_months.score_month', -11) }}
        and revenue.billing_month <= score_months.score_month

),

adds as (

    select
        score_months.score_month,
        adds.partner_id,
        'net_customer_adds' as metric,
        'tenant' as contributor_kind,
        adds.tenant_id as contributor_id,
        adds.tenant_id,
        cast(null as {{ dbt.type_string() }}) as subscription_id,
        adds.add_month as event_month,
        'add' as detail,
        cast(1 as decimal(38, 6)) as amount
    from score_months
    inner join {{ ref('int_customer_add_credits') }} as adds
        on adds.add_month >= {{ pci_add_months('score_months.score_month', -11) }}
        and adds.add_month <= score_months.score_month

),

losses as (

    select
        score_months.score_month,
        losses.partner_id,
        'net_customer_adds' as metric,
        'tenant' as contributor_kind,
        losses.tenant_id as contributor_id,
        losses.tenant_id,
        cast(null as {{ dbt.type_string() }}) as subscription_id,
        losses.loss_month as event_month,
        'loss' as detail,
        cast(-1 as decimal(38, 6)) as amount
    from score_months
    inner join {{ ref('int_customer_loss_debits') }} as losses
        on losses.loss_month >= {{ pci_add_months('score_months.score_month', -11) }}
        and losses.loss_month <= score_months.score_month

),

people as (

    select
        score_months.score_month,
        people.partner_id,
        people.metric,
        'person' as contributor_kind,
        people.person_id as contributor_id,
        cast(null as {{ dbt.type_string() }}) as tenant_id,
        cast(null as {{ dbt.type_string() }}) as subscription_id,
        cast(null as date) as event_month,
        people.certifications as detail,
        cast(1 as decimal(38, 6)) as amount
    from score_months
    inner join {{ ref('int_certified_people') }} as people
        on people.month = score_months.score_month

),

deployments as (

    select
        score_months.score_month,
        deployments.partner_id,
        'new_deployments' as metric,
        'tenant' as contributor_kind,
        deployments.tenant_id as contributor_id,
        deployments.tenant_id,
        cast(null as {{ dbt.type_string() }}) as subscription_id,
        cast(null as date) as event_month,
        deployments.crossing_subscriptions as detail,
        cast(1 as decimal(38, 6)) as amount
    from score_months
    inner join {{ ref('int_partner_deployments') }} as deployments
        on deployments.score_month = score_months.score_month

),

mau_current as (

    select
        score_months.score_month,
        mau.partner_id,
        'mau_growth' as metric,
        'subscription' as contributor_kind,
        mau.subscription_id as contributor_id,
        mau.tenant_id,
        mau.subscription_id,
        cast(null as date) as event_month,
        'current' as detail,
        cast(mau.monthly_active_users as decimal(38, 6)) as amount
    from score_months
    inner join {{ ref('int_partner_subscription_mau') }} as mau
        on mau.month = score_months.score_month

),

mau_baseline as (

    select
        score_months.score_month,
        mau.partner_id,
        'mau_growth' as metric,
        'subscription' as contributor_kind,
        mau.subscription_id as contributor_id,
        mau.tenant_id,
        mau.subscription_id,
        cast(null as date) as event_month,
        'baseline' as detail,
        cast(mau.monthly_active_users as decimal(38, 6)) as amount
    from score_months
    inner join {{ ref('int_partner_subscription_mau') }} as mau
        on mau.month = {{ pci_add_months('score_months.score_month', -12) }}

),

all_contributions as (

    select * from revenue
    union all
    select * from adds
    union all
    select * from losses
    union all
    select * from people
    union all
    select * from deployments
    union all
    select * from mau_current
    union all
    select * from mau_baseline

)

select all_contributions.*
from all_contributions
inner join partners
    on partners.snapshot_month = all_contributions.score_month
    and partners.partner_id = all_contributions.partner_id
