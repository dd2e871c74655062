{{ config(unique_key='alliance_id') }}
with

source as (

    select * from {{ source('hospital', 'alliances') }}
    {{ tonights_versions(source('hospital', 'alliances'), ['alliance_id']) }}

),

renamed as (

    select
        cast(alliance_id as varchar) as alliance_id,
        cast(alliance_name as varchar) as alliance_name,
        cast(alliance_type as varchar) as alliance_type,
        cast(lead_facility_code as varchar) as lead_facility_code,
        cast(county_code as varchar) as county_code,
        cast(updated_at as timestamp) as updated_at,
        cast(ds as date) as ds

    from source

),

versions as (

    select * from renamed
    {{ kept_versions(source('hospital', 'alliances'), ['alliance_id']) }}

)

select * from versions
qualify row_number() over (partition by alliance_id order by updated_at desc, ds desc) = 1
