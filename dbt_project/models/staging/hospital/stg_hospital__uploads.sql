{{ config(unique_key='upload_id') }}
-- platform_upload_log: one row per facility that delivered a feed for a business date
with

source as (

    select * from {{ source('hospital', 'upload_log') }}
    {{ tonights_versions(source('hospital', 'upload_log'), ['upload_id']) }}

),

renamed as (

    select
        cast(upload_id as varchar) as upload_id,
        cast(facility_code as varchar) as facility_code,
        cast(business_date as date) as business_date,
        cast(feed as varchar) as feed,
        cast(record_count as bigint) as record_count,
        cast(received_at as timestamp) as received_at,
        cast(updated_at as timestamp) as updated_at,
        cast(ds as date) as ds

    from source

),

versions as (

    select * from renamed
    {{ kept_versions(source('hospital', 'upload_log'), ['upload_id']) }}

)

select * from versions
qualify row_number() over (partition by upload_id order by updated_at desc, ds desc) = 1
