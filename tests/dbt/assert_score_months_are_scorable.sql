-- Refuses the build when a requested score month cannot be scored: it is not
-- landed, or a month between the earliest landed month and it is missing.
-- Each returned row names the month and the reason.
{{ config(severity='error') }}

select
    score_month,
    refusal_reason,
    months_missing_before
from {{ ref('int_score_months') }}
where not is_scorable
