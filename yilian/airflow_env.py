"""The environment Airflow runs in for this project: home, DAG folder, and nothing phoning home.

Used by the CLI (main job, UI), the tests and `.ci/run` so all three run the same Airflow.
"""

from __future__ import annotations

import os

from yilian.settings import PROJECT_ROOT, paths

SQLITE_CONNECT_ARGS = {"timeout": 60}


def airflow_env() -> dict[str, str]:
    data = paths().data_dir
    home = os.environ.get("AIRFLOW_HOME", str(data / "airflow"))
    return {
        "AIRFLOW_HOME": home,
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Shanghai",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # one worker per core (LocalExecutor starts `parallelism` workers; 32 by default)
        "AIRFLOW__CORE__PARALLELISM": str(max(2, os.cpu_count() or 2)),
        # a task's supervisor notices its process has exited only when its wait for the next
        # heartbeat times out (5 s by default): a third of the night's tasks held their
        # executor slot 5 s after they ended. One heartbeat a second is nothing to the API.
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        # SQLite has one writer: wait for the lock instead of failing with "database is locked"
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "yilian.airflow_env.SQLITE_CONNECT_ARGS",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        # cosmos keeps dbt's partial parse between tasks here; its default (/tmp/cosmos) would
        # be shared by every installation on the machine
        "AIRFLOW__COSMOS__CACHE_DIR": f"{home}/cosmos_cache",
        # cosmos's watcher otherwise rewrites an Airflow Variable with its whole XCom backup on
        # every dbt event (a quarter of the marts build under the scheduler), for a retry of the
        # producer that the marts DAG never makes (retries 0: a failed build fails the same way)
        "AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY": "False",
        # Nothing phones home: cosmos and dbt report usage by default, GX sends analytics.
        # (Airflow 3.3 ships no usage-data collection, so it needs no switch.)
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "DBT_USE_COLORS": "False",
        "GX_ANALYTICS_ENABLED": "False",
    }


def apply_airflow_env() -> None:
    """Set the defaults without overriding what the user exported."""
    for key, value in airflow_env().items():
        os.environ.setdefault(key, value)
