{{ config(unique_key='study_id') }}
with

source as (

    select * from {{ source('imaging', 'studies') }}
    {{ tonights_versions(source('imaging', 'studies'), ['study_id']) }}

),

renamed as (

    select
        cast(study_id as varchar) as study_id,
        cast(requesting_facility_code as varchar) as requesting_facility_code,
        cast(modality as varchar) as modality_code,
        cast(number_of_series as integer) as number_of_series,
        cast(exam_at as timestamp) as exam_at,
        cast(uploaded_at as timestamp) as uploaded_at,
        cast(read_requested_at as timestamp) as read_requested_at,
        cast(read_requested_at as date) as read_requested_date,
        {{ patient_columns() }},
        cast(last_updated as timestamp) as last_updated_at,
        cast(ds as date) as ds

    from source

),

versions as (

    select * from renamed
    {{ kept_versions(source('imaging', 'studies'), ['study_id']) }}

)

select * from versions
qualify row_number() over (partition by study_id order by last_updated_at desc, ds desc) = 1
