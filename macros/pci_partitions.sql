{#
  Month-partitioned incremental models (docs/performance.md, "Month partitions").

  A per-month derivation keeps one partition per month: its rows of month m are
  a function of the raw exports of months m-lookback .. m and of the project.
  The table pci_partitions of the build schema records, for each model and
  month, what a kept partition was derived from ("inputs": the project's
  SHA-256 and the current load_id of each month m-lookback .. m, from
  raw.loads). It is only inserted into; the newest row of a month holds, and a
  marker row (partition_month null) written when the model's table is created
  anew forgets the rows before it.

  A build for score months F .. L needs the model's partitions F+horizon .. L
  (its months that are landed). It derives:
  - when the table is created (first build, --full-refresh): every needed month;
  - otherwise: the needed months whose inputs differ from the recorded ones
    (a new month, a month landed again or a month whose window reads one, a
    month never derived, a changed project). The kept partitions of the other
    months are read, not rebuilt.
  The months it derives are cleared first (pci_clear_partitions), whatever the
  new rows: a month landed again whose export yields fewer rows, or none, keeps
  no row of the old load. The strategy that writes them is chosen per engine
  (pci_partition_strategy: append after the clear on DuckDB, insert_overwrite
  of the partitions on Spark).

  In a model, the partition is stated once (column, lookback, horizon), and both the
  config (hooks, strategy, and on Spark the table's partitioning) and the filters
  read it:
    {%- set partition = {'column': 'event_month', 'lookback': 1, 'horizon': -23} -%}
    {{ config(pci_partitioned(partition)) }}
    ... where {{ pci_partition_filter('month', partition) }}
#}

{% macro pci_partition_state_relation() -%}
    {{ return(pci_build_relation('pci_partitions')) }}
{%- endmacro %}


{% macro pci_build_relation(identifier) -%}
    {#- a table of the build schema (Spark's relations have no database) -#}
    {%- if target.database is defined and target.database -%}
        {{ return(api.Relation.create(database=target.database, schema=target.schema, identifier=identifier)) }}
    {%- endif -%}
    {{ return(api.Relation.create(schema=target.schema, identifier=identifier)) }}
{%- endmacro %}


{% macro pci_loads_relation() -%}
    {#- raw.loads, the landing's record of the loads (a source: read here without a ref, so
        that the models' unit tests need no input for it) -#}
    {%- for node in graph.sources.values() if node.source_name == 'partner_center' and node.name == 'loads' -%}
        {%- if node.database -%}
            {{ return(api.Relation.create(database=node.database, schema=node.schema, identifier=node.identifier)) }}
        {%- endif -%}
        {{ return(api.Relation.create(schema=node.schema, identifier=node.identifier)) }}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error("source partner_center.loads is not declared") }}
{%- endmacro %}


{% macro _pci_is_incremental() -%}
    {#- is_incremental(), false in a unit test (no relation: dbt's default is a full build) -#}
    {{ return(this is not none and is_incremental()) }}
{%- endmacro %}


{% macro pci_build_stamp() -%}
    {{ return(run_started_at.strftime('%Y-%m-%d %H:%M:%S.%f')) }}
{%- endmacro %}


{% macro pci_create_partition_state() -%}
    {{ return(adapter.dispatch('pci_create_partition_state')()) }}
{%- endmacro %}

{% macro default__pci_create_partition_state() -%}
    create table if not exists {{ pci_partition_state_relation() }} (
        model_name {{ dbt.type_string() }},
        partition_month date,
        inputs {{ dbt.type_string() }},
        built_at {{ dbt.type_string() }}
    )
{%- endmacro %}


{% macro pci_partition_strategy() -%}
    {{ return(adapter.dispatch('pci_partition_strategy')()) }}
{%- endmacro %}

{% macro default__pci_partition_strategy() -%}
    {{ return('append') }}
{%- endmacro %}

{% macro spark__pci_partition_strategy() -%}
    {{ return('insert_overwrite') }}
{%- endmacro %}


{% macro pci_partitioned(partition) -%}
    {#- the config of a month-partitioned incremental model, from its partition
        ({'column': ..., 'lookback': ..., 'horizon': ...}); the engine adds its storage -#}
    {%- set spec = partition | tojson -%}
    {%- set settings = {
        'materialized': 'incremental',
        'incremental_strategy': pci_partition_strategy(),
        'on_schema_change': 'sync_all_columns',
        'pre_hook': '{{ pci_clear_partitions(' ~ spec ~ ') }}',
        'post_hook': '{{ pci_record_partitions(' ~ spec ~ ') }}'
    } -%}
    {%- do settings.update(adapter.dispatch('pci_partition_storage')(partition.column)) -%}
    {{ return(settings) }}
{%- endmacro %}

{% macro default__pci_partition_storage(column) -%}
    {{ return({}) }}
{%- endmacro %}

{% macro spark__pci_partition_storage(column) -%}
    {#- Parquet files partitioned by the month: insert_overwrite replaces a month's partition -#}
    {{ return({'file_format': 'parquet', 'partition_by': [column]}) }}
{%- endmacro %}


{% macro _pci_partitions_to_derive_sql(lookback, horizon) -%}
    {#- months to derive (as text) and their inputs, for the model being built -#}
    {%- if not execute -%}
        {#- parsing (hooks are rendered then too): nothing to look up yet -#}
        {{ return("select cast(null as " ~ dbt.type_string() ~ ") as month, cast(null as "
                  ~ dbt.type_string() ~ ") as inputs") }}
    {%- endif -%}
    {%- if var('pci_first_score_month', none) is not none -%}
        {#- a hand-run build (the range from --vars): its partitions are derived again by the
            next build of pci score -#}
        {%- set sha = 'vars' -%}
    {%- else -%}
        {%- set sha = run_query("select project_sha256 from " ~ pci_score_request_relation())[0][0] -%}
    {%- endif -%}
    with loads as (
        select
            cast(export_month as date) as month,
            cast(load_id as {{ dbt.type_string() }}) as load_id
        from {{ pci_loads_relation() }}
        where is_current
    ),

    needed as (
        select month from loads
        where month between {{ pci_score_month_offset('first', horizon) }} and {{ pci_score_month_offset('last', 0) }}
    ),

    expected as (
        select
            needed.month,
            {{ dbt.concat(["'" ~ sha ~ "|'", dbt.listagg('loads.load_id', "','", 'order by loads.month')]) }} as inputs
        from needed
        inner join loads
            on loads.month between {{ pci_add_months('needed.month', -lookback) }} and needed.month
        group by needed.month
    ),

    recorded as (
        select partition_month, inputs, built_at
        from {{ pci_partition_state_relation() }}
        where model_name = '{{ this.identifier }}'
    ),

    since_created as (
        select partition_month, inputs, built_at
        from recorded
        where partition_month is not null
            and built_at >= coalesce((select max(built_at) from recorded where partition_month is null), '')
    ),

    newest as (
        select partition_month, inputs
        from (
            select
                partition_month,
                inputs,
                row_number() over (partition by partition_month order by built_at desc) as recency
            from since_created
        ) as ranked
        where recency = 1
    )

    select
        cast(expected.month as {{ dbt.type_string() }}) as month,
        expected.inputs
    from expected
    left join newest
        on newest.partition_month = expected.month
    where newest.inputs is null or newest.inputs <> expected.inputs
{%- endmacro %}


{% macro pci_partitions_to_derive(lookback, horizon) -%}
    {#- month numbers (year * 12 + month - 1) of the partitions this build derives; [] at parse -#}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set months = [] -%}
    {%- for row in run_query(_pci_partitions_to_derive_sql(lookback, horizon)) -%}
        {%- do months.append(_pci_text_month_index(row[0][0:10], 'partition month')) -%}
    {%- endfor -%}
    {{ return(months | sort) }}
{%- endmacro %}


{% macro pci_partition_filter(column, partition, shifts=[0]) -%}
    {#- the predicate "column is a month this build derives, shifted by one of the shifts"
        (shift -1: the month before each, as an event month reads the seats of m-1) -#}
    {%- if _pci_is_incremental() -%}
        {%- set literals = [] -%}
        {%- for index in pci_partitions_to_derive(partition.lookback, partition.horizon) -%}
            {%- for shift in shifts -%}
                {%- set literal = pci_month_literal_of(index + shift) -%}
                {%- if literal not in literals -%}{%- do literals.append(literal) -%}{%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- if literals -%}
            {{ column }} in ({{ literals | join(', ') }})
        {%- else -%}
            1 = 0
        {%- endif -%}
    {%- else -%}
        {{ pci_month_horizon(column, partition.horizon + (shifts | min), shifts | max) }}
    {%- endif -%}
{%- endmacro %}


{% macro pci_clear_partitions(partition) -%}
    {#- pre-hook: clear the partitions about to be derived; when the table is created anew,
        a marker that forgets what was recorded before -#}
    {%- if _pci_is_incremental() -%}
        {%- set months = pci_partitions_to_derive(partition.lookback, partition.horizon) -%}
        {%- if months -%}
            {{ adapter.dispatch('pci_delete_partitions')(this, partition.column, months) }}
        {%- endif -%}
    {%- else -%}
        insert into {{ pci_partition_state_relation() }} (model_name, partition_month, inputs, built_at)
        values ('{{ this.identifier }}', null, null, '{{ pci_build_stamp() }}')
    {%- endif -%}
{%- endmacro %}

{% macro default__pci_delete_partitions(relation, column, months) -%}
    delete from {{ relation }}
    where {{ column }} in ({% for index in months %}{{ pci_month_literal_of(index) }}{{ ', ' if not loop.last }}{% endfor %})
{%- endmacro %}

{% macro spark__pci_delete_partitions(relation, column, months) -%}
    {#- a partition spec takes plain literals; several specs in one statement -#}
    alter table {{ relation }} drop if exists {% for index in months %}partition ({{ column }} = '{{ '%04d-%02d-01' | format(index // 12, index % 12 + 1) }}'){{ ', ' if not loop.last }}{% endfor %}
{%- endmacro %}


{% macro pci_record_partitions(partition) -%}
    {#- post-hook: record the inputs of the partitions just derived -#}
    insert into {{ pci_partition_state_relation() }} (model_name, partition_month, inputs, built_at)
    select
        '{{ this.identifier }}',
        cast(month as date),
        inputs,
        '{{ pci_build_stamp() }}'
    from (
        {{ _pci_partitions_to_derive_sql(partition.lookback, partition.horizon) }}
    ) as derived
{%- endmacro %}


{% macro pci_months_built(relation) -%}
    {#- DATE literals of the partitions of relation derived by this build (for a test's
        where: "month in (__pci_months_built__)"); null when none -#}
    {%- if not execute -%}{{ return('null') }}{%- endif -%}
    {%- set state = pci_partition_state_relation() -%}
    {%- if adapter.get_relation(database=state.database, schema=state.schema, identifier=state.identifier) is none -%}
        {#- no build has run here (e.g. dbt compile or docs generate by hand): nothing was derived -#}
        {{ return('null') }}
    {%- endif -%}
    {%- set rows = run_query("select cast(partition_month as " ~ dbt.type_string() ~ ") from "
                             ~ pci_partition_state_relation() ~ " where model_name = '" ~ relation.identifier
                             ~ "' and partition_month is not null and built_at = '" ~ pci_build_stamp() ~ "'") -%}
    {%- set literals = [] -%}
    {%- for row in rows -%}
        {%- do literals.append("cast('" ~ row[0][0:10] ~ "' as date)") -%}
    {%- endfor -%}
    {{ return(literals | join(', ') if literals else 'null') }}
{%- endmacro %}
