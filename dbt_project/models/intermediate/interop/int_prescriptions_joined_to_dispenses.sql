-- each prescription with its first dispense and the dispensing pharmacy (by credit code)
with

prescriptions as (

    select * from {{ ref('stg_prescriptions__prescriptions') }}

),

dispenses as (

    select * from {{ ref('stg_prescriptions__dispenses') }}

),

first_dispenses as (

    select
        prescription_id,
        dispense_id,
        pharmacy_credit_code,
        dispensed_at,
        max(ds) over (partition by prescription_id) as ds
    from dispenses
    qualify row_number() over (
        partition by prescription_id order by dispensed_at, dispense_id
    ) = 1

),

facility_versions as (

    select * from {{ ref('dim_facility') }}

),

pharmacies as (

    -- the latest version carrying each credit code
    select credit_code, facility_code
    from facility_versions
    where facility_type = 'pharmacy' and credit_code is not null
    qualify row_number() over (partition by credit_code order by valid_from desc) = 1

)

select
    prescriptions.prescription_id,
    prescriptions.hospital_code,
    hospitals.county_code as hospital_county_code,
    hospitals.alliance_id as hospital_alliance_id,
    prescriptions.encounter_id,
    prescriptions.prescribed_at,
    prescriptions.prescribed_date,
    prescriptions.main_drug_name,
    prescriptions.drug_count,
    prescriptions.total_amount,
    coalesce(prescriptions.is_outflow, false) as is_flowed_out,
    coalesce(first_dispenses.pharmacy_credit_code, prescriptions.pharmacy_credit_code)
        as pharmacy_credit_code,
    pharmacies.facility_code as dispensing_pharmacy_code,
    first_dispenses.dispense_id,
    first_dispenses.dispensed_at,
    coalesce(prescriptions.is_outflow, false) and first_dispenses.dispense_id is not null
        as is_dispensed,
    prescriptions.patient_key,
    prescriptions.patient_sex,
    prescriptions.patient_birth_year,
    prescriptions.patient_county_code,
    prescriptions.updated_at,
    greatest(prescriptions.ds, coalesce(first_dispenses.ds, prescriptions.ds)) as loaded_ds
from prescriptions
left join first_dispenses on prescriptions.prescription_id = first_dispenses.prescription_id
left join pharmacies
    on coalesce(first_dispenses.pharmacy_credit_code, prescriptions.pharmacy_credit_code)
    = pharmacies.credit_code
left join facility_versions as hospitals
    on {{ facility_version_as_of('hospitals', 'prescriptions.hospital_code', 'prescriptions.prescribed_date') }}
