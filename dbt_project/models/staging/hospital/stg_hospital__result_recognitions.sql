{{ config(unique_key='recognition_id') }}
with

source as (

    select * from {{ source('hospital', 'result_recognitions') }}
    {{ tonights_versions(source('hospital', 'result_recognitions'), ['recognition_id']) }}

),

renamed as (

    select
        cast(recognition_id as varchar) as recognition_id,
        cast(encounter_id as varchar) as encounter_id,
        cast(facility_code as varchar) as facility_code,
        cast(origin_facility_code as varchar) as origin_facility_code,
        cast(item_code as varchar) as item_code,
        cast(item_category as varchar) as item_category,
        cast(in_catalogue as boolean) as is_in_catalogue,
        cast(recognised as boolean) as is_recognised,
        cast(presented_at as timestamp) as presented_at,
        cast(presented_at as date) as presented_date,
        {{ patient_columns() }},
        cast(updated_at as timestamp) as updated_at,
        cast(ds as date) as ds

    from source

),

versions as (

    select * from renamed
    {{ kept_versions(source('hospital', 'result_recognitions'), ['recognition_id']) }}

)

select * from versions
qualify row_number() over (partition by recognition_id order by updated_at desc, ds desc) = 1
