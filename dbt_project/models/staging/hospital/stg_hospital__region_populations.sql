{{ config(unique_key='county_code') }}
-- the latest resident population the platform published for each county
with

source as (

    select * from {{ source('hospital', 'region_populations') }}
    {{ tonights_versions(source('hospital', 'region_populations'), ['county_code']) }}

),

renamed as (

    select
        cast(county_code as varchar) as county_code,
        cast(stat_year as integer) as stat_year,
        cast(resident_population as bigint) as resident_population,
        cast(updated_at as timestamp) as updated_at,
        cast(ds as date) as ds

    from source

),

versions as (

    select * from renamed
    {{ kept_versions(source('hospital', 'region_populations'), ['county_code']) }}

)

select * from versions
qualify row_number() over (
    partition by county_code order by stat_year desc, updated_at desc, ds asc
) = 1
