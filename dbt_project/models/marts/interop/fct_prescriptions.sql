{{ config(
    materialized='incremental',
    unique_key='prescription_id',
    meta={'tested_tonight': 'loaded_ds in __days__ or prescribed_date >= __facility_change_floor__'}
) }}
-- depends_on: {{ ref('stg_prescriptions__prescriptions') }}
-- depends_on: {{ ref('stg_prescriptions__dispenses') }}
-- depends_on: {{ ref('dim_facility') }}

with

prescriptions as (

    {% if is_incremental() %}
    {%- set days = processing_days(ref('stg_prescriptions__prescriptions')) -%}
    {%- set floor = facility_change_floor() %}
    -- the prescriptions staged or dispensed tonight, joined alone (macros/joined_facts.sql)
    select * from ({{ prescriptions_joined_to_dispenses(
        "select prescription_id from " ~ ref('stg_prescriptions__prescriptions') ~ " where ds in " ~ days
        ~ " or prescribed_date >= " ~ floor
        ~ " union select prescription_id from " ~ ref('stg_prescriptions__dispenses') ~ " where ds in " ~ days
    ) }})
    where loaded_ds in {{ days }} or prescribed_date >= {{ floor }}
    {% else %}
    select * from {{ ref('int_prescriptions_joined_to_dispenses') }}
    {% endif %}

)

select
    prescription_id,
    hospital_code,
    hospital_county_code,
    hospital_alliance_id,
    encounter_id,
    prescribed_at,
    prescribed_date,
    main_drug_name,
    drug_count,
    total_amount,
    is_flowed_out,
    pharmacy_credit_code,
    dispensing_pharmacy_code,
    dispense_id,
    dispensed_at,
    is_dispensed,
    patient_key,
    patient_sex,
    patient_birth_year,
    patient_county_code,
    updated_at,
    loaded_ds
from prescriptions
