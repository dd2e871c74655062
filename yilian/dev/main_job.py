"""The main job: simulate a region for some days and run every DAG through Airflow, in order.

It is what `make run` does for a newcomer, and what the end-to-end tests drive. Each DAG runs
through Airflow itself (`dag.test`, in this one process, so a week takes minutes rather than
the scheduler's per-task start-up), against the simulator's real database, HTTP server and drop
folder; the marts DAG then builds, tests and publishes the warehouse for BI.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from yilian.airflow_env import apply_airflow_env
from yilian.dev import airflow_services, sim_layout
from yilian.installation import airflow, prepare_airflow
from yilian.settings import FIRST_DAY_ENV, LAST_DAY_ENV, Paths, paths
from yilian.sources import SOURCES

SOURCE_DAGS = tuple(f"yilian_{name}" for name in SOURCES)
MARTS_DAG = "yilian_marts"
#: Generous bound per simulated day on the whole backfill (a stuck run fails the job).
RUN_TIMEOUT_SECONDS = 600


@dataclass
class DagRunResult:
    dag_id: str
    business_day: date
    state: str
    seconds: float
    built: bool = True  # a marts run that found its day's feeds complete


@dataclass
class PipelineResult:
    runs: list[DagRunResult] = field(default_factory=list)

    @property
    def failed(self) -> list[DagRunResult]:
        return [run for run in self.runs if run.state != "success"]


def _secret_file(path: Path) -> str:
    """A per-installation secret kept under data/ (git-ignored), created on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


def prepare_environment(data: Paths) -> None:
    """Point Airflow and the extractors at the embedded simulator, with secrets from data/."""
    apply_airflow_env()
    os.environ.setdefault(
        "YILIAN_PSEUDONYM_KEY", _secret_file(data.data_dir / "secrets" / "pseudonym.key")
    )
    os.environ.setdefault(
        "YILIAN_IMAGING_TOKEN", _secret_file(data.data_dir / "secrets" / "imaging.token")
    )
    # the api-server and the task processes must sign and check the same task tokens
    os.environ.setdefault(
        "AIRFLOW__API_AUTH__JWT_SECRET", _secret_file(data.data_dir / "secrets" / "jwt.secret")
    )


@contextlib.contextmanager
def console_to(log_path: Path | None) -> Iterator[Callable[[str], None]]:
    """Send everything written to stdout/stderr (Airflow's and dbt's task logs) to `log_path`,
    and yield a `progress` function that still reaches the terminal's stderr.

    Works at the file-descriptor level, since Airflow's loggers keep their own handles on the
    streams they were configured with.
    """
    if log_path is None:
        yield lambda line: print(line, file=sys.stderr, flush=True)
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with open(log_path, "wb") as log:
        for fd in saved:
            os.dup2(log.fileno(), fd)
        try:
            yield lambda line: os.write(saved[2], (line + "\n").encode())
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, original in saved.items():
                os.dup2(original, fd)
                os.close(original)


