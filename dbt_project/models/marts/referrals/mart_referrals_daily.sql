{{ config(materialized='incremental', unique_key='date') }}
-- depends_on: {{ ref('dim_facility') }}

with

referrals as (

    select * from {{ ref('fct_referrals') }}
    {% if is_incremental() %}
    where sent_date in (
        select sent_date
        from {{ ref('fct_referrals') }}
        where loaded_ds in {{ processing_days(ref('fct_referrals'), 'loaded_ds') }}
    )
        or sent_date >= {{ facility_change_floor() }}
    {% endif %}

),

aggregated as (

    select
        sent_date as date,
        sender_alliance_id as alliance_id,
        sender_county_code as county_code,
        direction,
        count(*) as referrals,
        count(*) filter (where is_accepted) as accepted,
        count(*) filter (where status = 'completed') as completed,
        count(*) filter (where status = 'rejected') as rejected,
        count(*) filter (where is_green_channel) as green_channel_referrals,
        quantile_cont(hours_to_accept, 0.5) filter (where is_accepted) as median_hours_to_accept
    from referrals
    group by 1, 2, 3, 4

)

select
    date,
    alliance_id,
    county_code,
    direction,
    cast(referrals as bigint) as referrals,
    cast(accepted as bigint) as accepted,
    cast({{ safe_ratio('accepted', 'referrals') }} as double) as acceptance_rate,
    cast(median_hours_to_accept as double) as median_hours_to_accept,
    cast(completed as bigint) as completed,
    cast(rejected as bigint) as rejected,
    cast(green_channel_referrals as bigint) as green_channel_referrals
from aggregated
