{{ config(unique_key=['facility_code', 'version_no']) }}
-- one row per facility version (facility_code, version_no): its latest update, from the first
-- daily snapshot that held it (the night the change became known)
with

source as (

    select * from {{ source('hospital', 'facilities') }}
    {{ tonights_versions(source('hospital', 'facilities'), ['facility_code', 'version_no']) }}

),

renamed as (

    select
        cast(facility_code as varchar) as facility_code,
        cast(version_no as integer) as version_no,
        cast(credit_code as varchar) as credit_code,
        cast(facility_name as varchar) as facility_name,
        cast(facility_type as varchar) as facility_type,
        cast(tier as integer) as tier,
        cast(grade as varchar) as grade,
        cast(county_code as varchar) as county_code,
        cast(prefecture_code as varchar) as prefecture_code,
        cast(alliance_id as varchar) as alliance_id,
        cast(status as varchar) as status,
        cast(merged_into as varchar) as merged_into,
        cast(effective_date as date) as effective_date,
        cast(updated_at as timestamp) as updated_at,
        cast(ds as date) as ds

    from source

),

versions as (

    select * from renamed
    {{ kept_versions(source('hospital', 'facilities'), ['facility_code', 'version_no']) }}

)

select * from versions
qualify row_number() over (
    partition by facility_code, version_no order by updated_at desc, ds asc
) = 1
