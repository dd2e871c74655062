"""This installation's Airflow: the `airflow` command in its environment, and its first setup.

An operator's `airflow ...` must work from a fresh shell: `yilian airflow ...` applies the
project's Airflow environment and, on first use, creates the metadata DB, the pools and the
serialised DAGs (the marts DAG renders from the dbt manifest, so dbt parses first).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from yilian.airflow_env import apply_airflow_env
from yilian.quality import DATA_DOCS_POOL
from yilian.warehouse import DUCKDB_POOL

#: The installation's Airflow pools, one slot each, with what they are for.
POOLS = {
    DUCKDB_POOL: "DuckDB allows one writer at a time",
    DATA_DOCS_POOL: "GX renders one Data Docs site at a time",
}


def airflow_bin() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def airflow(*args: str, timeout: float = 300) -> str:
    """An `airflow` CLI command in this environment; its stdout, or an error with its stderr."""
    done = subprocess.run([airflow_bin(), *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def prepare_airflow() -> None:
    """Parse the dbt project, create or migrate the metadata DB, set the pools and serialise
    the DAGs. Safe to repeat."""
    from yilian.warehouse.dbt import run_dbt

    apply_airflow_env()
    run_dbt(["parse"])
    Path(os.environ["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    airflow("db", "migrate")
    for pool, description in POOLS.items():
        airflow("pools", "set", pool, "1", description)
    airflow("dags", "reserialize")


def _marker() -> Path:
    return Path(os.environ["AIRFLOW_HOME"]) / ".yilian-prepared"


def prepared() -> bool:
    """Has this installation's metadata DB been set up, with today's pools? (The marker written
    after the setup names them: an installation set up before a pool was added sets up again.)"""
    marker = _marker()
    return marker.exists() and marker.read_text().split() == sorted(POOLS)


def ensure_prepared() -> None:
    apply_airflow_env()
    if not prepared():
        print("yilian: setting up this installation's Airflow...", file=sys.stderr)
        prepare_airflow()
        _marker().write_text("\n".join(sorted(POOLS)) + "\n")
