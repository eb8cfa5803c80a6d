-- Certified people per partner and month M (snapshot of M, no window):
-- people affiliated with the partner in M [D-1, macro pci_in_effect] who
-- hold a certification active at EOM(M): every exam of one allowed
-- combination has a pass with passed_on <= EOM(M) and (expires_on is null
-- or expires_on > EOM(M)) [D-7].
-- One row per partner, person and metric (a person counts once per metric).
-- Only the score months of the range are derived.
with people as (

    select * from {{ ref('stg_partner_center__partner_people') }}
    where {{ pci_month_horizon('snapshot_month', 0) }}

),

exam_passes as (

    select * from {{ ref('stg_partner_center__exam_passes') }}
    where {{ pci_month_horizon('snapshot_month', 0) }}

),

combinations as (

    select * from {{ ref('certification_exam_combinations') }}

),

combination_sizes as (

    select certification, metric, combination_id, count(distinct exam_code) as exams_required
    from combinations
    group by certification, metric, combination_id

),

affiliations as (

    select snapshot_month as month, person_id, partner_id
    from people
    where {{ pci_in_effect('snapshot_month') }}

),

active_exams as (

    select distinct snapshot_month as month, person_id, exam_code
    from exam_passes
    where passed_on <= {{ pci_end_of_month('snapshot_month') }}
        and (expires_on is null or expires_on > {{ pci_end_of_month('snapshot_month') }})

),

combination_progress as (

    select
        active_exams.month,
        active_exams.person_id,
        combinations.certification,
        combinations.metric,
        combinations.combination_id,
        count(distinct active_exams.exam_code) as exams_held
    from active_exams
    inner join combinations
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
from affiliations
inner join held_certifications
    on held_certifications.month = affiliations.month
    and held_certifications.person_id = affiliations.person_id
group by affiliations.month, affiliations.partner_id, affiliations.person_id, held_certifications.metric
