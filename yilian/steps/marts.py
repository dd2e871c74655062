"""The marts DAG's own steps: plan the days to rebuild, publish, build the docs.

Kept out of the DAG file so importing the DAG stays cheap and these steps are unit-testable.
"""

from __future__ import annotations

import logging
import shutil
from datetime import date, datetime
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from yilian.settings import paths
from yilian.steps import business_day
from yilian.warehouse.dbt import (
    DBT_PROFILE,
    DBT_PROJECT_DIR,
    DBT_TARGET,
    DS_ENV,
    dbt_env,
    run_dbt,
)

log = logging.getLogger(__name__)
__all__ = [
    "DBT_PROFILE",
    "DBT_PROJECT_DIR",
    "DBT_TARGET",
    "MANIFEST",
    "dbt_environment",
    "plan_days",
    "publish",
]
#: What the DAG renders its per-model tasks from (`yilian.installation` parses the project).
MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"


def dbt_environment() -> dict[str, str]:
    """The environment the dbt tasks run with: the warehouse path, telemetry off, and the raw
    partitions tonight's run processes (cosmos renders the template per run)."""
    return dbt_env(paths().warehouse) | {DS_ENV: "{{ ti.xcom_pull(task_ids='plan_days')['ds'] }}"}


def watch_after_build(dbt_group: Any) -> Any:
    """Run cosmos's per-model watcher tasks after its single `dbt build`, in the triggerer,
    outside the writer pool and without retries; and keep the data tests in that build.
    Returns the build's task: what follows the build needs only it (its success is every
    node's), not the watchers, which end a few seconds later beside the publish.

    Cosmos runs the watchers beside the build, polling; started after it, each reads its node's
    final status at once and holds no DuckDB slot (it writes nothing), and in the triggerer
    no worker process either (`yilian.steps.watchers`). Each waits for the build alone, not for
    its parent models' tasks as cosmos draws them: the outcomes are all known when the build
    ends, and each hop through the scheduler and the triggerer costs ~3 s, so the five layers
    of models in series kept the run open ~15 s after the build (the lineage is in dbt docs,
    and a failed build leaves them all upstream_failed either way). When the build fails, or
    never starts because a step before it failed, the watchers are `upstream_failed`: one
    failure shows as one red task, whose log names the failing nodes. So a watcher per model's
    tests would only ever repeat the build's outcome: the group renders none
    (TestBehavior.NONE), and since cosmos then limits the build to models, seeds and snapshots
    (`--resource-type`), that limit is lifted here: the one `dbt build` runs every data test.
    The unit tests are left to CI and `yilian build`, as dbt recommends: they test the models'
    logic on fixed inputs, which a night's data does not change.
    """
    from cosmos.constants import PRODUCER_WATCHER_TASK_ID
    from cosmos.operators._watcher.base import BaseConsumerSensor

    from yilian.steps.watchers import report_watched_nodes_only, start_in_triggerer

    tasks = list(dbt_group.iter_tasks())
    producer = next(t for t in tasks if t.task_id.endswith(PRODUCER_WATCHER_TASK_ID))
    flags = list(producer.dbt_cmd_flags or [])
    while "--resource-type" in flags:
        at = flags.index("--resource-type")
        del flags[at : at + 2]
    producer.dbt_cmd_flags = [*flags, "--exclude-resource-type", "unit_test"]
    report_watched_nodes_only(producer)
    by_id = {t.task_id: t for t in tasks}
    for watcher in tasks:
        if watcher is producer:
            continue
        for parent_id in watcher.upstream_task_ids - {producer.task_id}:
            by_id[parent_id].downstream_task_ids.discard(watcher.task_id)
        watcher.upstream_task_ids.intersection_update({producer.task_id})
        if producer.task_id not in watcher.upstream_task_ids:
            producer >> watcher
        watcher.pool = "default_pool"
        watcher.retries = 0
        if isinstance(watcher, BaseConsumerSensor):
            start_in_triggerer(watcher)
    return producer


