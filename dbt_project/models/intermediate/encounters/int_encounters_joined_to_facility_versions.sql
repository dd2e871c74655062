-- each encounter with the version of its facility in force on the visit day
with

encounters as (

    select * from {{ ref('stg_hospital__encounters') }}

),

facility_versions as (

    select * from {{ ref('dim_facility') }}

)

select
    encounters.encounter_id,
    encounters.facility_code,
    facility_versions.facility_version_key,
    facility_versions.facility_type,
    coalesce(facility_versions.is_primary_care, false) as is_primary_care,
    facility_versions.county_code as facility_county_code,
    facility_versions.alliance_id,
    encounters.encounter_type,
    -- 诊疗人次: outpatient and emergency; an admission is a 住院人次 (the inpatient indicators)
    encounters.encounter_type in ('outpatient', 'emergency') as is_visit,
    encounters.encounter_type = 'inpatient' as is_admission,
    encounters.visit_at,
    encounters.visit_date,
    encounters.discharge_at,
    encounters.diagnosis_code,
    upper(left(encounters.diagnosis_code, 3)) as diagnosis_category,
    encounters.department,
    encounters.patient_key,
    encounters.patient_sex,
    encounters.patient_birth_year,
    encounters.patient_county_code,
    encounters.updated_at,
    encounters.ds as loaded_ds
from encounters
left join facility_versions
    on {{ facility_version_as_of('facility_versions', 'encounters.facility_code', 'encounters.visit_date') }}
