{#
  The score range of a build (vars pci_first_score_month .. pci_last_score_month)
  as DATE literals, so that every derivation reads only the months the range
  needs (see docs/performance.md). Literal bounds let DuckDB skip the row groups
  of other months when it scans the raw tables.

  - pci_score_month_offset('first', n): the first score month plus n months.
  - pci_score_month_offset('last', n): the last score month plus n months.
  - pci_month_horizon(column, first_offset, last_offset=0): the predicate
        column between first + first_offset months and last + last_offset months
  - pci_score_months_shifted(column, offsets): the predicate "column is one of
    the score months shifted by one of the offsets" (e.g. [0, -12]: a score
    month or a baseline month).
#}

{% macro _pci_month_index(which) -%}
    {%- set text = var('pci_first_score_month' if which == 'first' else 'pci_last_score_month') | string -%}
    {%- if modules.re.match('^[0-9]{4}-(0[1-9]|1[0-2])-01$', text) is none -%}
        {{ exceptions.raise_compiler_error("vars pci_first_score_month / pci_last_score_month must be 'YYYY-MM-01', got '" ~ text ~ "'") }}
    {%- endif -%}
    {{ return((text[0:4] | int) * 12 + (text[5:7] | int) - 1) }}
{%- endmacro %}


{% macro _pci_month_literal(index) -%}
    {%- set year = (index // 12) -%}
    {%- set month = (index % 12) + 1 -%}
    {{ return("cast('" ~ ('%04d' | format(year)) ~ "-" ~ ('%02d' | format(month)) ~ "-01' as date)") }}
{%- endmacro %}


{% macro pci_score_month_offset(which, n) -%}
    {{ return(_pci_month_literal(_pci_month_index(which) + n)) }}
{%- endmacro %}


{% macro pci_month_horizon(column, first_offset, last_offset=0) -%}
    {{ column }} between {{ pci_score_month_offset('first', first_offset) }} and {{ pci_score_month_offset('last', last_offset) }}
{%- endmacro %}


{% macro pci_score_months_shifted(column, offsets) -%}
    {%- set first_index = _pci_month_index('first') -%}
    {%- set last_index = _pci_month_index('last') -%}
    {%- set months = [] -%}
    {%- for offset in offsets -%}
        {%- for index in range(first_index + offset, last_index + offset + 1) -%}
            {%- set literal = _pci_month_literal(index) -%}
            {%- if literal not in months -%}{%- do months.append(literal) -%}{%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ column }} in ({{ months | join(', ') }})
{%- endmacro %}
