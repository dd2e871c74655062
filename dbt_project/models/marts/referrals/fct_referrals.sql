{{ config(
    materialized='incremental',
    unique_key='referral_id',
    meta={'tested_tonight': 'loaded_ds in __days__ or sent_date >= __facility_change_floor__'}
) }}
-- depends_on: {{ ref('stg_hospital__referrals') }}
-- depends_on: {{ ref('dim_facility') }}

with

referrals as (

    select * from {{ ref('int_referrals_joined_to_facility_versions') }}
    {% if is_incremental() %}
    where loaded_ds in {{ processing_days(ref('stg_hospital__referrals')) }}
        or sent_date >= {{ facility_change_floor() }}
    {% endif %}

)

select
    referral_id,
    from_facility_code,
    to_facility_code,
    sender_version_key,
    receiver_version_key,
    sender_tier,
    receiver_tier,
    sender_county_code,
    sender_alliance_id,
    receiver_county_code,
    direction,
    is_out_of_region,
    diagnosis_code,
    is_green_channel,
    status,
    sent_at,
    sent_date,
    accepted_at,
    completed_at,
    rejected_at,
    accepted_at is not null as is_accepted,
    cast(date_diff('second', sent_at, accepted_at) as double) / 3600 as hours_to_accept,
    patient_key,
    patient_sex,
    patient_birth_year,
    patient_county_code,
    updated_at,
    loaded_ds
from referrals
