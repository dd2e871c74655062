"""Run the dbt project (raw → staging → intermediate → marts) against the DuckDB warehouse.

One entry point for the CLI, the marts DAG and the tests, so all three run dbt the same way:
the project and profiles directories of `dbt_project/`, the warehouse path from
`yilian.settings.paths()` (or an explicit file), nothing phoning home, and the business days the
day-incremental models process (env YILIAN_DS, read by the macro `ds_values`).

The days are an environment variable rather than a `--vars` entry because dbt hashes the
command-line vars into its partial-parse state: a new day every night threw the whole parse away
("Unable to do partial parsing because config vars … have changed"). The macro reads the
variable only when executing, so parsing never records it either.

    from yilian.warehouse.dbt import build
    build(ds="2026-11-05")                  # tonight: reprocess the days touched by ds
    build(full_refresh=True)                # rebuild everything; gives the same marts
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from yilian.settings import PROJECT_ROOT, paths, scoped_environ

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
#: Named on every invocation, as cosmos names them: dbt hashes the command line's profile and
#: target into its partial-parse state, so the installation's parse serves the first night too.
DBT_PROFILE, DBT_TARGET = "yilian", "dev"
MART_TABLES = (
    "mart_referrals_daily",
    "mart_remote_diagnosis_daily",
    "mart_interoperability_daily",
    "mart_alliance_kpis_monthly",
)

_ENV_LOCK = threading.Lock()


class DbtError(RuntimeError):
    """A dbt invocation failed; the message names every failing node and why."""


@dataclass(frozen=True)
class NodeResult:
    unique_id: str
    status: str
    execution_time: float
    message: str | None


@dataclass(frozen=True)
class DbtResult:
    args: tuple[str, ...]
    success: bool
    elapsed_seconds: float
    nodes: tuple[NodeResult, ...] = field(default_factory=tuple)
    exception: str | None = None

    @property
    def failures(self) -> tuple[NodeResult, ...]:
        return tuple(n for n in self.nodes if n.status in ("error", "fail", "runtime error"))

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for node in self.nodes:
            counts[node.status] = counts.get(node.status, 0) + 1
        parts = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        return f"dbt {' '.join(self.args[:1])}: {parts} in {self.elapsed_seconds:.1f}s"


DS_ENV = "YILIAN_DS"
Days = date | str | Sequence[date | str] | None


def dbt_env(warehouse: Path | str | None = None, ds: Days = None) -> dict[str, str]:
    """Environment for a dbt run: the warehouse file, the business days `ds` (none: the
    incremental models process the latest loaded partition) and every telemetry switch off."""
    return {
        "YILIAN_WAREHOUSE": str(Path(warehouse) if warehouse else paths().warehouse),
        DS_ENV: dbt_days(ds),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "DBT_USE_COLORS": "False",  # task logs are read in a browser: no ANSI codes
        "DO_NOT_TRACK": "1",
    }


def dbt_days(ds: Days = None) -> str:
    """The days as YILIAN_DS carries them: comma-separated YYYY-MM-DD ('' for none)."""
    if ds is None:
        return ""
    if isinstance(ds, (date, str)):
        ds = [ds]
    return ",".join(d.isoformat() if isinstance(d, date) else str(d) for d in ds)


def release_duckdb() -> None:
    """Close the DuckDB instance dbt-duckdb keeps open in-process after a run.

    DuckDB allows one writer per file: without this, the warehouse stays locked by this process
    (and a read-only connection from it fails) until the interpreter exits.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover - dbt-duckdb is a declared dependency
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if env is not None:
            with contextlib.suppress(Exception):  # best effort: the next run reopens anyway
                env.close()


def install_packages() -> None:
    """`dbt deps` when dbt_packages/ holds fewer packages than packages.yml lists (dbt's own check).

    A fresh clone has none (the folder is git-ignored); the packages are vendored as `local:`
    ones, so this needs no network.
    """
    import yaml
    from dbt.cli.main import dbtRunner

    specified = yaml.safe_load((DBT_PROJECT_DIR / "packages.yml").read_text())["packages"]
    installed = DBT_PROJECT_DIR / "dbt_packages"
    if installed.is_dir() and sum(p.is_dir() for p in installed.iterdir()) >= len(specified):
        return
    project = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    outcome = dbtRunner().invoke(["deps", *project])
    if not outcome.success:
        raise DbtError(f"dbt deps failed: {outcome.exception or 'see dbt.log'}")


def run_dbt(
    args: Sequence[str],
    *,
    warehouse: Path | str | None = None,
    ds: Days = None,
    target_path: Path | str | None = None,
    raise_on_failure: bool = True,
) -> DbtResult:
    """Run one dbt command in-process (`dbtRunner`) on the yilian project.

    `args` is the command and its own flags, e.g. `["build", "--select", "marts"]`.
    `target_path` separates concurrent runs' artifacts (default `dbt_project/target`).
    """
    from dbt.cli.main import dbtRunner

    warehouse_path = Path(warehouse) if warehouse else paths().warehouse
    warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    cli_args = [
        *args,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--profile",
        DBT_PROFILE,
        "--target",
        DBT_TARGET,
    ]
    if target_path is not None:
        cli_args += ["--target-path", str(target_path)]
        cli_args += ["--log-path", str(Path(target_path) / "logs")]
    started = time.monotonic()
    with _ENV_LOCK, scoped_environ(dbt_env(warehouse_path, ds)):
        try:
            install_packages()
            outcome = dbtRunner().invoke(cli_args)
        finally:
            release_duckdb()
    elapsed = time.monotonic() - started

    nodes: list[NodeResult] = []
    result = outcome.result
    for node_result in getattr(result, "results", None) or []:
        nodes.append(
            NodeResult(
                unique_id=node_result.node.unique_id,
                status=str(getattr(node_result.status, "value", node_result.status)),
                execution_time=float(node_result.execution_time or 0.0),
                message=node_result.message,
            )
        )
    run = DbtResult(
        args=tuple(args),
        success=bool(outcome.success),
        elapsed_seconds=elapsed,
        nodes=tuple(nodes),
        exception=str(outcome.exception) if outcome.exception else None,
    )
    if raise_on_failure and not run.success:
        details = "; ".join(f"{n.unique_id}: {n.status}: {n.message}" for n in run.failures)
        raise DbtError(
            f"dbt {' '.join(args)} failed on {warehouse_path}"
            f"{' (ds=' + dbt_days(ds) + ')' if ds else ''}: "
            f"{details or run.exception or 'see dbt.log'}"
        )
    return run


def build(
    ds: Days = None,
    *,
    full_refresh: bool = False,
    warehouse: Path | str | None = None,
    target_path: Path | str | None = None,
    raise_on_failure: bool = True,
) -> DbtResult:
    """`dbt build` (seeds, models, unit tests, contracts, data tests) for business day `ds`.

    `ds` may be several days (a catch-up run); None on an incremental run processes the latest
    loaded partition.
    """
    args = ["build"]
    if full_refresh:
        args.append("--full-refresh")
    return run_dbt(
        args,
        warehouse=warehouse,
        ds=ds,
        target_path=target_path,
        raise_on_failure=raise_on_failure,
    )
