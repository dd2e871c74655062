{{ config(
    materialized='incremental',
    unique_key='recognition_id',
    meta={'tested_tonight': 'loaded_ds in __days__ or presented_date >= __facility_change_floor__'}
) }}

with

recognitions as (

    select * from {{ ref('stg_hospital__result_recognitions') }}
    {% if is_incremental() %}
    where ds in {{ processing_days(ref('stg_hospital__result_recognitions')) }}
        or presented_date >= {{ facility_change_floor() }}
    {% endif %}

),

facility_versions as (

    select * from {{ ref('dim_facility') }}

)

select
    recognitions.recognition_id,
    recognitions.encounter_id,
    recognitions.facility_code,
    presenters.facility_version_key,
    presenters.county_code as facility_county_code,
    presenters.alliance_id,
    recognitions.origin_facility_code,
    recognitions.item_code,
    recognitions.item_category,
    recognitions.is_in_catalogue,
    recognitions.is_recognised,
    recognitions.presented_at,
    recognitions.presented_date,
    recognitions.patient_key,
    recognitions.patient_sex,
    recognitions.patient_birth_year,
    recognitions.patient_county_code,
    recognitions.updated_at,
    recognitions.ds as loaded_ds
from recognitions
left join facility_versions as presenters
    on {{ facility_version_as_of('presenters', 'recognitions.facility_code', 'recognitions.presented_date') }}
