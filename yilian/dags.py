"""The one definition of a source DAG: extract → pseudonymise_and_land → validate → load.

Every source gets the same four tasks (plus a sensor where the source says when a day is
complete), the same daily timetable at local midnight, retries and failure callback; its own
extract options become params of its DAG. A DAG file is then one call and its documentation.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import (
    DAG,
    Asset,
    CronDataIntervalTimetable,
    Param,
    PokeReturnValue,
    get_current_context,
    task,
)

from yilian.settings import LOCAL_TZ
from yilian.sources import source
from yilian.steps import business_day, ingest, on_failure

START = pendulum.datetime(2026, 11, 1, tz=LOCAL_TZ)
DUCKDB_POOL = "yilian_duckdb"
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "yilian-data",
    "retries": 3,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(hours=1),
    "on_failure_callback": on_failure,
}


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
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone=LOCAL_TZ),
        start_date=START,
        catchup=False,
        max_active_runs=1,
        doc_md=doc_md,
        tags=["yilian", "ingestion", source_name],
        default_args=DEFAULT_ARGS,
        params=params,
    ) as dag:

        @task
        def extract() -> dict:
            context = get_current_context()
            options = {name: context["params"][name] for name in system.options}
            return ingest.extract(source_name, business_day(context), **options)

        @task
        def pseudonymise_and_land(extracted: dict) -> dict:
            return ingest.pseudonymise_and_land(
                source_name, business_day(get_current_context()), extracted
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

        extracted = extract()
        if system.signals_completion:

            @task.sensor(
                poke_interval=300,
                timeout=timedelta(hours=8).total_seconds(),
                mode="reschedule",
                retries=0,
            )
            def wait_for_delivery() -> PokeReturnValue:
                ds = business_day(get_current_context())
                return PokeReturnValue(is_done=ingest.delivered(source_name, ds))

            wait_for_delivery() >> extracted
        load(validate(pseudonymise_and_land(extracted)))
    return dag
