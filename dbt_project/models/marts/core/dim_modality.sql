with

modalities as (

    select * from {{ ref('ref_modalities') }}

)

select
    modality_code,
    modality_name,
    modality_name_zh,
    turnaround_target_minutes,
    counts_as_remote_imaging,
    target_source
from modalities
