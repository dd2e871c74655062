{{ config(
    materialized='incremental',
    unique_key='study_id',
    meta={'tested_tonight': 'loaded_ds in __days__ or read_requested_date >= __facility_change_floor__'}
) }}
-- depends_on: {{ ref('stg_imaging__studies') }}
-- depends_on: {{ ref('stg_imaging__reports') }}
-- depends_on: {{ ref('dim_modality') }}
-- depends_on: {{ ref('dim_facility') }}

with

reads as (

    {% if is_incremental() %}
    {%- set days = processing_days(ref('stg_imaging__studies')) -%}
    {%- set floor = facility_change_floor() %}
    -- the studies staged or reported tonight, joined alone (macros/joined_facts.sql)
    select * from ({{ remote_reads_joined_to_reports(
        "select study_id from " ~ ref('stg_imaging__studies') ~ " where ds in " ~ days
        ~ " or read_requested_date >= " ~ floor
        ~ " union select study_id from " ~ ref('stg_imaging__reports') ~ " where ds in " ~ days
    ) }})
    where loaded_ds in {{ days }} or read_requested_date >= {{ floor }}
    {% else %}
    select * from {{ ref('int_remote_reads_joined_to_reports') }}
    {% endif %}

)

select
    study_id,
    report_id,
    modality_code,
    requesting_facility_code,
    requesting_county_code,
    requesting_alliance_id,
    reading_facility_code,
    number_of_series,
    exam_at,
    uploaded_at,
    read_requested_at,
    read_requested_date,
    issued_at,
    is_reported,
    turnaround_minutes,
    turnaround_target_minutes,
    is_within_target,
    counts_as_remote_imaging,
    patient_key,
    patient_sex,
    patient_birth_year,
    patient_county_code,
    loaded_ds
from reads
