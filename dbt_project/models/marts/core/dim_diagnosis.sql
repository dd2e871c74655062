with

encounter_codes as (

    select distinct diagnosis_code from {{ ref('stg_hospital__encounters') }}

),

referral_codes as (

    select distinct diagnosis_code from {{ ref('stg_hospital__referrals') }}

),

codes as (

    select diagnosis_code from encounter_codes
    union
    select diagnosis_code from referral_codes

),

chapters as (

    select * from {{ ref('ref_icd10_chapters') }}

),

categorised as (

    select
        diagnosis_code,
        upper(left(diagnosis_code, 3)) as category_code
    from codes
    where diagnosis_code is not null

)

select
    categorised.diagnosis_code,
    categorised.category_code,
    chapters.chapter_number,
    chapters.chapter_roman,
    chapters.chapter_title,
    chapters.chapter_title_zh
from categorised
left join chapters
    on categorised.category_code between chapters.first_category and chapters.last_category
