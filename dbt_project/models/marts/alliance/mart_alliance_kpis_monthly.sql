{{ config(materialized='incremental', unique_key='month') }}
-- depends_on: {{ ref('dim_facility') }}

with

{% if is_incremental() -%}
-- the months of tonight's rows; each fact below is read from the earliest of them on (a bound
-- its zone maps can skip the older days by: the month of a day is not one), then by month
touched_months as (

    select cast(date_trunc('month', date) as date) as month
    from ({{ mart_days(ref('fct_encounters'), 'visit_date') }}) as days
    union
    select cast(date_trunc('month', sent_date) as date)
    from {{ ref('fct_referrals') }}
    where loaded_ds in {{ processing_days(ref('fct_referrals'), 'loaded_ds') }}
        or sent_date >= {{ facility_change_floor() }}
    union
    select cast(date_trunc('month', read_requested_date) as date)
    from {{ ref('fct_remote_reads') }}
    where loaded_ds in {{ processing_days(ref('fct_remote_reads'), 'loaded_ds') }}
        or read_requested_date >= {{ facility_change_floor() }}

),
{%- endif %}

encounters as (

    select
        *,
        cast(date_trunc('month', visit_date) as date) as month
    from {{ ref('fct_encounters') }}
    {% if is_incremental() -%}
    where visit_date >= (select min(month) from touched_months)
        and cast(date_trunc('month', visit_date) as date) in (select month from touched_months)
    {%- endif %}

),

referrals as (

    select
        *,
        cast(date_trunc('month', sent_date) as date) as month
    from {{ ref('fct_referrals') }}
    {% if is_incremental() -%}
    where sent_date >= (select min(month) from touched_months)
        and cast(date_trunc('month', sent_date) as date) in (select month from touched_months)
    {%- endif %}

),

remote_reads as (

    select
        *,
        cast(date_trunc('month', read_requested_date) as date) as month
    from {{ ref('fct_remote_reads') }}
    {% if is_incremental() -%}
    where read_requested_date >= (select min(month) from touched_months)
        and cast(date_trunc('month', read_requested_date) as date)
        in (select month from touched_months)
    {%- endif %}

),

regions as (

    select county_code, resident_population from {{ ref('dim_region') }}

),

months as (

    -- dense: every month with a business day built (tonight's, or all on a full refresh)
    select cast(date_trunc('month', date) as date) as month
    from ({{ mart_days(ref('fct_encounters'), 'visit_date') }}) as days
    union
    select month from encounters
    union
    select month from referrals
    union
    select month from remote_reads

),

facility_visits as (

    -- 基层诊疗人次占比: visits attributed to the county of the facility
    select
        month,
        facility_county_code as county_code,
        count(*) filter (where is_visit) as visits,
        count(*) filter (where is_visit and is_primary_care) as primary_care_visits
    from encounters
    group by 1, 2

),

resident_encounters as (

    -- 县域内就诊率 / 县域内住院人次占比: attributed to the patient's county of residence
    select
        month,
        patient_county_code as county_code,
        count(*) filter (where is_visit) as resident_visits,
        count(*) filter (where is_visit and facility_county_code = patient_county_code)
            as resident_visits_in_county,
        count(*) filter (where is_admission) as resident_admissions,
        count(*) filter (where is_admission and facility_county_code = patient_county_code)
            as resident_admissions_in_county
    from encounters
    group by 1, 2

),

referral_counts as (

    -- 上转 / 下转: attributed to the sender's county
    select
        month,
        sender_county_code as county_code,
        count(*) filter (where direction = 'up') as upward_referrals,
        count(*) filter (where direction = 'down') as downward_referrals
    from referrals
    group by 1, 2

),

read_counts as (

    -- 远程影像诊断: studies with a signed report, by the requesting facility's county; a read
    -- requested and not yet reported is pending, not a diagnosis
    select
        month,
        requesting_county_code as county_code,
        count(*) filter (where counts_as_remote_imaging and is_reported) as remote_reads,
        count(*) filter (where counts_as_remote_imaging and not is_reported)
            as remote_reads_pending
    from remote_reads
    group by 1, 2

),

joined as (

    select
        months.month,
        regions.county_code,
        coalesce(facility_visits.visits, 0) as visits,
        coalesce(facility_visits.primary_care_visits, 0) as primary_care_visits,
        coalesce(resident_encounters.resident_visits, 0) as resident_visits,
        coalesce(resident_encounters.resident_visits_in_county, 0) as resident_visits_in_county,
        coalesce(resident_encounters.resident_admissions, 0) as resident_admissions,
        coalesce(resident_encounters.resident_admissions_in_county, 0)
            as resident_admissions_in_county,
        coalesce(referral_counts.upward_referrals, 0) as upward_referrals,
        coalesce(referral_counts.downward_referrals, 0) as downward_referrals,
        coalesce(read_counts.remote_reads, 0) as remote_reads,
        coalesce(read_counts.remote_reads_pending, 0) as remote_reads_pending,
        regions.resident_population
    from months
    cross join regions
    left join facility_visits
        on months.month = facility_visits.month
        and regions.county_code = facility_visits.county_code
    left join resident_encounters
        on months.month = resident_encounters.month
        and regions.county_code = resident_encounters.county_code
    left join referral_counts
        on months.month = referral_counts.month
        and regions.county_code = referral_counts.county_code
    left join read_counts
        on months.month = read_counts.month
        and regions.county_code = read_counts.county_code
    where months.month is not null

)

select
    month,
    county_code,
    cast(visits as bigint) as visits,
    cast(primary_care_visits as bigint) as primary_care_visits,
    cast({{ safe_ratio('primary_care_visits', 'visits') }} as double) as primary_care_visit_share,
    cast(resident_visits as bigint) as resident_visits,
    cast(resident_visits_in_county as bigint) as resident_visits_in_county,
    cast({{ safe_ratio('resident_visits_in_county', 'resident_visits') }} as double)
        as in_county_visit_rate,
    cast(resident_admissions as bigint) as resident_admissions,
    cast(resident_admissions_in_county as bigint) as resident_admissions_in_county,
    cast({{ safe_ratio('resident_admissions_in_county', 'resident_admissions') }} as double)
        as in_county_inpatient_share,
    cast(upward_referrals as bigint) as upward_referrals,
    cast(downward_referrals as bigint) as downward_referrals,
    cast({{ safe_ratio('downward_referrals', 'upward_referrals') }} as double) as down_up_ratio,
    cast(remote_reads as bigint) as remote_reads,
    cast(remote_reads_pending as bigint) as remote_reads_pending,
    cast(resident_population as bigint) as resident_population,
    cast(
        case when resident_population > 0 then remote_reads * 10000.0 / resident_population end
        as double
    ) as remote_reads_per_10k
from joined
