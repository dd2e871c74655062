"""The marts DAG's own steps: plan the days to rebuild, publish, build the docs.

Kept out of the DAG file so importing the DAG stays cheap and these steps are unit-testable.
"""

from __future__ import annotations

import os
from datetime import date
from typing import Any

from yilian.settings import LOCAL_TZ, paths
from yilian.warehouse.dbt import DBT_PROJECT_DIR, dbt_env, run_dbt

__all__ = ["DBT_PROJECT_DIR", "DBT_VARS_TEMPLATE", "dbt_environment", "plan_days", "publish"]

# cosmos renders these per run: the window of raw partitions tonight's dbt run processes.
DBT_VARS_TEMPLATE = {
    "ds": "{{ ti.xcom_pull(task_ids='plan_days')['ds'] }}",
    "population_scale": "{{ ti.xcom_pull(task_ids='plan_days')['population_scale'] }}",
}


def dbt_environment() -> dict[str, str]:
    """The environment the dbt tasks run with: the warehouse path, telemetry off."""
    return dbt_env(paths().warehouse)


def watch_after_build(dbt_group: Any) -> None:
    """Start cosmos's per-model watcher tasks once its single `dbt build` has finished.

    Cosmos runs the watchers beside the build, polling; a runner that executes one task at a
    time (`airflow dags test`, the main job) would then wait on a watcher forever. Started after
    the build (whatever its outcome: `all_done`), each watcher reads its node's final status at
    once, so a failed model or test still shows by name.
    """
    from cosmos.constants import PRODUCER_WATCHER_TASK_ID

    tasks = list(dbt_group.iter_tasks())
    producer = next(t for t in tasks if t.task_id.endswith(PRODUCER_WATCHER_TASK_ID))
    for watcher in tasks:
        if watcher is not producer and producer.task_id not in watcher.upstream_task_ids:
            producer >> watcher
        if watcher is not producer:
            watcher.trigger_rule = "all_done"


def population_scale() -> float:
    """Scale of the resident populations in the reference seed.

    1.0 for a real region; the embedded simulator scales its population with its volumes, and
    the main job says so through YILIAN_POPULATION_SCALE so per-10,000-resident rates hold.
    """
    return float(os.environ.get("YILIAN_POPULATION_SCALE", "1.0"))


def plan_days(context: Any) -> dict[str, str]:
    """The raw partitions (business days) tonight's run must process.

    The `days` param when a person sets it; else the `ds` each source DAG attached to its
    triggering Asset event; else (a manual run) the day of the run's logical date.
    """
    days: set[date] = {date.fromisoformat(day) for day in context["params"].get("days") or []}
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            ds = (event.extra or {}).get("ds")
            if ds:
                days.add(date.fromisoformat(ds))
    if not days:
        moment = context.get("logical_date") or context["data_interval_start"]
        days.add(moment.in_timezone(LOCAL_TZ).date())
    return {
        "ds": ",".join(day.isoformat() for day in sorted(days)),
        "population_scale": str(population_scale()),
    }


def publish() -> dict[str, int]:
    """Publish the marts for BI (read-only DuckDB copy + Parquet); returns rows per table."""
    from yilian.warehouse.dbt import release_duckdb
    from yilian.warehouse.publish import publish_marts

    release_duckdb()  # the dbt tasks ran in this process and may still hold the file
    data = paths()
    return publish_marts(data.warehouse, data.publish_dir).tables


def generate_docs() -> str:
    """Build the dbt docs site (a static site) into reports/dbt_docs/."""
    target = paths().reports_dir / "dbt_docs"
    run_dbt(["docs", "generate", "--static"], target_path=target)
    return str(target / "static_index.html")
