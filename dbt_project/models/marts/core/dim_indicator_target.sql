with

targets as (

    select * from {{ ref('ref_indicator_targets') }}

)

select
    metric_name,
    kind,
    value,
    comparison,
    place_year,
    source
from targets
