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
  all well inside HUGEINT (1.7 * 10^38), and `//` is exact integer division.
  The result (hundredths, at most max_points * 100) fits DECIMAL(7,0) for
  max_points below 10^5.
#}
{% macro pci_points(value_numerator, value_denominator, threshold, max_points) -%}
    {%- set t = "cast(round(" ~ threshold ~ " * 10000, 0) as hugeint)" -%}
    {%- set den = "cast(" ~ value_denominator ~ " as hugeint)" -%}
    {%- set num = "cast(" ~ value_numerator ~ " as hugeint)" -%}
    {%- set n = "(cast(" ~ max_points ~ " as hugeint) * 100 * least(greatest(" ~ num ~ ", 0) * 10000, " ~ t ~ " * " ~ den ~ "))" -%}
    {%- set d = "(" ~ t ~ " * " ~ den ~ ")" -%}
    cast(cast((2 * {{ n }} + {{ d }}) // (2 * {{ d }}) as decimal(7, 0)) * 0.01 as decimal(5, 2))
{%- endmacro %}


{# End of the month that starts on month_start (a DATE). #}
{% macro pci_end_of_month(month_start) -%}
    {{ dbt.last_day(month_start, 'month') }}
{%- endmacro %}


{# The month n months after month_start, as a DATE. #}
{% macro pci_add_months(month_start, n) -%}
    cast({{ dbt.dateadd('month', n, month_start) }} as date)
{%- endmacro %}
