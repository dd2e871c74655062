"""The DuckDB warehouse: raw loads, dbt runs, and the published copy for BI."""
