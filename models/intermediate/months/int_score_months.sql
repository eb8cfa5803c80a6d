-- The requested score months (the build's score range, macro pci_score_range), with whether each can be scored
-- and whether its 13-month window M-12 .. M is fully landed.
{%- set bounds = pci_score_range() %}
{%- set first_index = bounds[0] %}
{%- set last_index = bounds[1] %}
{%- set first_month = pci_score_month_offset('first', 0) %}

with requested as (

    {{ dbt.generate_series(last_index - first_index + 1) }}

),

landed as (

    select month from {{ ref('int_landed_months') }}

),

score_months as (

    select {{ pci_add_months(first_month, 'generated_number - 1') }} as score_month
    from requested

),

earliest as (

    select min(month) as earliest_landed_month from landed

),

landed_counts as (

    select
        score_months.score_month,
        count(
            case
                when landed.month >= {{ pci_add_months('score_months.score_month', -12) }}
                    then landed.month
            end
        ) as landed_in_window,
        count(
            case
                when landed.month = score_months.score_month then landed.month
            end
        ) as landed_score_month,
        count(landed.month) as landed_up_to_month
    from score_months
    left join landed
        on landed.month <= score_months.score_month
    group by score_months.score_month

),

flagged as (

    select
        landed_counts.score_month,
        landed_counts.landed_score_month = 1 as is_landed,
        landed_counts.landed_in_window = 13 as window_complete,
        case
            when earliest.earliest_landed_month is null
                or earliest.earliest_landed_month > landed_counts.score_month
                then 0
            else {{ dbt.datediff('earliest.earliest_landed_month', 'landed_counts.score_month', 'month') }}
                + 1 - landed_counts.landed_up_to_month
        end as months_missing_before
    from landed_counts
    cross join earliest

)

select
    score_month,
    is_landed,
    window_complete,
    months_missing_before,
    is_landed and months_missing_before = 0 as is_scorable,
    case
        when not is_landed then 'score month is not landed'
        when months_missing_before > 0
            then 'a month between the earliest landed month and the score month is not landed'
    end as refusal_reason
from flagged
