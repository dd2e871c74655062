{{ config(unique_key='referral_id') }}
-- latest state of each referral order: it re-appears in a later ds whenever its status moves
with

source as (

    select * from {{ source('hospital', 'referrals') }}
    {{ tonights_versions(source('hospital', 'referrals'), ['referral_id']) }}

),

renamed as (

    select
        cast(referral_id as varchar) as referral_id,
        cast(from_facility_code as varchar) as from_facility_code,
        cast(to_facility_code as varchar) as to_facility_code,
        cast(diagnosis_code as varchar) as diagnosis_code,
        cast(is_green_channel as boolean) as is_green_channel,
        cast(status as varchar) as status,
        cast(sent_at as timestamp) as sent_at,
        cast(sent_at as date) as sent_date,
        cast(accepted_at as timestamp) as accepted_at,
        cast(completed_at as timestamp) as completed_at,
        cast(rejected_at as timestamp) as rejected_at,
        {{ patient_columns() }},
        cast(updated_at as timestamp) as updated_at,
        cast(ds as date) as ds

    from source

),

versions as (

    select * from renamed
    {{ kept_versions(source('hospital', 'referrals'), ['referral_id']) }}

)

select * from versions
qualify row_number() over (partition by referral_id order by updated_at desc, ds desc) = 1
