{#- Custom schemas are used verbatim (`marts`, not `main_marts`): the schema names are part of
    the BI contract (DESIGN.md, CONTRACTS.md §4). -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
