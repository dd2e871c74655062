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
4. **load** — replace the day in `raw`, `quarantine.rejected_rows`, `audit.load_runs`, in one
   DuckDB transaction (pool `yilian_duckdb`); updates the Asset `yilian://raw/hospital`.

A run covers the day of its logical date: `airflow backfill create --dag-id yilian_hospital
--from-date 2026-11-01 --to-date 2026-11-07` makes one run per business day. Re-running a day is
always safe. A blocked day says which table, rule, how many rows and example record ids.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, get_current_context, task

from yilian import ingest

SOURCE = "hospital"


@dag(
    dag_id="yilian_hospital",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="Asia/Shanghai"),
    start_date=pendulum.datetime(2026, 11, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["yilian", "ingestion", "hospital"],
    default_args={
        "owner": "yilian-data",
        "retries": 3,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(hours=1),
        "on_failure_callback": ingest.on_failure,
    },
    params={
        "max_bad_row_share": Param(
            ingest.DEFAULT_MAX_BAD_ROW_SHARE,
            type="number",
            minimum=0,
            maximum=1,
            description="Block a table when more than this share of its rows is quarantined.",
        ),
    },
)
def yilian_hospital() -> None:
    @task
    def extract() -> dict:
        return ingest.extract(SOURCE, ingest.business_day(get_current_context()))

    @task
    def pseudonymise_and_land(extracted: dict) -> dict:
        ds = ingest.business_day(get_current_context())
        return ingest.pseudonymise_and_land(SOURCE, ds, extracted)

    @task(pool="yilian_duckdb")
    def validate(landed: dict) -> dict:
        context = get_current_context()
        return ingest.validate(
            SOURCE,
            ingest.business_day(context),
            context["run_id"],
            landed,
            context["params"]["max_bad_row_share"],
        )

    @task(pool="yilian_duckdb", outlets=[Asset("yilian://raw/hospital")])
    def load(validated: dict) -> dict:
        context = get_current_context()
        return ingest.load(SOURCE, ingest.business_day(context), context["run_id"], validated)

    load(validate(pseudonymise_and_land(extract())))


yilian_hospital()
