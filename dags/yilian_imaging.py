"""
### yilian_imaging — the imaging cloud's day, into `raw.imaging__*`

Searches the imaging cloud's FHIR R4 API (医学影像云平台; connection `yilian_imaging`: host, port,
schema → base URL, password = bearer token) for the ImagingStudy and DiagnosticReport resources
last updated on business day `ds` (`_lastUpdated` ge/lt, +08:00), following every `link[next]`.
429 and 5xx answers are retried with exponential back-off honouring `Retry-After`.

1. **extract** — page through both searches; keep the flattened rows encrypted in staging.
2. **pseudonymise_and_land** — derive sex, birth year, county; keyed HMAC of the resident ID;
   drop `subject.display`; write `landing/source=imaging/table=*/ds=*/`.
3. **validate** — `expectations/imaging__*.json`: modality, facilities, turnaround order
   (a report cannot be signed before its read was requested), volume.
4. **load** — replace the day in `raw`, quarantine and audit (pool `yilian_duckdb`); updates the
   Asset `yilian://raw/imaging`.

One run per business day (its logical date); backfill with `airflow backfill create`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, get_current_context, task

from yilian import ingest

SOURCE = "imaging"


@dag(
    dag_id="yilian_imaging",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="Asia/Shanghai"),
    start_date=pendulum.datetime(2026, 11, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["yilian", "ingestion", "imaging"],
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
        "page_size": Param(
            500,
            type="integer",
            minimum=1,
            maximum=1000,
            description="FHIR `_count`: resources per page.",
        ),
        "retry_backoff_seconds": Param(
            1.0,
            type="number",
            minimum=0,
            description="First wait before retrying a failed API request; doubles each time "
            "(a Retry-After header wins).",
        ),
    },
)
def yilian_imaging() -> None:
    @task
    def extract() -> dict:
        context = get_current_context()
        params = context["params"]
        return ingest.extract(
            SOURCE,
            ingest.business_day(context),
            page_size=params["page_size"],
            retry_backoff=params["retry_backoff_seconds"],
        )

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

    @task(pool="yilian_duckdb", outlets=[Asset("yilian://raw/imaging")])
    def load(validated: dict) -> dict:
        context = get_current_context()
        return ingest.load(SOURCE, ingest.business_day(context), context["run_id"], validated)

    load(validate(pseudonymise_and_land(extract())))


yilian_imaging()