def _days(context: Any) -> list[date]:
    """The business days of a run: the `days` param of a manual run, else its partition key."""
    days = sorted({date.fromisoformat(day) for day in context["params"].get("days") or []})
    return days or [business_day(context)]


def feeds_complete(context: Any) -> bool:
    """Are all the sources of every day of this run loaded, and is there something new to
    build? False ends the run (skipped) and says why: the feeds still missing (the run of the
    last feed to land builds the day), or that a run before it already built these very loads
    (two feeds landing together start two runs of the day; the second has nothing to do).
    A manual run naming its `days` always builds."""
    from yilian.sources import SOURCES
    from yilian.warehouse import raw

    db = paths().warehouse
    days = _days(context)
    missing = {day: [name for name in SOURCES if not raw.loaded(db, name, day)] for day in days}
    missing = {day: names for day, names in missing.items() if names}
    for day, names in missing.items():
        log.info("%s: waiting for %s; the last feed's run builds the day", day, ", ".join(names))
    if missing:
        return False
    if context["params"].get("days"):
        return True
    built = [
        day
        for day in days
        if (raw.built_through(db, day) or datetime.min) >= raw.last_load(db, day)
    ]
    for day in built:
        log.info("%s: the marts are already built from every load of the day", day)
    return len(built) < len(days)


#: How long a reader may keep the warehouse before the build gives up on it.
READER_WAIT_SECONDS = 30.0


class WarehouseHeld(AirflowFailException):
    """Another process holds the warehouse file; the build would fail model by model."""


def plan_days(context: Any) -> dict[str, Any] | None:
    """The raw partitions (business days) this run processes, for dbt's YILIAN_DS, and the
    latest load of each, which the publish records as built; None (the run ends here, the
    build skipped) while `feeds_complete` says there is nothing to build yet.

    Then the warehouse must be free: DuckDB lets no writer in while another process has the
    file open, even read-only, so a reader would make dbt fail; the run stops here instead,
    once, naming the reader, and every dbt task is left upstream_failed, the warehouse as it was.
    """
    from yilian.warehouse import raw

    if not feeds_complete(context):
        return None
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
    days = _days(context)
    return {
        "ds": ",".join(day.isoformat() for day in days),
        "loads_through": {
            day.isoformat(): raw.last_load(warehouse, day).isoformat() for day in days
        },
    }


def publish(plan: dict[str, Any], run_id: str) -> dict[str, int]:
    """Publish the marts for BI (read-only DuckDB copy + Parquet), then audit the days as built
    from the loads the plan saw; returns rows per table."""
    from yilian.warehouse import raw
    from yilian.warehouse.dbt import release_duckdb
    from yilian.warehouse.publish import publish_marts

    release_duckdb()  # the dbt tasks ran in this process and may still hold the file
    data = paths()
    tables = publish_marts(data.warehouse, data.publish_dir).tables
    loads_through = {
        date.fromisoformat(day): datetime.fromisoformat(through)
        for day, through in plan["loads_through"].items()
    }
    raw.record_mart_build(data.warehouse, loads_through, run_id)
    return tables


#: The installation's parse that the docs site starts from: the manifest, the semantic manifest
#: (`yilian metrics` plans its queries from the docs site's copy) and the partial-parse state.
PARSED = ("manifest.json", "semantic_manifest.json", "partial_parse.msgpack")


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
    # the site documents the project the DAG renders (the installation's parse of it) and the
    # warehouse's catalog; compiling all ~350 nodes again (two thirds of the step) would only
    # add each model's SQL as one night's build compiled it
    target.mkdir(parents=True, exist_ok=True)
    for name in PARSED:
        shutil.copyfile(MANIFEST.with_name(name), target / name)
    run_dbt(["docs", "generate", "--static", "--no-compile"], target_path=target)
    return str(index)
