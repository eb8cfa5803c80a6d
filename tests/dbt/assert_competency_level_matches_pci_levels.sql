-- The competency level of every row is the level of seed pci_levels with the
-- highest min_score not above pci_score [D-3].
with expected as (

    select
        scores.score_month,
        scores.partner_id,
        scores.pci_score,
        scores.competency_level,
        max(levels.min_score) as reached_min_score
    from {{ ref('pci_monthly_scores') }} as scores
    left join {{ ref('pci_levels') }} as levels
        on levels.min_score <= scores.pci_score
    group by 1, 2, 3, 4

)

select expected.*
from expected
left join {{ ref('pci_levels') }} as levels
    on levels.min_score = expected.reached_min_score
where levels.level is null or levels.level <> expected.competency_level
