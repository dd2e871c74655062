{{ config(materialized='incremental', unique_key='business_date') }}
-- depends_on: {{ ref('stg_hospital__encounters') }}
{# Grain: facility × source × feed × business day, for every facility in connectivity scope
    that day (expected) and every facility that delivered (delivered). Incremental by day:
    tonight recomputes its own day, the business days of tonight's upload-log rows (late
    uploads) and, after a facility-master change, the days from its effective date. #}

with

uploads as (

    select * from {{ ref('stg_hospital__uploads') }}

),

facility_versions as (

    select * from {{ ref('dim_facility') }}

),

days as (

    {% if is_incremental() -%}
    {{ processing_days_rows(ref('stg_hospital__uploads'), 'ds', 'business_date') }}
    union
    select business_date
    from uploads
    where ds in {{ processing_days(ref('stg_hospital__uploads')) }}
    union
    select business_date
    from {{ this }}
    where business_date >= {{ facility_change_floor() }}
    {%- else -%}
    select ds as business_date from uploads
    union
    select business_date from uploads
    union
    -- a hospital extract day on which no facility delivered still counts (rate 0)
    select distinct ds as business_date from {{ ref('stg_hospital__encounters') }}
    {%- endif %}

),

expected_feeds as (

    select *
    from (
        values
        {%- for feed in var('expected_feeds') %}
        ('hospital', '{{ feed }}'){{ "," if not loop.last }}
        {%- endfor %}
    ) as feeds (source_system, feed)

),

expected as (

    select
        days.business_date,
        facility_versions.facility_code,
        facility_versions.facility_version_key,
        facility_versions.county_code as facility_county_code,
        expected_feeds.source_system,
        expected_feeds.feed
    from days
    inner join facility_versions
        on days.business_date >= facility_versions.valid_from
        and (facility_versions.valid_to is null or days.business_date < facility_versions.valid_to)
    cross join expected_feeds
    where facility_versions.is_in_connectivity_scope

),

delivered as (

    select
        uploads.business_date,
        uploads.facility_code,
        'hospital' as source_system,
        uploads.feed,
        sum(uploads.record_count) as row_count,
        min(uploads.received_at) as first_received_at,
        max(uploads.ds) as loaded_ds
    from uploads
    where uploads.business_date in (select business_date from days)
    group by 1, 2, 3, 4

),

final as (

    select
        coalesce(expected.business_date, delivered.business_date) as business_date,
        coalesce(expected.facility_code, delivered.facility_code) as facility_code,
        coalesce(expected.source_system, delivered.source_system) as source_system,
        coalesce(expected.feed, delivered.feed) as feed,
        expected.facility_county_code,
        expected.business_date is not null as is_expected,
        delivered.business_date is not null as is_delivered,
        coalesce(delivered.row_count, 0) as row_count,
        delivered.first_received_at,
        delivered.loaded_ds
    from expected
    full outer join delivered
        on expected.business_date = delivered.business_date
        and expected.facility_code = delivered.facility_code
        and expected.source_system = delivered.source_system
        and expected.feed = delivered.feed

)

select
    final.business_date,
    final.facility_code,
    final.source_system,
    final.feed,
    coalesce(final.facility_county_code, facility_versions.county_code) as facility_county_code,
    final.is_expected,
    final.is_delivered,
    cast(final.row_count as bigint) as row_count,
    final.first_received_at,
    final.loaded_ds
from final
left join facility_versions
    on {{ facility_version_as_of('facility_versions', 'final.facility_code', 'final.business_date') }}