def run_pipeline(
    days: list[date],
    config,
    progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> PipelineResult:
    """Simulate `days` into the sources, then let the real scheduler run them: the DAGs are
    unpaused, each source DAG is backfilled over the days (in parallel, as Airflow schedules a
    backfill), and every loaded day starts its marts run from the partitioned Assets."""
    from yilian_sim.run import simulate_days
    from yilian_sim.sources.imaging_api import serve_imaging

    data = paths()
    prepare_environment(data)
    # the schedule covers the simulated days only: no run for a day the region never had
    os.environ[FIRST_DAY_ENV], os.environ[LAST_DAY_ENV] = days[0].isoformat(), days[-1].isoformat()
    progress(f"simulating {len(days)} day(s) at scale {config.scale} into {data.sim_dir}")
    simulate_days(config, days, sim_layout(), progress=progress)
    progress("preparing Airflow (metadata DB, pool, DAG serialisation)")
    prepare_airflow()
    with serve_imaging(sim_layout(), token=os.environ["YILIAN_IMAGING_TOKEN"]) as base_url:
        os.environ["AIRFLOW_CONN_YILIAN_IMAGING"] = imaging_connection(base_url)
        logs = Path(os.environ["AIRFLOW_HOME"]) / "services"
        with airflow_services.running(logs) as af:
            progress(f"Airflow is up at {af.base_url} ({', '.join(airflow_services.COMPONENTS)})")
            return backfill(af, days, progress)


def backfill(
    af: airflow_services.Airflow, days: list[date], progress: Callable[[str], None]
) -> PipelineResult:
    """Unpause the DAGs, backfill every source over `days`, and wait until each day's marts
    are built (or something failed and nothing is left running); report runs as they end."""
    ours = "|".join(re.escape(dag_id) for dag_id in (*SOURCE_DAGS, MARTS_DAG))
    airflow("dags", "unpause", "--treat-dag-id-as-regex", "--yes", f"^({ours})$")
    # the sources' runs start together, as the nightly schedule starts them: one CLI after
    # another (~4 s each, Airflow's imports) held the last source back ~8 s
    with ThreadPoolExecutor(len(SOURCE_DAGS)) as pool:
        for _ in pool.map(
            lambda dag_id: airflow(
                "backfill",
                "create",
                "--dag-id",
                dag_id,
                "--from-date",
                days[0].isoformat(),
                "--to-date",
                days[-1].isoformat(),
            ),
            SOURCE_DAGS,
        ):
            pass
    reported: set[str] = set()
    result = PipelineResult()
    wanted = {day.isoformat() for day in days}

    def report(runs: list[airflow_services.DagRun]) -> None:
        for run in runs:
            if run.run_id in reported or run.state not in ("success", "failed"):
                continue
            reported.add(run.run_id)
            built = (
                run.dag_id != MARTS_DAG
                or af.task_states(run.dag_id, run.run_id).get("publish") == "success"
            )
            note = "" if built else "  (feeds of the day not all in yet: nothing built)"
            day = date.fromisoformat(run.partition_key) if run.partition_key else days[-1]
            result.runs.append(DagRunResult(run.dag_id, day, run.state, run.seconds, built))
            progress(f"{day}  {run.dag_id:<22} {run.state:<8} {run.seconds:6.1f}s{note}")

    def finished() -> bool:
        runs = af.runs()
        report(runs)
        if any(r.state not in ("success", "failed") for r in runs):
            return False
        built = {
            r.business_day.isoformat() for r in result.runs if r.dag_id == MARTS_DAG and r.built
        }
        failed = any(r.state == "failed" for r in runs)
        sources_done = all(
            any(r.dag_id == dag_id and r.partition_key == day for r in runs)
            for dag_id in SOURCE_DAGS
            for day in wanted
        )
        return sources_done and (built >= wanted or failed)

    af.wait(finished, timeout=RUN_TIMEOUT_SECONDS * len(days), what="the backfill")
    return result


def imaging_connection(base_url: str) -> str:
    """The Airflow connection (JSON form) the imaging extractor resolves for `base_url`."""
    import json
    from urllib.parse import urlsplit

    url = urlsplit(base_url)
    return json.dumps(
        {
            "conn_type": "http",
            "host": url.hostname,
            "port": url.port,
            "schema": url.path.strip("/"),
            "password": os.environ["YILIAN_IMAGING_TOKEN"],
        }
    )


def reset_runtime_data(data: Paths) -> None:
    """Start the main job from empty sources, warehouse and DAG runs (secrets stay).

    The simulated days are always the same partitions, so the runs of an earlier `make run`
    (or of a scheduler left running) would count as tonight's: the installation's SQLite
    metadata DB goes too, and prepare_airflow makes it again.
    """
    import shutil

    from yilian.airflow_env import airflow_env

    for path in (data.sim_dir, data.landing_dir, data.warehouse.parent, data.publish_dir):
        shutil.rmtree(path, ignore_errors=True)
    metadata = airflow_env()["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    if metadata.startswith("sqlite:///"):
        Path(metadata.removeprefix("sqlite:///")).unlink(missing_ok=True)


def run_main_job(config, days: int) -> int:
    """`yilian run`: the whole pipeline for `days` simulated days, then the KPI summary."""
    from yilian.operator_ui import day_summary, read_snapshot
    from yilian.warehouse.report import format_summary, write_report

    data = paths()
    reset_runtime_data(data)
    business_days = [config.start + timedelta(days=i) for i in range(days)]
    started = time.monotonic()
    log_path = data.reports_dir / "main_job.log"
    print(
        f"yilian run: {days} day(s) from {config.start} at scale {config.scale}; "
        f"Airflow and dbt logs go to {log_path}",
        file=sys.stderr,
    )
    with console_to(log_path) as progress:
        result = run_pipeline(business_days, config, progress)
    if result.failed:
        for run in result.failed:
            print(
                f"FAILED: {run.dag_id} for {run.business_day} — see the task log in "
                f"{os.environ['AIRFLOW_HOME']}/logs (or `make ui`)",
                file=sys.stderr,
            )
    if not (data.publish_dir / "yilian_marts.duckdb").exists():
        return 1
    snapshot = read_snapshot()
    report = write_report(
        data.publish_dir / "yilian_marts.duckdb",
        data.reports_dir,
        f"yilian run report — {business_days[0]} to {business_days[-1]}, scale {config.scale}",
        quality=day_summary(snapshot["load_runs"], snapshot["rejected_summary"]),
    )
    print(f"\nKPIs per county, {business_days[0]} to {business_days[-1]} (scale {config.scale}):")
    print(format_summary(report.county_summary))
    print("\nNational indicators beside their targets (the whole run, the region):")
    shown = report.indicators[["indicator", "region", "national target", "region vs target"]]
    print(shown.to_string(index=False))
    print(f"\nreport:          {report.html_path}")
    print(f"marts for BI:    {data.publish_dir / 'yilian_marts.duckdb'} (and parquet/)")
    print(f"data quality:    {data.data_docs_dir}")
    print(f"finished in {time.monotonic() - started:.0f}s")
    return 1 if result.failed else 0


def run_ui(port: int) -> int:
    """`yilian ui`: airflow standalone on the project's DAGs, the imaging API served beside it."""
    from yilian_sim.run import simulated_clock
    from yilian_sim.sources.imaging_api import serve_imaging

    data = paths()
    prepare_environment(data)
    clock = simulated_clock(sim_layout())
    if clock is not None:  # the region's data ends there: schedule no night after it
        os.environ.setdefault(LAST_DAY_ENV, (clock.date() - timedelta(days=1)).isoformat())
    prepare_airflow()
    os.environ["AIRFLOW__API__PORT"] = str(port)
    # standalone starts its components as `airflow ...` subprocesses found on PATH
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    home = os.environ["AIRFLOW_HOME"]
    with serve_imaging(sim_layout(), token=os.environ["YILIAN_IMAGING_TOKEN"]) as base_url:
        os.environ["AIRFLOW_CONN_YILIAN_IMAGING"] = imaging_connection(base_url)
        print(
            f"Airflow UI: http://localhost:{port}  (user admin; password in "
            f"{home}/simple_auth_manager_passwords.json.generated once it starts)\n"
            f"imaging API of the simulated region: {base_url}\n"
            "The DAGs start paused: unpause them in the UI (or `yilian airflow dags unpause "
            "DAG_ID`); backfill days with `yilian airflow backfill create --dag-id DAG_ID "
            "--from-date YYYY-MM-DD --to-date YYYY-MM-DD`.\nCtrl-C stops both.",
            file=sys.stderr,
        )
        airflow = Path(sys.executable).with_name("airflow")
        try:
            return subprocess.run([str(airflow), "standalone"]).returncode
        except KeyboardInterrupt:
            return 0
