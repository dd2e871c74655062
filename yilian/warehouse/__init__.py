"""The DuckDB warehouse: raw loads, dbt runs, and the published copy for BI."""

#: DuckDB has one writer per file: every task that writes the warehouse takes a slot of this
#: one-slot Airflow pool.
DUCKDB_POOL = "yilian_duckdb"
