-- The competency level of every row of the scores and of the next month's
-- projection is the level of seed pci_levels with the highest min_score not
-- above pci_score [D-3].
with scored as (

    select 'pci_monthly_scores' as mart, score_month, partner_id, pci_score, competency_level
    from {{ ref('pci_monthly_scores') }}
    union all
    select 'pci_next_month_projection' as mart, score_month, partner_id, pci_score, competency_level
    from {{ ref('pci_next_month_projection') }}

),

expected as (

    select
        scored.mart,
        scored.score_month,
        scored.partner_id,
        scored.pci_score,
        scored.competency_level,
        max(levels.min_score) as reached_min_score
    from scored
    left join {{ ref('pci_levels') }} as levels
        on levels.min_score <= scored.pci_score
    group by 1, 2, 3, 4, 5

)

select expected.*
from expected
left join {{ ref('pci_levels') }} as levels
    on levels.min_score = expected.reached_min_score
where levels.level is null or levels.level <> expected.competency_level
