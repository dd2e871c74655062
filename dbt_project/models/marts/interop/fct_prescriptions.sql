{{ config(
    materialized='incremental',
    unique_key='prescription_id',
    meta={'tested_tonight': 'loaded_ds in __days__ or prescribed_date >= __facility_change_floor__'}
) }}
-- depends_on: {{ ref('stg_prescriptions__prescriptions') }}
-- depends_on: {{ ref('dim_facility') }}

with

prescriptions as (

    select * from {{ ref('int_prescriptions_joined_to_dispenses') }}
    {% if is_incremental() %}
    where loaded_ds in {{ processing_days(ref('stg_prescriptions__prescriptions')) }}
        or prescribed_date >= {{ facility_change_floor() }}
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
