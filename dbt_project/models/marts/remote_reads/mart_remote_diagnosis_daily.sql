{{ config(materialized='incremental', unique_key='date') }}
-- depends_on: {{ ref('dim_facility') }}

with

reads as (

    select * from {{ ref('fct_remote_reads') }}
    {% if is_incremental() %}
    where read_requested_date in (
        select read_requested_date
        from {{ ref('fct_remote_reads') }}
        where loaded_ds in {{ processing_days(ref('fct_remote_reads'), 'loaded_ds') }}
    )
        or read_requested_date >= {{ facility_change_floor() }}
    {% endif %}

),

aggregated as (

    select
        read_requested_date as date,
        modality_code as modality,
        reading_facility_code,
        count(*) as reads,
        count(*) filter (where is_reported) as reads_reported,
        quantile_cont(turnaround_minutes, 0.5) as median_turnaround_minutes,
        quantile_cont(turnaround_minutes, 0.9) as p90_turnaround_minutes,
        count(*) filter (where is_within_target) as within_target,
        max(turnaround_target_minutes) as turnaround_target_minutes
    from reads
    group by 1, 2, 3

)

select
    date,
    modality,
    reading_facility_code,
    cast(reads as bigint) as reads,
    cast(reads_reported as bigint) as reads_reported,
    cast(median_turnaround_minutes as double) as median_turnaround_minutes,
    cast(p90_turnaround_minutes as double) as p90_turnaround_minutes,
    cast(within_target as bigint) as within_target,
    cast({{ safe_ratio('within_target', 'reads_reported') }} as double) as within_target_share,
    cast(turnaround_target_minutes as integer) as turnaround_target_minutes
from aggregated
