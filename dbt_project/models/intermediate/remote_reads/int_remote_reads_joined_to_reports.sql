-- each remote-read study with its signed report (if any), the modality's target and the
-- requesting facility's version in force on the read-request day
with

studies as (

    select * from {{ ref('stg_imaging__studies') }}

),

reports as (

    select * from {{ ref('stg_imaging__reports') }}
    where report_status in ('final', 'amended', 'corrected', 'appended')
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
