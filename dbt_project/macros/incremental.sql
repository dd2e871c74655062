{#-
    Helpers for the day-incremental models.

    Tonight's run processes the raw partitions of business day `ds` (env YILIAN_DS, set by the
    marts DAG and yilian.warehouse.dbt; comma-separated for several days). A row that changed tonight (a referral accepted, a late dispense, a report signed)
    re-appears in tonight's partition, so the facts upsert exactly the rows whose latest version
    came from that partition (`loaded_ds = ds`), and the marts recompute the business days of
    those rows. Without `ds` an incremental run processes the latest loaded partition.
-#}

{#- The business days tonight's run processes. Read only when executing: the day is not part
    of what dbt parses, so a new day keeps the partial parse (a `var` would not: dbt hashes the
    command-line vars into its parse state). -#}
{% macro ds_values() -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {{ return(env_var('YILIAN_DS', '').split(',') | map('trim') | reject('equalto', '') | list) }}
{%- endmacro %}

{#- For `<column> in {{ processing_days(...) }}`: tonight's days, or without YILIAN_DS the latest
    `column` of `relation`. -#}
{% macro processing_days(relation, column='ds') -%}
    {%- set days = ds_values() -%}
    {%- if days -%}
        ({% for d in days %}cast('{{ d }}' as date){{ ", " if not loop.last }}{% endfor %})
    {%- else -%}
        (select max({{ column }}) from {{ relation }})
    {%- endif -%}
{%- endmacro %}

{#- The same days as rows of one column `alias`. -#}
{% macro processing_days_rows(relation, column='ds', alias='ds') -%}
    {%- set days = ds_values() -%}
    {%- if days -%}
        select cast(d as date) as {{ alias }}
        from (values {% for d in days %}('{{ d }}'){{ ", " if not loop.last }}{% endfor %}) as days (d)
    {%- else -%}
        select max({{ column }}) as {{ alias }} from {{ relation }}
    {%- endif -%}
{%- endmacro %}

{#- The earliest day whose facility attributes (tier, county, alliance, status) changed with
    tonight's facility-master partition: events on or after it are re-derived, because facts
    carry the facility version in force on the event day. Null when nothing changed. A literal,
    queried when the model compiles (dim_facility is built by then): as a subquery it stopped
    DuckDB pushing `loaded_ds in (…) or <day> >= <floor>` into the scan, and every night read
    and joined the whole history of the fact's staging table. `dim_facility`: its relation, for
    a caller that may not ref() it (a data test). -#}
{% macro facility_change_floor(dim_facility=none) -%}
    {%- set days = ds_values() -%}
    {%- if days -%}
        {%- set found = run_query(
            "select cast(min(valid_from) as varchar) from " ~ (dim_facility or ref('dim_facility'))
            ~ " where loaded_ds in " ~ processing_days(none)
        ).columns[0].values()[0] -%}
        {%- if found is not none -%}
            cast('{{ found }}' as date)
        {%- else -%}
            cast(null as date)
        {%- endif -%}
    {%- else -%}
        cast(null as date)
    {%- endif -%}
{%- endmacro %}

{#- A rate as a fraction: null when the denominator is zero or null. -#}
{% macro safe_ratio(numerator, denominator) -%}
    case when {{ denominator }} > 0 then cast({{ numerator }} as double) / {{ denominator }} end
{%- endmacro %}

{#- Join condition: the version of facility `code_expr` in force on day `date_expr`
    (valid_from inclusive, valid_to exclusive, null valid_to = still in force). -#}
{% macro facility_version_as_of(alias, code_expr, date_expr) -%}
    {{ alias }}.facility_code = {{ code_expr }}
    and {{ date_expr }} >= {{ alias }}.valid_from
    and ({{ alias }}.valid_to is null or {{ date_expr }} < {{ alias }}.valid_to)
{%- endmacro %}

{#- Staging, incremental runs: the latest version of each key is the latest of the version
    kept so far ({{ this }}) and tonight's versions, so a night reads tonight's partitions and
    the kept rows of tonight's keys, never the history of raw. `tonights_versions` filters the
    raw source to tonight's partitions; `kept_versions` adds the kept rows of the keys found
    there (the keys of the model's `renamed` CTE; a union before its latest-version pick).

    A re-load of a day already built may have replaced the very version a key kept: such keys
    (their kept row came from one of tonight's partitions) are picked again from every version
    raw holds, as a full refresh would. Checked when the model compiles, so a normal night's SQL
    has no such branch. -#}
{% macro tonights_versions(relation, key_columns) -%}
    {%- if is_incremental() -%}
    where ds in {{ processing_days(relation) }}
    {%- set keys = key_columns | join(', ') -%}
    {%- set reloaded = "select " ~ keys ~ " from " ~ this ~ " where ds in " ~ processing_days(relation) -%}
    {%- if execute and run_query("select count(*) from (" ~ reloaded ~ ")").columns[0].values()[0] > 0 %}
        or ({{ keys }}) in ({{ reloaded }})
    {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{% macro kept_versions(relation, key_columns) -%}
    {%- if is_incremental() -%}
    {%- set keys = key_columns | join(', ') -%}
    union all by name
    select * from {{ this }}
    where rowid in (
        -- the key columns alone first: a history's rows are read only where a key matched
        select rowid from {{ this }}
        where ({{ keys }}) in (select {{ keys }} from renamed)
            and ds not in {{ processing_days(relation) }}
            {%- if key_columns | length == 1 %}
            -- the range of tonight's keys, for zone maps (macros/key_range.sql): renamed's keys
            -- are tonight's raw keys and, after a re-load, the keys kept from tonight's days
            and {{ key_range(keys,
                "select cast(" ~ keys ~ " as varchar) from " ~ relation ~ " where ds in " ~ processing_days(relation)
                ~ " union all select " ~ keys ~ " from " ~ this ~ " where ds in " ~ processing_days(relation)
            ) }}
            {%- endif %}
    )
    {%- endif -%}
{%- endmacro %}

{#- The business days a dense mart has rows for, as one column `date`: on a nightly run
    tonight's days and the `date_column` days of the `fact` rows that changed tonight (or on and
    after a facility-master change); on a full refresh every loaded business day
    (int_business_days_loaded) and every `date_column` day of `fact`. -#}
{% macro mart_days(fact, date_column) -%}
    {%- if is_incremental() -%}
    {{ processing_days_rows(fact, 'loaded_ds', 'date') }}
    union
    select {{ date_column }} from {{ fact }}
    where loaded_ds in {{ processing_days(fact, 'loaded_ds') }}
        or {{ date_column }} >= {{ facility_change_floor() }}
    {%- else -%}
    select date_day as date from {{ ref('int_business_days_loaded') }}
    union
    select {{ date_column }} from {{ fact }}
    {%- endif -%}
{%- endmacro %}
