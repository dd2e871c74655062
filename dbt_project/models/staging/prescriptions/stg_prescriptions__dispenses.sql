{{ config(unique_key='dispense_id') }}
with

source as (

    select * from {{ source('prescriptions', 'dispenses') }}
    {{ tonights_versions(source('prescriptions', 'dispenses'), ['dispense_id']) }}

),

renamed as (

    select
        cast(dispense_id as varchar) as dispense_id,
        cast(prescription_id as varchar) as prescription_id,
        nullif(trim(cast(pharmacy_credit_code as varchar)), '') as pharmacy_credit_code,
        cast(dispensed_at as timestamp) as dispensed_at,
        cast(updated_at as timestamp) as updated_at,
        cast(ds as date) as ds

    from source

),

versions as (

    select * from renamed
    {{ kept_versions(source('prescriptions', 'dispenses'), ['dispense_id']) }}

)

select * from versions
qualify row_number() over (partition by dispense_id order by updated_at desc, ds desc) = 1
