"""
### yilian_prescriptions — the prescription-sharing platform's day, into `raw.prescriptions__*`

The platform (处方信息共享平台) drops `prescriptions_<ds>.csv` and `dispenses_<ds>.csv` (GB18030)
into a folder (connection `yilian_prescriptions_drop`, extra `{"path": ...}`; default: the
simulator's drop folder), then writes `manifest_<ds>.json` last, with row counts and SHA-256.

1. **wait_for_manifest** — a sensor (reschedule mode) until the day's manifest exists.
2. **extract** — verify every file's SHA-256 and row count against the manifest; a truncated or
   missing file fails naming the file, expected vs actual. Nothing is read before this passes.
3. **pseudonymise_and_land** — read the verified files (hash re-checked), derive sex, birth
   year, county; keyed HMAC of the resident ID; drop names and phones; write landing Parquet.
4. **validate** — `expectations/prescriptions__*.json`: schema, manifest row counts, pharmacy
   credit codes (GB 32100), hospitals known to the facility master.
5. **load** — replace the day in `raw`, quarantine and audit (pool `yilian_duckdb`); updates the
   Asset `yilian://raw/prescriptions`.

One run per business day (its logical date); backfill with `airflow backfill create`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import (
    Asset,
    CronDataIntervalTimetable,
    Param,
    PokeReturnValue,
    dag,
    get_current_context,
    task,
)

from yilian import ingest

SOURCE = "prescriptions"


@dag(
    dag_id="yilian_prescriptions",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="Asia/Shanghai"),
    start_date=pendulum.datetime(2026, 11, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["yilian", "ingestion", "prescriptions"],
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
def yilian_prescriptions() -> None:
    @task.sensor(
        poke_interval=300, timeout=timedelta(hours=8).total_seconds(), mode="reschedule", retries=0
    )
    def wait_for_manifest() -> PokeReturnValue:
        ds = ingest.business_day(get_current_context())
        return PokeReturnValue(is_done=ingest.manifest_ready(ds))

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

    @task(pool="yilian_duckdb", outlets=[Asset("yilian://raw/prescriptions")])
    def load(validated: dict) -> dict:
        context = get_current_context()
        return ingest.load(SOURCE, ingest.business_day(context), context["run_id"], validated)

    extracted = extract()
    wait_for_manifest() >> extracted
    load(validate(pseudonymise_and_land(extracted)))


yilian_prescriptions()
