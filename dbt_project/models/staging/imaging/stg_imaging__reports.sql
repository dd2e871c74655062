{{ config(unique_key='report_id') }}
with

source as (

    select * from {{ source('imaging', 'reports') }}
    {{ tonights_versions(source('imaging', 'reports'), ['report_id']) }}

),

renamed as (

    select
        cast(report_id as varchar) as report_id,
        cast(study_id as varchar) as study_id,
        cast(reading_facility_code as varchar) as reading_facility_code,
        cast(status as varchar) as report_status,
        cast(issued_at as timestamp) as issued_at,
        cast(exam_at as timestamp) as exam_at,
        cast(conclusion as varchar) as conclusion,
        cast(last_updated as timestamp) as last_updated_at,
        cast(ds as date) as ds

    from source

),

versions as (

    select * from renamed
    {{ kept_versions(source('imaging', 'reports'), ['report_id']) }}

)

select * from versions
qualify row_number() over (partition by report_id order by last_updated_at desc, ds desc) = 1
