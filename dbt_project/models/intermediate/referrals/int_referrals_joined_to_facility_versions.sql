-- each referral order with its sender's and receiver's versions in force on the sent day,
-- and the direction those tiers give (CONTRACTS.md §5)
with

referrals as (

    select * from {{ ref('stg_hospital__referrals') }}

),

facility_versions as (

    select * from {{ ref('dim_facility') }}

),

joined as (

    select
        referrals.*,
        senders.facility_version_key as sender_version_key,
        senders.tier as sender_tier,
        senders.facility_type as sender_facility_type,
        senders.county_code as sender_county_code,
        senders.alliance_id as sender_alliance_id,
        receivers.facility_version_key as receiver_version_key,
        receivers.tier as receiver_tier,
        receivers.facility_type as receiver_facility_type,
        receivers.county_code as receiver_county_code,
        receivers.is_in_region as receiver_is_in_region
    from referrals
    left join facility_versions as senders
        on {{ facility_version_as_of('senders', 'referrals.from_facility_code', 'referrals.sent_date') }}
    left join facility_versions as receivers
        on {{ facility_version_as_of('receivers', 'referrals.to_facility_code', 'referrals.sent_date') }}

)

select
    referral_id,
    from_facility_code,
    to_facility_code,
    sender_version_key,
    receiver_version_key,
    sender_tier,
    receiver_tier,
    sender_facility_type,
    receiver_facility_type,
    sender_county_code,
    sender_alliance_id,
    receiver_county_code,
    -- 上转 / 下转 wherever the receiver is (DOMAIN.md): a tier-2 county hospital sending to a
    -- provincial tier-3 hospital is `up`; being out of region is the attribute beside it
    case
        when sender_tier is null or receiver_tier is null then null
        when receiver_tier > sender_tier then 'up'
        when receiver_tier < sender_tier then 'down'
        else 'lateral'
    end as direction,
    not receiver_is_in_region as is_out_of_region,
    diagnosis_code,
    is_green_channel,
    status,
    sent_at,
    sent_date,
    -- completed implies accepted: fall back to completed_at if a source left accepted_at empty
    coalesce(accepted_at, case when status = 'completed' then completed_at end) as accepted_at,
    completed_at,
    rejected_at,
    patient_key,
    patient_sex,
    patient_birth_year,
    patient_county_code,
    updated_at,
    ds as loaded_ds
from joined
