{#
  The score range of a build as DATE literals, so that every derivation reads
  only the months the range needs (see docs/performance.md). Literal bounds let
  the engine skip the row groups (partitions) of other months.

  Where the range comes from (pci_score_range):
  - the table pci_score_request of the build schema, one row (first_score_month,
    last_score_month, project_sha256), written by pci.score.scoring before each
    build. It is read when a node is compiled for execution, so a new score
    month does not change dbt's vars and the project is not parsed again;
  - vars pci_first_score_month / pci_last_score_month ('YYYY-MM-01') when both
    are set: the unit tests' overrides, and hand-run `dbt build --vars ...`.

  - pci_score_month_offset('first', n): the first score month plus n months.
  - pci_score_month_offset('last', n): the last score month plus n months.
  - pci_month_horizon(column, first_offset, last_offset=0): the predicate
        column between first + first_offset months and last + last_offset months
  - pci_score_months_shifted(column, offsets): the predicate "column is one of
    the score months shifted by one of the offsets" (e.g. [0, -12]: a score
    month or a baseline month).
#}

{% macro pci_score_request_relation() -%}
    {{ return(pci_build_relation('pci_score_request')) }}
{%- endmacro %}


{% macro _pci_text_month_index(text, name) -%}
    {%- if modules.re.match('^[0-9]{4}-(0[1-9]|1[0-2])-01$', text) is none -%}
        {{ exceptions.raise_compiler_error(name ~ " must be 'YYYY-MM-01', got '" ~ text ~ "'") }}
    {%- endif -%}
    {{ return((text[0:4] | int) * 12 + (text[5:7] | int) - 1) }}
{%- endmacro %}


{% macro pci_score_range() -%}
    {#- [first_index, last_index] as month numbers (year * 12 + month - 1) -#}
    {%- set first_var = var('pci_first_score_month', none) -%}
    {%- set last_var = var('pci_last_score_month', none) -%}
    {%- if first_var is not none and last_var is not none -%}
        {%- set bounds = [_pci_text_month_index(first_var | string, 'var pci_first_score_month'),
                          _pci_text_month_index(last_var | string, 'var pci_last_score_month')] -%}
    {%- elif not execute -%}
        {#- parsing: no range yet, any month will do -#}
        {%- set bounds = [24000, 24000] -%}
    {%- else -%}
        {%- set rows = run_query("select cast(first_score_month as " ~ dbt.type_string() ~ "), cast(last_score_month as "
                                 ~ dbt.type_string() ~ ") from " ~ pci_score_request_relation()) -%}
        {%- if rows | length != 1 -%}
            {{ exceptions.raise_compiler_error("table " ~ pci_score_request_relation() ~ " must hold one row (the score range of the build, written by pci score); it holds " ~ (rows | length)) }}
        {%- endif -%}
        {%- set bounds = [_pci_text_month_index(rows[0][0][0:10], 'first_score_month'),
                          _pci_text_month_index(rows[0][1][0:10], 'last_score_month')] -%}
    {%- endif -%}
    {%- if bounds[1] < bounds[0] -%}
        {{ exceptions.raise_compiler_error("the last score month is before the first") }}
    {%- endif -%}
    {{ return(bounds) }}
{%- endmacro %}


{% macro _pci_month_index(which) -%}
    {{ return(pci_score_range()[0 if which == 'first' else 1]) }}
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
    {%- set bounds = pci_score_range() -%}
    {%- set first_index = bounds[0] -%}
    {%- set last_index = bounds[1] -%}
    {%- set months = [] -%}
    {%- for offset in offsets -%}
        {%- for index in range(first_index + offset, last_index + offset + 1) -%}
            {%- set literal = _pci_month_literal(index) -%}
            {%- if literal not in months -%}{%- do months.append(literal) -%}{%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ column }} in ({{ months | join(', ') }})
{%- endmacro %}


{% macro pci_month_literal_of(index) -%}
    {{ return(_pci_month_literal(index)) }}
{%- endmacro %}


{% macro get_where_subquery(relation) -%}
    {#- dbt's test filter (config where), with the placeholders __pci_first_score_month__ and
        __pci_last_score_month__ replaced by the build's score range (DATE literals), and
        __pci_months_built__ by the months of a month-partitioned model this build derived
        (macros/pci_partitions.sql). A where config is rendered when the project is parsed;
        this runs when the test executes. -#}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- if '__pci_first_score_month__' in where or '__pci_last_score_month__' in where -%}
            {%- set where = where | replace('__pci_first_score_month__', pci_score_month_offset('first', 0))
                                  | replace('__pci_last_score_month__', pci_score_month_offset('last', 0)) -%}
        {%- endif -%}
        {%- if '__pci_months_built__' in where -%}
            {%- set where = where | replace('__pci_months_built__', pci_months_built(relation)) -%}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- else -%}
        {{ return(relation) }}
    {%- endif -%}
{%- endmacro %}
