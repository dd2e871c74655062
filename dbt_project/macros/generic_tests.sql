{#- Small generic tests of our own (no dbt packages: the hub is not reachable from here). -#}

{#- Every non-null value lies in [min_value, max_value] (bounds optional, inclusive). -#}
{% test accepted_range(model, column_name, min_value=none, max_value=none) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null
  and (
    false
    {%- if min_value is not none %} or {{ column_name }} < {{ min_value }}{% endif %}
    {%- if max_value is not none %} or {{ column_name }} > {{ max_value }}{% endif %}
  )
{% endtest %}

{#- The combination of columns is unique; nulls compare equal (a grain key may hold null, e.g.
    a referral whose sender belongs to no alliance). -#}
{% test unique_combination(model, combination_of_columns) %}
select {{ combination_of_columns | join(', ') }}, count(*) as n_rows
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#- A boolean SQL expression holds on every row. -#}
{% test expression_is_true(model, expression) %}
select *
from {{ model }}
where not coalesce(({{ expression }}), false)
{% endtest %}

{#- SCD2 versions of one key do not overlap and leave no gap: each version ends where the
    next begins, and exactly the last one is current. -#}
{% test scd2_contiguous(model, key, valid_from='valid_from', valid_to='valid_to') %}
with ordered as (
    select
        {{ key }} as scd_key,
        {{ valid_from }} as vf,
        {{ valid_to }} as vt,
        lead({{ valid_from }}) over (partition by {{ key }} order by {{ valid_from }}) as next_vf
    from {{ model }}
)
select *
from ordered
where (next_vf is null and vt is not null)
   or (next_vf is not null and vt is distinct from next_vf)
{% endtest %}
