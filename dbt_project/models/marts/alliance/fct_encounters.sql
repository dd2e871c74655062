{{ config(
    materialized='incremental',
    unique_key='encounter_id',
    meta={'tested_tonight': 'loaded_ds in __days__ or visit_date >= __facility_change_floor__'}
) }}
-- depends_on: {{ ref('stg_hospital__encounters') }}
-- depends_on: {{ ref('dim_facility') }}

with

encounters as (

    select * from {{ ref('int_encounters_joined_to_facility_versions') }}
    {% if is_incremental() %}
    where loaded_ds in {{ processing_days(ref('stg_hospital__encounters')) }}
        or visit_date >= {{ facility_change_floor() }}
    {% endif %}

)

select
    encounter_id,
    facility_code,
    facility_version_key,
    facility_type,
    is_primary_care,
    facility_county_code,
    alliance_id,
    encounter_type,
    is_visit,
    is_admission,
    visit_at,
    visit_date,
    discharge_at,
    diagnosis_code,
    diagnosis_category,
    department,
    patient_key,
    patient_sex,
    patient_birth_year,
    patient_county_code,
    patient_county_code = facility_county_code as is_in_county,
    updated_at,
    loaded_ds
from encounters
