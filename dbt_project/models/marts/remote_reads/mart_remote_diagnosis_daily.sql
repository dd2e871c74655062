{{ config(materialized='incremental', unique_key='date') }}
-- depends_on: {{ ref('dim_facility') }}

with

all_reads as (

    select * from {{ ref('fct_remote_reads') }}

),

readers as (

    -- the reading centres (every facility that has signed a report) and the null reader of
    -- the reads still pending (the imaging cloud names the reader only on the signed report)
    select distinct reading_facility_code from all_reads
    union
    select null

),

days as (

    {{ mart_days(ref('fct_remote_reads'), 'read_requested_date') }}
    {% if is_incremental() -%}
    union
    select date from {{ this }} where date >= {{ facility_change_floor() }}
    union
    -- a reading centre seen for the first time gets its rows on every day
    select date from {{ this }}
    where exists (
        select 1 from readers
        where reading_facility_code not in (
            select reading_facility_code from {{ this }} where reading_facility_code is not null
        )
    )
    {%- endif %}

),

reads as (

    select * from all_reads where read_requested_date in (select date from days)

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
        count(*) filter (where is_within_target) as within_target
    from reads
    group by 1, 2, 3

),

spine as (

    -- dense: every day × modality × reader
    select days.date, modalities.modality_code as modality, readers.reading_facility_code
    from days
    cross join {{ ref('dim_modality') }} as modalities
    cross join readers
    union
    select date, modality, reading_facility_code from aggregated

)

select
    spine.date,
    spine.modality,
    spine.reading_facility_code,
    cast(coalesce(aggregated.reads, 0) as bigint) as reads,
    cast(coalesce(aggregated.reads_reported, 0) as bigint) as reads_reported,
    cast(coalesce(aggregated.reads, 0) - coalesce(aggregated.reads_reported, 0) as bigint)
        as reads_pending,
    cast(aggregated.median_turnaround_minutes as double) as median_turnaround_minutes,
    cast(aggregated.p90_turnaround_minutes as double) as p90_turnaround_minutes,
    cast(coalesce(aggregated.within_target, 0) as bigint) as within_target,
    cast({{ safe_ratio('aggregated.within_target', 'aggregated.reads_reported') }} as double)
        as within_target_share,
    cast(modalities.turnaround_target_minutes as integer) as turnaround_target_minutes
from spine
left join aggregated
    on spine.date = aggregated.date
    and spine.modality = aggregated.modality
    and spine.reading_facility_code is not distinct from aggregated.reading_facility_code
left join {{ ref('dim_modality') }} as modalities on spine.modality = modalities.modality_code
