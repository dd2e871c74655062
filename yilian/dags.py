"""The one definition of a source DAG: extract → pseudonymise_and_land → validate → load, and
validate → data_docs (rendered whether the day passed or blocked, in its own pool).

Every source gets the same five tasks, the same timetable, retries and failure callback; its own
extract options become params of its DAG. A source that says when a day is complete waits for
it, and a source checked against the facility master waits for the master's day: both waits run
in the triggerer (`yilian.steps.waits`). A DAG file is then one call and its documentation.

The timetable partitions by business day: at local midnight it runs the day that just ended
(partition key `YYYY-MM-DD`), `airflow backfill create` makes one run per day of its range, and
the `load` task's Asset event carries that key, so `yilian_marts` builds exactly that day.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import (
    DAG,
    Asset,
    CronPartitionTimetable,
    Param,
    get_current_context,
    task,
)

from yilian.quality import DATA_DOCS_POOL
from yilian.settings import LOCAL_TZ, schedule_window
from yilian.sources import source
from yilian.steps import business_day, ingest, on_failure
from yilian.steps.waits import WaitForDay
from yilian.warehouse import DUCKDB_POOL

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "yilian-data",
    "retries": 3,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(hours=1),
    "on_failure_callback": on_failure,
}


def business_day_timetable() -> CronPartitionTimetable:
    """At 00:00 Asia/Shanghai, the business day that just ended (run_offset -1), keyed
    `YYYY-MM-DD`."""
    return CronPartitionTimetable(
        "0 0 * * *", timezone=LOCAL_TZ, run_offset=-1, key_format="%Y-%m-%d"
    )


def schedule_bounds() -> dict[str, Any]:
    """start_date / end_date of every DAG, from the installation's schedule window."""
    first, last = schedule_window()
    bounds: dict[str, Any] = {
        "start_date": pendulum.datetime(first.year, first.month, first.day, tz=LOCAL_TZ)
    }
    if last is not None:
        # the run for the last day starts at the next midnight
        end = pendulum.datetime(last.year, last.month, last.day, tz=LOCAL_TZ).add(days=1)
        bounds["end_date"] = end
    return bounds


def source_dag(source_name: str, doc_md: str) -> DAG:
    """The DAG `yilian_<source>`: one run per business day, covering [ds, ds+1) local time."""
    system = source(source_name)
    params = {
        "max_bad_row_share": Param(
            ingest.DEFAULT_MAX_BAD_ROW_SHARE,
            type="number",
            minimum=0,
            maximum=1,
            description="Block a table when more than this share of its rows is quarantined.",
        ),
        "max_patient_age_years": Param(
            ingest.MAX_AGE_YEARS,
            type="integer",
            minimum=1,
            description="Quarantine a record whose resident ID makes the patient older than "
            "this at the event (a valid ID that cannot be true).",
        ),
    }
    for name, option in system.options.items():
        bounds = {
            k: v
            for k, v in (("minimum", option.minimum), ("maximum", option.maximum))
            if v is not None
        }
        params[name] = Param(
            option.default, type=option.type, description=option.description, **bounds
        )

    with DAG(
        dag_id=f"yilian_{source_name}",
        schedule=business_day_timetable(),
        catchup=False,
        max_active_runs=1,
        doc_md=doc_md,
        tags=["yilian", "ingestion", source_name],
        default_args=DEFAULT_ARGS,
        params=params,
        **schedule_bounds(),
    ) as dag:

        @task
        def extract() -> dict:
            context = get_current_context()
            options = {name: context["params"][name] for name in system.options}
            return ingest.extract(source_name, business_day(context), **options)

        @task
        def pseudonymise_and_land(extracted: dict) -> dict:
            context = get_current_context()
            return ingest.pseudonymise_and_land(
                source_name,
                business_day(context),
                extracted,
                context["params"]["max_patient_age_years"],
            )

        @task(pool=DUCKDB_POOL)
        def validate(landed: dict) -> dict:
            context = get_current_context()
            return ingest.validate(
                source_name,
                business_day(context),
                context["run_id"],
                landed,
                context["params"]["max_bad_row_share"],
            )

        @task(pool=DUCKDB_POOL, outlets=[Asset(system.asset_uri)])
        def load(validated: dict) -> dict:
            context = get_current_context()
            return ingest.load(source_name, business_day(context), context["run_id"], validated)

        @task(trigger_rule="all_done", pool=DATA_DOCS_POOL)
        def data_docs() -> dict:
            return ingest.data_docs(source_name, business_day(get_current_context()))

        extracted = extract()
        validated = validate(pseudonymise_and_land(extracted))
        validated >> data_docs()
        if system.signals_completion:
            (
                WaitForDay(task_id="wait_for_delivery", check="delivery", source_name=source_name)
                >> extracted
            )
        if not any(spec.facility_master for spec in system.tables):
            (
                WaitForDay(
                    task_id="wait_for_facility_master",
                    check="facility_master",
                    source_name=source_name,
                )
                >> validated
            )
        load(validated)
    return dag
