{#-
    The joins of two staged tables behind a fact whose `loaded_ds` is the later of the two
    joined rows' days. `only`: SQL selecting the keys to join (the fact's incremental run:
    the keys tonight staged on either side), applied to each side before the join and the
    window that picks its row, so a night joins tonight's keys rather than the whole history
    (a filter on the joined `loaded_ds` runs after the join), and bounded by their range for
    zone maps (macros/key_range.sql). None: every key (the intermediate views).
-#}

{#- Each prescription with its first dispense and the dispensing pharmacy (by credit code). -#}
{% macro prescriptions_joined_to_dispenses(only=none) -%}
{%- set in_range = key_range('prescription_id', only) if only else none %}
with

prescriptions as (

    select * from {{ ref('stg_prescriptions__prescriptions') }}
    {% if only %}where prescription_id in ({{ only }}) and {{ in_range }}{% endif %}

),

dispenses as (

    select * from {{ ref('stg_prescriptions__dispenses') }}
    {% if only %}where prescription_id in ({{ only }}) and {{ in_range }}{% endif %}

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
{%- endmacro %}

{#- Each remote-read study with its signed report (if any), the modality's target and the
    requesting facility's version in force on the read-request day. -#}
{% macro remote_reads_joined_to_reports(only=none) -%}
{%- set in_range = key_range('study_id', only) if only else none %}
with

studies as (

    select * from {{ ref('stg_imaging__studies') }}
    {% if only %}where study_id in ({{ only }}) and {{ in_range }}{% endif %}

),

reports as (

    select * from {{ ref('stg_imaging__reports') }}
    where report_status in ('final', 'amended', 'corrected', 'appended')
    {% if only %}and study_id in ({{ only }}) and {{ in_range }}{% endif %}
    -- one report per study: the latest signed one
    qualify row_number() over (
        partition by study_id order by last_updated_at desc, issued_at desc, report_id desc
    ) = 1

),

modalities as (

    select * from {{ ref('dim_modality') }}

),

facility_versions as (

    select * from {{ ref('dim_facility') }}

)

select
    studies.study_id,
    reports.report_id,
    studies.modality_code,
    studies.requesting_facility_code,
    requesters.county_code as requesting_county_code,
    requesters.alliance_id as requesting_alliance_id,
    reports.reading_facility_code,
    studies.number_of_series,
    studies.exam_at,
    studies.uploaded_at,
    studies.read_requested_at,
    studies.read_requested_date,
    reports.issued_at,
    reports.issued_at is not null as is_reported,
    cast(date_diff('second', studies.read_requested_at, reports.issued_at) as double) / 60
        as turnaround_minutes,
    modalities.turnaround_target_minutes,
    cast(date_diff('second', studies.read_requested_at, reports.issued_at) as double) / 60
        <= modalities.turnaround_target_minutes as is_within_target,
    coalesce(modalities.counts_as_remote_imaging, false) as counts_as_remote_imaging,
    studies.patient_key,
    studies.patient_sex,
    studies.patient_birth_year,
    studies.patient_county_code,
    greatest(studies.ds, coalesce(reports.ds, studies.ds)) as loaded_ds
from studies
left join reports on studies.study_id = reports.study_id
left join modalities on studies.modality_code = modalities.modality_code
left join facility_versions as requesters
    on {{ facility_version_as_of('requesters', 'studies.requesting_facility_code', 'studies.read_requested_date') }}
{%- endmacro %}
