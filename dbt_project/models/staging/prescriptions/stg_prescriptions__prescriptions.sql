{{ config(unique_key='prescription_id') }}
with

source as (

    select * from {{ source('prescriptions', 'prescriptions') }}
    {{ tonights_versions(source('prescriptions', 'prescriptions'), ['prescription_id']) }}

),

renamed as (

    select
        cast(prescription_id as varchar) as prescription_id,
        cast(hospital_code as varchar) as hospital_code,
        cast(encounter_id as varchar) as encounter_id,
        cast(prescribed_at as timestamp) as prescribed_at,
        cast(prescribed_at as date) as prescribed_date,
        cast(main_drug_name as varchar) as main_drug_name,
        cast(drug_count as integer) as drug_count,
        cast(total_amount as decimal(18, 2)) as total_amount,
        cast(is_outflow as boolean) as is_outflow,
        nullif(trim(cast(pharmacy_credit_code as varchar)), '') as pharmacy_credit_code,
        {{ patient_columns() }},
        cast(updated_at as timestamp) as updated_at,
        cast(ds as date) as ds

    from source

),

versions as (

    select * from renamed
    {{ kept_versions(source('prescriptions', 'prescriptions'), ['prescription_id']) }}

)

select * from versions
qualify row_number() over (partition by prescription_id order by updated_at desc, ds desc) = 1
