with

alliances as (

    select * from {{ ref('stg_hospital__alliances') }}

)

select
    alliance_id,
    alliance_name,
    alliance_type,
    lead_facility_code,
    county_code,
    updated_at
from alliances
