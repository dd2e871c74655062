with

versions as (

    select * from {{ ref('stg_hospital__facilities') }}

),

facility_types as (

    select * from {{ ref('ref_facility_types') }}

),

regions as (

    select county_code from {{ ref('ref_regions') }}

),

in_force as (

    -- a version replaced on its own effective day by a later version_no was never in force
    select *
    from versions
    qualify row_number() over (
        partition by facility_code, effective_date order by version_no desc
    ) = 1

),

windowed as (

    select
        *,
        lead(effective_date) over (
            partition by facility_code order by effective_date, version_no
        ) as next_effective_date
    from in_force

),

final as (

    select
        windowed.facility_code || ':' || cast(windowed.version_no as varchar)
            as facility_version_key,
        windowed.facility_code,
        windowed.version_no,
        windowed.credit_code,
        windowed.facility_name,
        windowed.facility_type,
        windowed.tier,
        windowed.grade,
        windowed.county_code,
        windowed.prefecture_code,
        windowed.alliance_id,
        windowed.status,
        windowed.merged_into,
        coalesce(facility_types.is_primary_care, false) as is_primary_care,
        coalesce(facility_types.is_in_region, false)
            and windowed.county_code in (select county_code from regions) as is_in_region,
        windowed.effective_date as valid_from,
        windowed.next_effective_date as valid_to,
        windowed.next_effective_date is null as is_current,
        windowed.updated_at,
        windowed.ds as loaded_ds
    from windowed
    left join facility_types on windowed.facility_type = facility_types.facility_type

)

select
    facility_version_key,
    facility_code,
    version_no,
    credit_code,
    facility_name,
    facility_type,
    tier,
    grade,
    county_code,
    prefecture_code,
    alliance_id,
    status,
    merged_into,
    is_primary_care,
    is_in_region,
    -- 互联互通 scope: active points of care of the region (CONTRACTS.md §5)
    status = 'active'
    and is_in_region
    and facility_type in ('hospital', 'township_centre', 'community_centre', 'village_clinic')
        as is_in_connectivity_scope,
    valid_from,
    valid_to,
    is_current,
    updated_at,
    loaded_ds
from final
