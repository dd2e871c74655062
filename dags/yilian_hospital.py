"""
### yilian_hospital — the hospital platform's day, into `raw.hospital__*`

Reads the six tables of the hospital platform (HIS / 全民健康信息平台) for one business day
`ds` — rows with `updated_at` in `[ds, ds+1)` Asia/Shanghai — over SQLAlchemy (connection
`yilian_hospital`; default: the simulator's SQLite file).

1. **extract** — stream the day's rows; keep them encrypted in staging (they still hold PII).
2. **pseudonymise_and_land** — derive sex, birth year and county from the resident ID, replace it
   by a keyed HMAC, drop names and phones; write `landing/source=hospital/table=*/ds=*/`.
3. **validate** — the GX suites in `expectations/hospital__*.json`: quarantine bad rows, block
   the day on schema drift, empty feeds or too many bad rows. Data Docs in `reports/data_docs`.
   **data_docs** then renders the day's GX Data Docs pages, passed or blocked (outside the
   writer pool).
4. **load** — replace the day in `raw`, `quarantine.rejected_rows`, `audit.load_runs`, in one
   DuckDB transaction (pool `yilian_duckdb`); updates the Asset `yilian://raw/hospital`.

A run covers the day of its logical date: `airflow backfill create --dag-id yilian_hospital
--from-date 2026-11-01 --to-date 2026-11-07` makes one run per business day. Re-running a day is
always safe. A blocked day says which table, rule, how many rows and example record ids.
"""

from yilian.dags import source_dag

dag = source_dag("hospital", doc_md=__doc__)
