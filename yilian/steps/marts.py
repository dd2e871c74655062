"""The marts DAG's own steps: plan the days to rebuild, publish, build the docs.

Kept out of the DAG file so importing the DAG stays cheap and these steps are unit-testable.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from yilian.settings import paths
from yilian.steps import business_day
from yilian.warehouse.dbt import DBT_PROJECT_DIR, dbt_env, run_dbt

log = logging.getLogger(__name__)
__all__ = ["DBT_PROJECT_DIR", "DBT_VARS_TEMPLATE", "dbt_environment", "plan_days", "publish"]

# cosmos renders these per run: the window of raw partitions tonight's dbt run processes.
DBT_VARS_TEMPLATE = {
    "ds": "{{ ti.xcom_pull(task_ids='plan_days')['ds'] }}",
}


def dbt_environment() -> dict[str, str]:
    """The environment the dbt tasks run with: the warehouse path, telemetry off."""
    return dbt_env(paths().warehouse)


def watch_after_build(dbt_group: Any) -> None:
    """Run cosmos's per-model watcher tasks after its single `dbt build`, outside the writer
    pool and without retries.

    Cosmos runs the watchers beside the build, polling; started after it, each reads its node's
    final status at once and holds no DuckDB slot (it writes nothing). When the build fails, or
    never starts because a step before it failed, the watchers are `upstream_failed`: one
    failure shows as one red task, whose log names the failing nodes.
    """
    from cosmos.constants import PRODUCER_WATCHER_TASK_ID

    tasks = list(dbt_group.iter_tasks())
    producer = next(t for t in tasks if t.task_id.endswith(PRODUCER_WATCHER_TASK_ID))
    for watcher in tasks:
        if watcher is producer:
            continue
        if producer.task_id not in watcher.upstream_task_ids:
            producer >> watcher
        watcher.pool = "default_pool"
        watcher.retries = 0


def _days(context: Any) -> list[date]:
    """The business days of a run: the `days` param of a manual run, else its partition key."""
    days = sorted({date.fromisoformat(day) for day in context["params"].get("days") or []})
    return days or [business_day(context)]


def feeds_complete(context: Any) -> bool:
    """Are all the sources of every day of this run loaded? False ends the run (skipped) and
    says which feeds are still missing: the run of the last feed to land builds the day."""
    from yilian.sources import SOURCES
    from yilian.warehouse import raw

    missing = {
        day: [name for name in SOURCES if not raw.loaded(paths().warehouse, name, day)]
        for day in _days(context)
    }
    missing = {day: names for day, names in missing.items() if names}
    for day, names in missing.items():
        log.info("%s: waiting for %s; the last feed's run builds the day", day, ", ".join(names))
    return not missing


#: How long a reader may keep the warehouse before the build gives up on it.
READER_WAIT_SECONDS = 30.0


class WarehouseHeld(AirflowFailException):
    """Another process holds the warehouse file; the build would fail model by model."""


def plan_days(context: Any) -> dict[str, str]:
    """The raw partitions (business days) this run processes, for dbt's `ds` var.

    First, the warehouse must be free: DuckDB lets no writer in while another process has the
    file open, even read-only, so a reader would make dbt fail; the run stops here instead,
    once, naming the reader, and every dbt task is left upstream_failed, the warehouse as it was.
    """
    from yilian.warehouse import raw

    warehouse = paths().warehouse
    holder = raw.other_holder(warehouse, READER_WAIT_SECONDS)
    if holder is not None:
        message = (
            f"the warehouse {warehouse} is held by another process, {holder}, for more than "
            f"{READER_WAIT_SECONDS:.0f} s: DuckDB lets no writer in while it is open, so the "
            "marts build did not start and the warehouse is unchanged. Readers should open "
            f"the published copy ({paths().publish_dir}/yilian_marts.duckdb, or its Parquet "
            "files); close that process, then clear this run."
        )
        log.error("%s", message)
        raise WarehouseHeld(message)
    return {"ds": ",".join(day.isoformat() for day in _days(context))}


def publish() -> dict[str, int]:
    """Publish the marts for BI (read-only DuckDB copy + Parquet); returns rows per table."""
    from yilian.warehouse.dbt import release_duckdb
    from yilian.warehouse.publish import publish_marts

    release_duckdb()  # the dbt tasks ran in this process and may still hold the file
    data = paths()
    return publish_marts(data.warehouse, data.publish_dir).tables


def generate_docs() -> str:
    """Build the dbt docs site (a static site) into reports/dbt_docs/, when the project changed
    since the last one: the site documents models and columns, which a night does not change."""
    target = paths().reports_dir / "dbt_docs"
    index = target / "static_index.html"
    project = [
        p
        for p in DBT_PROJECT_DIR.rglob("*")
        if p.is_file() and not {"target", "dbt_packages", "logs"} & set(p.parts)
    ]
    if index.exists() and index.stat().st_mtime > max(p.stat().st_mtime for p in project):
        log.info("dbt docs are up to date with the project: %s", index)
        return str(index)
    run_dbt(["docs", "generate", "--static"], target_path=target)
    return str(index)
