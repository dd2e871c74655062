{{ config(unique_key='encounter_id') }}
with

source as (

    select * from {{ source('hospital', 'encounters') }}
    {{ tonights_versions(source('hospital', 'encounters'), ['encounter_id']) }}

),

renamed as (

    select
        cast(encounter_id as varchar) as encounter_id,
        cast(facility_code as varchar) as facility_code,
        cast(encounter_type as varchar) as encounter_type,
        cast(visit_at as timestamp) as visit_at,
        cast(visit_at as date) as visit_date,
        cast(discharge_at as timestamp) as discharge_at,
        cast(diagnosis_code as varchar) as diagnosis_code,
        cast(department as varchar) as department,
        {{ patient_columns() }},
        cast(updated_at as timestamp) as updated_at,
        cast(ds as date) as ds

    from source

),

versions as (

    select * from renamed
    {{ kept_versions(source('hospital', 'encounters'), ['encounter_id']) }}

)

select * from versions
qualify row_number() over (partition by encounter_id order by updated_at desc, ds desc) = 1
