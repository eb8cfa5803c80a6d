{#
  Points of one metric, in exact integer arithmetic:

      points = max_points * min(max(value, 0) / threshold, 1)

  rounded half-up to 2 decimals, returned as DECIMAL(5,2). The value is passed
  as a fraction value_numerator / value_denominator (denominator > 0) so that
  no floating point is involved (e.g. MAU growth = (current - baseline) /
  baseline). threshold is a DECIMAL with at most 4 decimals (seed pci_metrics).

  With T = threshold * 10000 (an integer) and
      N = max_points * 100 * min(max(num, 0) * 10000, T * den)
      D = T * den
  the points in hundredths are round_half_up(N / D) = (2N + D) div (2D).

  No overflow for any input of the mart: num is below 10^18 (revenue in cents
  of a DECIMAL(18,2)) or 2^63 (a BIGINT MAU difference or count), so
  num * 10000 < 10^23; T < 10^18 (threshold DECIMAL(18,4)) and den is 100 or a
  BIGINT baseline, so D = T * den < 10^37; N <= max_points * 100 * num * 10000;
  all well inside the engine's exact integer type (pci_type_exact_integer: HUGEINT,
  1.7 * 10^38, on DuckDB; DECIMAL(38,0), 10^38, on Spark, whose ANSI mode fails
  rather than overflow), and pci_integer_divide is exact integer division.
  The result (hundredths, at most max_points * 100) fits DECIMAL(7,0) for
  max_points below 10^5.
#}
{% macro pci_points(value_numerator, value_denominator, threshold, max_points) -%}
    {%- set exact = pci_type_exact_integer() -%}
    {%- set t = "cast(round(" ~ threshold ~ " * 10000, 0) as " ~ exact ~ ")" -%}
    {%- set den = "cast(" ~ value_denominator ~ " as " ~ exact ~ ")" -%}
    {%- set num = "cast(" ~ value_numerator ~ " as " ~ exact ~ ")" -%}
    {%- set n = "(cast(" ~ max_points ~ " as " ~ exact ~ ") * 100 * least(greatest(" ~ num ~ ", 0) * 10000, " ~ t ~ " * " ~ den ~ "))" -%}
    {%- set d = "(" ~ t ~ " * " ~ den ~ ")" -%}
    cast(cast({{ pci_integer_divide("(2 * " ~ n ~ " + " ~ d ~ ")", "(2 * " ~ d ~ ")") }} as decimal(7, 0)) * 0.01 as decimal(5, 2))
{%- endmacro %}


