{#
  The rules' building blocks that several models share:

  - pci_in_effect(month_start, valid_from, valid_to): the predicate "in effect
    in the month" [D-1], for associations and affiliations alike.
  - pci_metric_names(): the six metric keys in the order of their number (seed
    pci_metrics holds the same keys with their threshold and max points).
  - pci_pivot(column, values, then_value, aggregate, suffix): one aggregated
    column per value, e.g. the threshold of every metric from seed pci_metrics.
#}

{# In effect in the month that starts on month_start [D-1]: valid_from <= EOM(m)
   and (valid_to is null or valid_to >= EOM(m)). #}
{% macro pci_in_effect(month_start, valid_from='valid_from', valid_to='valid_to') -%}
    ({{ valid_from }} <= {{ pci_end_of_month(month_start) }}
        and ({{ valid_to }} is null or {{ valid_to }} >= {{ pci_end_of_month(month_start) }}))
{%- endmacro %}


{# The metric keys, as in seed pci_metrics and pci_metric_contributions.metric. #}
{% macro pci_metric_names() -%}
    {{ return([
        'net_new_revenue',
        'net_customer_adds',
        'functional_consultants',
        'developers',
        'new_deployments',
        'mau_growth',
    ]) }}
{%- endmacro %}


{# For each value: aggregate(case when column = 'value' then then_value end) as value<suffix>,
   comma-separated (no trailing comma). #}
{% macro pci_pivot(column, values, then_value, aggregate='max', suffix='') -%}
    {%- for value in values %}
        {{ aggregate }}(case when {{ column }} = '{{ value }}' then {{ then_value }} end) as {{ value ~ suffix }}
        {%- if not loop.last %},{% endif %}
    {%- endfor %}
{%- endmacro %}


{# Who is credited for a subscription in a month, per metric family [D-2]:
   a query with one row per month, subscription and partner and the flags
   is_transaction_credited / is_usage_credited, from `in_effect`: a relation
   (or CTE) of the associations in effect of paid subscriptions, with columns
   month, subscription_id, partner_id, association_type, cpor_incentive.
   Transaction family: every CSP partner, plus the CPOR partner(s) with
   incentive OSA if any is in effect, else every DPOR partner. Usage family:
   every CSP partner, plus the CPOR partner(s) with OSU if any, else every
   DPOR partner. A partner holding several associations is credited once.
   Used by int_subscription_partner_credits (credits as of EOM(m)) and by
   pci_next_month_projection (the export of M judged at EOM(M+1)). #}
{% macro pci_credit_flags(in_effect) -%}
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
    from (
        -- one row per partner, subscription and month: the kinds of association it holds
        select
            month,
            subscription_id,
            partner_id,
            {{ dbt.bool_or("association_type = 'CSP'") }} as is_csp,
            {{ dbt.bool_or("association_type = 'CPOR' and cpor_incentive = 'OSA'") }} as is_osa_cpor,
            {{ dbt.bool_or("association_type = 'CPOR' and cpor_incentive = 'OSU'") }} as is_osu_cpor,
            {{ dbt.bool_or("association_type = 'DPOR'") }} as is_dpor
        from {{ in_effect }}
        group by month, subscription_id, partner_id
    ) as partner_roles
    left join (
        -- the few subscription-months with a CPOR advisor, and the incentives it carries
        select
            month,
            subscription_id,
            {{ dbt.bool_or("cpor_incentive = 'OSA'") }} as has_osa_cpor,
            {{ dbt.bool_or("cpor_incentive = 'OSU'") }} as has_osu_cpor
        from {{ in_effect }}
        where association_type = 'CPOR'
        group by month, subscription_id
    ) as advisor_presence
        on advisor_presence.month = partner_roles.month
        and advisor_presence.subscription_id = partner_roles.subscription_id
{%- endmacro %}


{# An exam pass active at the end of the month that starts on month_start [D-7]:
   passed_on <= EOM(m) and (expires_on is null or expires_on > EOM(m)). #}
{% macro pci_exam_active(month_start, passed_on='passed_on', expires_on='expires_on') -%}
    ({{ passed_on }} <= {{ pci_end_of_month(month_start) }}
        and ({{ expires_on }} is null or {{ expires_on }} > {{ pci_end_of_month(month_start) }}))
{%- endmacro %}


{# Certified people: a query with one row per month, partner, person and
   metric (columns month, partner_id, person_id, metric, certifications):
   the people of `affiliations` (month, person_id, partner_id: affiliations in
   effect [D-1]) who hold a certification of seed relation `combinations`
   (certification_exam_combinations) in the month, i.e. every exam of one of
   its allowed combinations is among their `active_exams` (month, person_id,
   exam_code: passes active [D-7]). A person counts once per metric; the
   certifications are listed '; '-separated. Used by int_certified_people
   (judged at EOM(M)) and pci_next_month_projection (the export of M judged at
   EOM(M+1)). #}
{% macro pci_certified_people(affiliations, active_exams, combinations) -%}
    with combination_sizes as (
        select certification, metric, combination_id, count(distinct exam_code) as exams_required
        from {{ combinations }}
        group by certification, metric, combination_id
    ),

    combination_progress as (
        select
            active_exams.month,
            active_exams.person_id,
            combinations.certification,
            combinations.metric,
            combinations.combination_id,
            count(distinct active_exams.exam_code) as exams_held
        from {{ active_exams }} as active_exams
        inner join {{ combinations }} as combinations
            on combinations.exam_code = active_exams.exam_code
        group by
            active_exams.month, active_exams.person_id, combinations.certification,
            combinations.metric, combinations.combination_id
    ),

    held_certifications as (
        select distinct
            combination_progress.month,
            combination_progress.person_id,
            combination_progress.certification,
            combination_progress.metric
        from combination_progress
        inner join combination_sizes
            on combination_sizes.certification = combination_progress.certification
            and combination_sizes.combination_id = combination_progress.combination_id
        where combination_progress.exams_held = combination_sizes.exams_required
    )

    select
        affiliations.month,
        affiliations.partner_id,
        affiliations.person_id,
        held_certifications.metric,
        {{ dbt.listagg(
            'held_certifications.certification', "'; '", 'order by held_certifications.certification'
        ) }} as certifications
    from {{ affiliations }} as affiliations
    inner join held_certifications
        on held_certifications.month = affiliations.month
        and held_certifications.person_id = affiliations.person_id
    group by affiliations.month, affiliations.partner_id, affiliations.person_id, held_certifications.metric
{%- endmacro %}
