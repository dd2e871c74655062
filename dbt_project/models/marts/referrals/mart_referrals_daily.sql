{{ config(materialized='incremental', unique_key='date') }}
-- depends_on: {{ ref('dim_facility') }}

with

referrals as (

    select * from {{ ref('fct_referrals') }}

),

days as (

    {{ mart_days(ref('fct_referrals'), 'sent_date') }}
    {% if is_incremental() -%}
    union
    select date from {{ this }} where date >= {{ facility_change_floor() }}
    {%- endif %}

),

senders as (

    -- the (alliance, county) pairs of the region's points of care in force on each day
    select distinct
        days.date,
        facilities.alliance_id,
        facilities.county_code
    from days
    inner join {{ ref('dim_facility') }} as facilities
        on days.date >= facilities.valid_from
        and (facilities.valid_to is null or days.date < facilities.valid_to)
    where facilities.is_in_connectivity_scope

),

aggregated as (

    select
        sent_date as date,
        sender_alliance_id as alliance_id,
        sender_county_code as county_code,
        direction,
        is_out_of_region,
        count(*) as referrals,
        count(*) filter (where is_accepted) as accepted,
        count(*) filter (where status = 'completed') as completed,
        count(*) filter (where status = 'rejected') as rejected,
        count(*) filter (where is_green_channel) as green_channel_referrals,
        quantile_cont(hours_to_accept, 0.5) filter (where is_accepted) as median_hours_to_accept
    from referrals
    where sent_date in (select date from days)
    group by 1, 2, 3, 4, 5

),

categories as (

    select *
    from (values ('up'), ('down'), ('lateral')) as directions (direction)
    cross join (values (false), (true)) as regions (is_out_of_region)

),

spine as (

    -- dense: every day × sender pair × direction × in/out of region, plus any pair that sent
    -- from outside the points of care in force (never dropped)
    select senders.date, senders.alliance_id, senders.county_code, categories.*
    from senders
    cross join categories
    union
    select date, alliance_id, county_code, direction, is_out_of_region
    from aggregated

)

select
    spine.date,
    spine.alliance_id,
    spine.county_code,
    spine.direction,
    spine.is_out_of_region,
    cast(coalesce(aggregated.referrals, 0) as bigint) as referrals,
    cast(coalesce(aggregated.accepted, 0) as bigint) as accepted,
    cast({{ safe_ratio('aggregated.accepted', 'aggregated.referrals') }} as double)
        as acceptance_rate,
    cast(aggregated.median_hours_to_accept as double) as median_hours_to_accept,
    cast(coalesce(aggregated.completed, 0) as bigint) as completed,
    cast(coalesce(aggregated.rejected, 0) as bigint) as rejected,
    cast(coalesce(aggregated.green_channel_referrals, 0) as bigint) as green_channel_referrals
from spine
left join aggregated
    on spine.date = aggregated.date
    and spine.alliance_id is not distinct from aggregated.alliance_id
    and spine.county_code = aggregated.county_code
    and spine.direction = aggregated.direction
    and spine.is_out_of_region = aggregated.is_out_of_region
