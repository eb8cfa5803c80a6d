{#
  What dbt's own cross-database macros do differently on Spark, overridden in the
  root project (dbt looks here first for its `dbt` namespace's spark__ macros).
#}

{#
  listagg keeping its order: dbt-spark's listagg drops the "order by" (with a
  warning), which changes the text of a list such as crossing_subscriptions.
  Here the rows are collected as (sort keys..., measure) and sorted: the keys of
  order_by_clause ("order by a, b"; ascending only) decide, as in DuckDB's
  string_agg(... order by ...). Null measures are skipped, as listagg does.
#}
{% macro spark__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
    {%- if limit_num -%}
        {{ exceptions.raise_compiler_error("spark__listagg: limit_num is not supported") }}
    {%- endif -%}
    {%- if order_by_clause -%}
        {%- set keys = order_by_clause.strip()[8:].split(',') if order_by_clause.strip().lower().startswith('order by')
                       else exceptions.raise_compiler_error("spark__listagg: unexpected order_by_clause " ~ order_by_clause) -%}
        {%- set fields = [] -%}
        {%- for key in keys -%}
            {%- if key.strip().lower().endswith(' desc') -%}
                {{ exceptions.raise_compiler_error("spark__listagg: descending order is not supported") }}
            {%- endif -%}
            {%- do fields.append(key.strip() | replace(' asc', '') ~ ' as k' ~ loop.index) -%}
        {%- endfor -%}
        array_join(
            transform(
                array_sort(filter(
                    collect_list(struct({{ fields | join(', ') }}, {{ measure }} as v)),
                    x -> x.v is not null
                )),
                x -> cast(x.v as string)
            ),
            {{ delimiter_text }}
        )
    {%- else -%}
        array_join(collect_list(cast({{ measure }} as string)), {{ delimiter_text }})
    {%- endif -%}
{%- endmacro %}


{#
  The marts' contracts on Spark: the column names and types are checked as on
  DuckDB, but a Parquet table cannot hold a NOT NULL constraint (dbt-spark would
  "alter column set not null", which only Delta tables accept). On Parquet the
  marts' not_null and unique data tests are what checks them; on a Delta or
  Iceberg table the constraints are applied as dbt-spark does.
#}
{% macro spark__persist_constraints(relation, model) -%}
    {%- set contract_config = config.get('contract') -%}
    {%- if contract_config.enforced and config.get('file_format', 'parquet') in ['delta', 'iceberg'] -%}
        {%- do alter_table_add_constraints(relation, model.constraints) -%}
        {%- do alter_column_set_constraints(relation, model.columns) -%}
    {%- endif -%}
{%- endmacro %}
