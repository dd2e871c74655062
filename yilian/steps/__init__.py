"""What the DAG tasks call: one function per task, the same for every source.

Each step reads and writes only its (source, ds) partition, so any step can be rerun alone and
the day can be re-run at any time. These modules are imported by the DAG files, so they stay
light at import: the heavy libraries are imported inside the steps.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

log = logging.getLogger(__name__)


NO_PARTITION_KEY = (
    "this run has no partition key: trigger it for a business day (partition key YYYY-MM-DD), "
    "or backfill a range with `airflow backfill create`"
)


class NoBusinessDay(ValueError):
    """A run that names no business day (a manual trigger without a partition key)."""


def business_day(context: Any) -> date:
    """The business day `ds` of a run: its partition key (`YYYY-MM-DD`, Asia/Shanghai).

    Every DAG is partitioned by business day: a source run's key is the day it extracts (the
    nightly run at local midnight covers the day that just ended; a backfill makes one key per
    day), and the marts run for a key once that day's feeds are in.
    """
    key = context.get("partition_key") or getattr(context.get("dag_run"), "partition_key", None)
    if not key:
        raise NoBusinessDay(NO_PARTITION_KEY)
    return date.fromisoformat(key)


def on_failure(context: Any) -> None:
    """Failure callback: one concise line naming the DAG, task, business day and error."""
    ti = context.get("ti") or context.get("task_instance")
    error = context.get("exception")
    message = str(error).splitlines()[0] if error else "unknown error"
    try:
        ds = business_day(context).isoformat()
    except (NoBusinessDay, ValueError):
        ds = "?"
    log.error(
        "yilian task failed: dag=%s task=%s ds=%s error=%s: %s",
        getattr(ti, "dag_id", "?"),
        getattr(ti, "task_id", "?"),
        ds,
        type(error).__name__ if error else "?",
        message[:300],
    )
