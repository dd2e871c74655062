{#-
    The rows a data test looks at (dbt's documented hook for the `where` config: every generic
    test reads its model through `get_where_subquery`).

    On a nightly run (env YILIAN_DS names the days, no --full-refresh) the tests of a model
    whose config carries `meta.tested_tonight` look only at the rows that predicate selects: the
    rows the night wrote. A row the night did not write was tested on the night that wrote it and
    has not changed since, so a history of a year costs the night no more than a history of a day.
    `__days__` stands for tonight's days and `__facility_change_floor__` for the earliest day
    re-derived after a facility-master change (macros/incremental.sql), the same predicates the
    models select their rows with.

    Everything else is tested in full every night: models rebuilt in full (dimensions, views),
    the marts (a few rows per day: their tests cost dbt's per-test overhead, not rows), and any
    test of a model without `tested_tonight`. A full refresh, or a build without YILIAN_DS (the
    first build of an installation, `yilian build`), tests every row of every model. A test's own
    `where` config still applies, and-ed with the night's.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- if config.get('where') -%}
        {%- do conditions.append('(' ~ config.get('where') ~ ')') -%}
    {%- endif -%}
    {%- set tonight = tested_tonight() -%}
    {%- if tonight -%}
        {%- do conditions.append('(' ~ tonight ~ ')') -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ conditions | join(' and ') ~ ') dbt_subquery') -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}

{#- The predicate for the tested model's rows written tonight, or none (test every row). -#}
{% macro tested_tonight() -%}
    {%- if flags.FULL_REFRESH or not ds_values() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set tested = graph.nodes.get(model.attached_node or '') -%}
    {%- set predicate = tested.config.meta.get('tested_tonight') if tested else none -%}
    {%- if not predicate -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set predicate = predicate | replace('__days__', processing_days(none)) -%}
    {%- if '__facility_change_floor__' in predicate -%}
        {%- set predicate = predicate | replace('__facility_change_floor__', facility_change_floor(graph.nodes['model.yilian.dim_facility'].relation_name)) -%}
    {%- endif -%}
    {{ return(predicate) }}
{%- endmacro %}

