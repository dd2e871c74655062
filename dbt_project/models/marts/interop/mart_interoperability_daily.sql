{{ config(materialized='incremental', unique_key='date') }}
-- depends_on: {{ ref('dim_facility') }}

with

{% if is_incremental() -%}
touched_days as (

    {{ processing_days_rows(ref('fct_feed_deliveries'), 'loaded_ds', 'date') }}
    union
    select business_date from {{ ref('fct_feed_deliveries') }}
    where loaded_ds in {{ processing_days(ref('fct_feed_deliveries'), 'loaded_ds') }}
        or business_date >= {{ facility_change_floor() }}
    union
    select presented_date from {{ ref('fct_result_recognitions') }}
    where loaded_ds in {{ processing_days(ref('fct_result_recognitions'), 'loaded_ds') }}
        or presented_date >= {{ facility_change_floor() }}
    union
    select prescribed_date from {{ ref('fct_prescriptions') }}
    where loaded_ds in {{ processing_days(ref('fct_prescriptions'), 'loaded_ds') }}
        or prescribed_date >= {{ facility_change_floor() }}

),
{%- endif %}

deliveries as (

    select * from {{ ref('fct_feed_deliveries') }}
    {% if is_incremental() %}where business_date in (select date from touched_days){% endif %}

),

recognitions as (

    select * from {{ ref('fct_result_recognitions') }}
    {% if is_incremental() %}where presented_date in (select date from touched_days){% endif %}

),

prescriptions as (

    select * from {{ ref('fct_prescriptions') }}
    {% if is_incremental() %}where prescribed_date in (select date from touched_days){% endif %}

),

counties as (

    select county_code from {{ ref('dim_region') }}

),

days as (

    -- dense: every business day built × county
    {{ mart_days(ref('fct_feed_deliveries'), 'business_date') }}
    union
    select business_date from deliveries
    union
    select presented_date from recognitions
    union
    select prescribed_date from prescriptions

),

facility_days as (

    -- a facility in scope counts as delivering when every expected feed arrived
    select
        business_date,
        facility_county_code,
        facility_code,
        bool_and(is_delivered) as delivered_all_feeds
    from deliveries
    where is_expected
    group by 1, 2, 3

),

connectivity as (

    select
        business_date as date,
        facility_county_code as county_code,
        count(*) as facilities_in_scope,
        count(*) filter (where delivered_all_feeds) as facilities_delivering
    from facility_days
    group by 1, 2

),

results as (

    -- the recognition rate counts items in the recognised-items catalogue only
    select
        presented_date as date,
        facility_county_code as county_code,
        count(*) filter (where is_in_catalogue) as results_presented,
        count(*) filter (where is_in_catalogue and is_recognised) as results_recognised
    from recognitions
    group by 1, 2

),

prescribing as (

    select
        prescribed_date as date,
        hospital_county_code as county_code,
        count(*) as prescriptions,
        count(*) filter (where is_flowed_out) as prescriptions_flowed_out,
        count(*) filter (where is_dispensed) as prescriptions_dispensed
    from prescriptions
    group by 1, 2

),

spine as (

    select days.date, counties.county_code
    from days
    cross join counties
    where days.date is not null

),

joined as (

    select
        spine.date,
        spine.county_code,
        coalesce(connectivity.facilities_in_scope, 0) as facilities_in_scope,
        coalesce(connectivity.facilities_delivering, 0) as facilities_delivering,
        coalesce(results.results_presented, 0) as results_presented,
        coalesce(results.results_recognised, 0) as results_recognised,
        coalesce(prescribing.prescriptions, 0) as prescriptions,
        coalesce(prescribing.prescriptions_flowed_out, 0) as prescriptions_flowed_out,
        coalesce(prescribing.prescriptions_dispensed, 0) as prescriptions_dispensed
    from spine
    left join connectivity
        on spine.date = connectivity.date and spine.county_code = connectivity.county_code
    left join results
        on spine.date = results.date and spine.county_code = results.county_code
    left join prescribing
        on spine.date = prescribing.date and spine.county_code = prescribing.county_code

)

select
    date,
    county_code,
    cast(facilities_in_scope as bigint) as facilities_in_scope,
    cast(facilities_delivering as bigint) as facilities_delivering,
    cast({{ safe_ratio('facilities_delivering', 'facilities_in_scope') }} as double)
        as connectivity_rate,
    cast(results_presented as bigint) as results_presented,
    cast(results_recognised as bigint) as results_recognised,
    cast({{ safe_ratio('results_recognised', 'results_presented') }} as double)
        as result_recognition_rate,
    cast(prescriptions as bigint) as prescriptions,
    cast(prescriptions_flowed_out as bigint) as prescriptions_flowed_out,
    cast({{ safe_ratio('prescriptions_flowed_out', 'prescriptions') }} as double)
        as prescription_outflow_rate,
    cast(prescriptions_dispensed as bigint) as prescriptions_dispensed,
    cast({{ safe_ratio('prescriptions_dispensed', 'prescriptions_flowed_out') }} as double)
        as prescription_fill_rate
from joined
