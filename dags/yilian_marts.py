"""
### yilian_marts — dbt builds the star schema and KPI marts, then publishes them for BI

Partitioned by business day, like the source DAGs: each source's `load` updates its Asset
(`yilian://raw/hospital`, `…/imaging`, `…/prescriptions`) for its day, and every such event
starts a run of this DAG for **that day** (partition key `YYYY-MM-DD`). A rerun of one source's
day therefore rebuilds exactly that day.

1. **plan_days** — builds only once all three feeds of the day are loaded (the audit says so);
   until then the run ends here, the rest skipped, its log naming the feeds still missing. It
   also ends so when an earlier run already built the day from these very loads (two feeds that
   land together start two runs; `audit.mart_builds` says what was built). It fails at once,
   naming the reader's PID, if another process (a BI tool on the warehouse file) still holds
   the warehouse after 30 s: dbt could not write, and every dbt task is left upstream_failed.
   Then the day of the run (or the `days` param of a manual run, which always builds): dbt
   reprocesses exactly those raw partitions and the days their rows belong to (late updates
   included), not the history.
2. **dbt** — astronomer-cosmos in watcher mode: one `dbt build` (seeds, models, contracts,
   data tests, in dependency order and threads; the unit tests are CI's) runs in
   `dbt_producer_watcher`, and every dbt model and seed has its own task that reports that
   node's outcome (in the triggerer, all at once when the build ends; the models' lineage is
   in dbt docs), so a failing model is visible by name in the graph without paying a dbt
   start-up per model (the data tests run in the build; a failing test fails it and stops the
   publish).
3. **publish** — once the build succeeded, copy schema `marts` to `publish/yilian_marts.duckdb`
   and one Parquet file per mart, swapped in atomically: BI tools read the copy while the next
   night writes the warehouse; then record the day in `audit.mart_builds`.
4. **docs** — the dbt docs site in `reports/dbt_docs/`.

Writers to the DuckDB file share the pool `yilian_duckdb` (one slot). Full rebuild by hand:
`yilian build --full-refresh` (or `--day YYYY-MM-DD` for chosen days).
"""

from __future__ import annotations

from airflow.sdk import (
    Asset,
    AssetAny,
    IdentityMapper,
    Param,
    PartitionedAssetTimetable,
    dag,
    get_current_context,
    task,
)
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

from yilian.dags import schedule_bounds
from yilian.sources import SOURCES
from yilian.steps import marts, on_failure
from yilian.warehouse import DUCKDB_POOL

SOURCE_ASSETS = [Asset(source.asset_uri) for source in SOURCES.values()]


@dag(
    dag_id="yilian_marts",
    schedule=PartitionedAssetTimetable(
        assets=AssetAny(*SOURCE_ASSETS), default_partition_mapper=IdentityMapper()
    ),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["yilian", "warehouse", "dbt"],
    **schedule_bounds(),
    params={
        "days": Param(
            [],
            type="array",
            items={"type": "string", "format": "date"},
            description="Business days to rebuild (YYYY-MM-DD), for a manual run. Empty: the "
            "run's own day (its partition key).",
        ),
    },
    default_args={
        "owner": "yilian-data",
        # a build that failed fails the same way again: nothing is retried for nothing
        "retries": 0,
        "pool": DUCKDB_POOL,
        "on_failure_callback": on_failure,
    },
)
def yilian_marts() -> None:
    @task.short_circuit
    def plan_days() -> dict | None:
        return marts.plan_days(get_current_context())

    project = ProjectConfig(
        dbt_project_path=marts.DBT_PROJECT_DIR,
        manifest_path=marts.MANIFEST,
        env_vars=marts.dbt_environment(),
        # `dbt deps` in cosmos's copy of the project links the vendored packages (packages.yml)
        # offline, so the DAG needs no dbt_packages/ of the checkout
        install_dbt_deps=True,
    )
    # cosmos makes the manifest an ObjectStoragePath, whose read loads every Airflow plugin
    # (FastAPI included): half a second of each parse and each task start, for a local file
    project.manifest_path = marts.MANIFEST
    dbt = DbtTaskGroup(
        group_id="dbt",
        project_config=project,
        profile_config=ProfileConfig(
            profile_name=marts.DBT_PROFILE,
            target_name=marts.DBT_TARGET,
            profiles_yml_filepath=marts.DBT_PROJECT_DIR / "profiles.yml",
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER, invocation_mode=InvocationMode.DBT_RUNNER
        ),
        render_config=RenderConfig(
            load_method=LoadMode.AUTOMATIC, emit_datasets=False, test_behavior=TestBehavior.NONE
        ),
        operator_args={
            # one `dbt build` runs the models; each model's task watches it (no extra dbt runs)
            "deferrable": False,
            "poke_interval": 5,
        },
    )

    build = marts.watch_after_build(dbt)

    @task
    def publish(plan: dict) -> dict[str, int]:
        return marts.publish(plan, get_current_context()["run_id"])

    @task
    def docs() -> str:
        return marts.generate_docs()

    plan = plan_days()
    plan >> dbt
    build >> publish(plan) >> docs()


yilian_marts()
