-- one row per county of the region, with the resident population the hospital platform
-- publishes (the denominators of the per-10,000-resident indicators)
with

regions as (

    select * from {{ ref('ref_regions') }}

),

populations as (

    select * from {{ ref('stg_hospital__region_populations') }}

)

select
    regions.county_code,
    regions.county_name,
    regions.county_name_en,
    regions.prefecture_code,
    regions.prefecture_name,
    regions.province_code,
    regions.province_name,
    populations.resident_population,
    'hospital platform org_region_population, ' || cast(populations.stat_year as varchar)
        as population_source
from regions
left join populations on regions.county_code = populations.county_code
where regions.prefecture_code = '{{ var("region_prefecture_code") }}'
