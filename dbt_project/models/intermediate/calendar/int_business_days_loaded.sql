{{ config(meta={'tested_tonight': 'date_day in __days__'}) }}
-- the business days whose extracts are in the warehouse: the day set of the dense daily marts
-- on a full refresh (a nightly run adds its own days, var ds)
with

encounter_days as (

    select distinct ds from {{ ref('stg_hospital__encounters') }}

),

study_days as (

    select distinct ds from {{ ref('stg_imaging__studies') }}

),

prescription_days as (

    select distinct ds from {{ ref('stg_prescriptions__prescriptions') }}

),

days as (

    select ds from encounter_days
    union
    select ds from study_days
    union
    select ds from prescription_days

)

select ds as date_day from days