{# The widest exact integer type of the engine (no overflow of the sums and products above). #}
{% macro pci_type_exact_integer() -%}
    {{ return(adapter.dispatch('pci_type_exact_integer')()) }}
{%- endmacro %}

{% macro default__pci_type_exact_integer() -%}
    {{ return('hugeint') }}
{%- endmacro %}

{% macro spark__pci_type_exact_integer() -%}
    {{ return('decimal(38, 0)') }}
{%- endmacro %}


{# Integer division of two non-negative exact integers, rounded down. #}
{% macro pci_integer_divide(numerator, denominator) -%}
    {{ return(adapter.dispatch('pci_integer_divide')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__pci_integer_divide(numerator, denominator) -%}
    ({{ numerator }} // {{ denominator }})
{%- endmacro %}

{% macro spark__pci_integer_divide(numerator, denominator) -%}
    ({{ numerator }} div {{ denominator }})
{%- endmacro %}


{# End of the month that starts on month_start (a DATE). #}
{% macro pci_end_of_month(month_start) -%}
    {{ return(adapter.dispatch('pci_end_of_month')(month_start)) }}
{%- endmacro %}

{% macro default__pci_end_of_month(month_start) -%}
    {{ dbt.last_day(month_start, 'month') }}
{%- endmacro %}

{#- Spark's own function: dbt-spark's last_day and dateadd expand to dozens of nested
    timestamp conversions each, which made the projection's SQL 390 kB and its plan
    take minutes to compile -#}
{% macro spark__pci_end_of_month(month_start) -%}
    last_day({{ month_start }})
{%- endmacro %}


{# The month n months after month_start, as a DATE. #}
{% macro pci_add_months(month_start, n) -%}
    {{ return(adapter.dispatch('pci_add_months')(month_start, n)) }}
{%- endmacro %}

{% macro default__pci_add_months(month_start, n) -%}
    cast({{ dbt.dateadd('month', n, month_start) }} as date)
{%- endmacro %}

{#- add_months clamps to the end of a shorter month (2020-02-29 + 12 = 2021-02-28), as
    DuckDB's interval arithmetic does, and since Spark 3.0 keeps a day that is the end
    of its month as it is (2019-02-28 + 1 = 2019-03-28) -#}
{% macro spark__pci_add_months(month_start, n) -%}
    add_months(cast({{ month_start }} as date), {{ n }})
{%- endmacro %}


{# The scored rows from the metric values: a query with, per row of
   `values_relation`, the key_columns, the six metric values, their points
   [macro pci_points, seed pci_metrics], pci_score (the sum of the rounded
   points), competency_level [D-3, seed pci_levels] and window_complete, in
   the order of the output contract (raw-exports.md, section 4).
   `values_relation` (a relation or CTE) has the key_columns and
   net_new_revenue_usd (DECIMAL(18,2), rounded), the count metrics (INTEGER),
   mau_baseline, mau_current (BIGINT), is_mau_eligible, mau_growth (DOUBLE)
   and window_complete. Used by pci_monthly_scores and
   pci_next_month_projection, so both score the same way. #}
{% macro pci_score_rows(values_relation, key_columns) -%}
    {%- set metric_names = pci_metric_names() -%}
    {#- the metrics whose value is a count (points from value / 1) -#}
    {%- set count_metrics = metric_names | reject('equalto', 'mau_growth') | reject('equalto', 'net_new_revenue') | list -%}
    select
        {% for column in key_columns -%}
            scored.{{ column }},
        {% endfor -%}
        scored.net_new_revenue_usd,
        {% for metric in count_metrics -%}
            scored.{{ metric }},
        {% endfor -%}
        scored.mau_baseline,
        scored.mau_current,
        scored.mau_growth,
        {% for metric in metric_names -%}
            scored.points_{{ metric }},
        {% endfor -%}
        scored.pci_score,
        cast(level_bands.level as {{ dbt.type_string() }}) as competency_level,
        scored.window_complete
    from (
        select
            points.*,
            cast(
                {% for metric in metric_names -%}
                    {{ '+ ' if not loop.first }}points.points_{{ metric }}
                {% endfor -%}
                as decimal(5, 2)
            ) as pci_score
        from (
            select
                values_per_partner.*,
                -- revenue in cents: value = cents / 100
                {{ pci_points(
                    'values_per_partner.net_new_revenue_usd * 100', '100',
                    'rules.net_new_revenue_threshold', 'rules.net_new_revenue_max_points'
                ) }} as points_net_new_revenue,
                {% for metric in count_metrics -%}
                    {{ pci_points(
                        'values_per_partner.' ~ metric, '1',
                        'rules.' ~ metric ~ '_threshold', 'rules.' ~ metric ~ '_max_points'
                    ) }} as points_{{ metric }},
                {% endfor -%}
                -- growth = (current - baseline) / baseline, 0 points when not eligible
                case
                    when values_per_partner.is_mau_eligible
                        then {{ pci_points(
                            'values_per_partner.mau_current - values_per_partner.mau_baseline',
                            'case when values_per_partner.is_mau_eligible then values_per_partner.mau_baseline else 1 end',
                            'rules.mau_growth_threshold', 'rules.mau_growth_max_points'
                        ) }}
                    else cast(0 as decimal(5, 2))
                end as points_mau_growth
            from {{ values_relation }} as values_per_partner
            cross join (
                -- one row: <metric>_threshold and <metric>_max_points of every metric
                select
                    {{- pci_pivot('metric', metric_names, 'threshold', suffix='_threshold') }},
                    {{- pci_pivot('metric', metric_names, 'max_points', suffix='_max_points') }}
                from {{ ref('pci_metrics') }}
            ) as rules
        ) as points
    ) as scored
    inner join (
        select
            level,
            min_score,
            lead(min_score) over (order by min_score) as next_min_score
        from {{ ref('pci_levels') }}
    ) as level_bands
        on level_bands.min_score <= scored.pci_score
        and (level_bands.next_min_score is null or level_bands.next_min_score > scored.pci_score)
{%- endmacro %}
