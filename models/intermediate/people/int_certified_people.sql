-- Certified people per partner and month M (snapshot of M, no window):
-- people affiliated with the partner in M [D-1, macro pci_in_effect] who
-- hold a certification active at EOM(M): every exam of one allowed
-- combination has a pass with passed_on <= EOM(M) and (expires_on is null
-- or expires_on > EOM(M)) [D-7, macro pci_exam_active]. The matching of
-- exams to combinations is macro pci_certified_people (shared with
-- pci_next_month_projection, which judges the same export at EOM(M+1)).
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

affiliations as (

    select snapshot_month as month, person_id, partner_id
    from people
    where {{ pci_in_effect('snapshot_month') }}

),

active_exams as (

    select distinct snapshot_month as month, person_id, exam_code
    from exam_passes
    where {{ pci_exam_active('snapshot_month') }}

),

certified_people as (

    {{ pci_certified_people('affiliations', 'active_exams', 'combinations') }}

)

select * from certified_people
