with

days as (

    select cast(generate_series as date) as date_day
    from generate_series(
        cast('{{ var("calendar_start") }}' as date),
        cast('{{ var("calendar_end") }}' as date),
        interval 1 day
    )

)

select
    date_day,
    cast(year(date_day) as integer) as year,
    cast(quarter(date_day) as integer) as quarter,
    cast(month(date_day) as integer) as month_of_year,
    cast(date_trunc('month', date_day) as date) as month_start,
    cast(isoyear(date_day) as integer) as iso_year,
    cast(week(date_day) as integer) as iso_week,
    cast(isodow(date_day) as integer) as iso_day_of_week,
    cast(isodow(date_day) in (6, 7) as boolean) as is_weekend,
    cast(strftime(date_day, '%Y-%m') as varchar) as year_month
from days
