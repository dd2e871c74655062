"""What the DAG tasks call: one function per task, the same for every source.

Each step reads and writes only its (source, ds) partition, so any step can be rerun alone and
the day can be re-run at any time. These modules are imported by the DAG files, so they stay
light at import: the heavy libraries are imported inside the steps.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from yilian.settings import LOCAL_TZ

log = logging.getLogger(__name__)


def business_day(context: Any) -> date:
    """The business day `ds` of a run: the Asia/Shanghai date of its logical date.

    The DAGs use a daily data-interval timetable at local midnight, so a scheduled or backfilled
    run's logical date is the start of the day it covers ([ds, ds+1), closing when the run
    starts); a manual run (`airflow dags test DAG 2026-11-01`) means the day it names. Runs
    triggered without a logical date fall back to the start of their data interval.
    """
    moment = context.get("logical_date") or context["data_interval_start"]
    return moment.in_timezone(LOCAL_TZ).date()


def on_failure(context: Any) -> None:
    """Failure callback: one concise line naming the DAG, task, business day and error."""
    ti = context.get("ti") or context.get("task_instance")
    error = context.get("exception")
    message = str(error).splitlines()[0] if error else "unknown error"
    try:
        ds = business_day(context).isoformat()
    except (KeyError, AttributeError):
        ds = "?"
    log.error(
        "yilian task failed: dag=%s task=%s ds=%s error=%s: %s",
        getattr(ti, "dag_id", "?"),
        getattr(ti, "task_id", "?"),
        ds,
        type(error).__name__ if error else "?",
        message[:300],
    )
