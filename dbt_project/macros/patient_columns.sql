{#- The pseudonymised patient columns every patient-level source carries (CONTRACTS.md §3). -#}
{% macro patient_columns() -%}
        cast(patient_key as varchar) as patient_key,
        cast(patient_sex as varchar) as patient_sex,
        cast(patient_birth_year as integer) as patient_birth_year,
        cast(patient_county_code as varchar) as patient_county_code,
        cast(resident_id_valid as boolean) as resident_id_valid
{%- endmacro %}
