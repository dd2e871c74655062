{%- set county_population = var('county_population') or {} -%}

with

regions as (

    select * from {{ ref('ref_regions') }}

),

population_overrides as (

    {% if county_population -%}
    select
        cast(county_code as varchar) as county_code,
        cast(resident_population as bigint) as resident_population
    from (
        values
        {%- for code, population in county_population.items() %}
        ('{{ code }}', {{ population | int }}){{ "," if not loop.last }}
        {%- endfor %}
    ) as overrides (county_code, resident_population)
    {%- else -%}
    select
        cast(null as varchar) as county_code,
        cast(null as bigint) as resident_population
    where false
    {%- endif %}

)

select
    regions.county_code,
    regions.county_name,
    regions.county_name_en,
    regions.prefecture_code,
    regions.prefecture_name,
    regions.province_code,
    regions.province_name,
    cast(
        coalesce(
            population_overrides.resident_population,
            round(regions.base_resident_population * {{ var('population_scale') }})
        ) as bigint
    ) as resident_population,
    case
        when population_overrides.resident_population is not null then 'var:county_population'
        else 'seed:ref_regions x var:population_scale'
    end as population_source
from regions
left join population_overrides on regions.county_code = population_overrides.county_code
where regions.prefecture_code = '{{ var("region_prefecture_code") }}'
