"""The main job: simulate a region for some days and run every DAG through Airflow, in order.

It is what `make run` does for a newcomer, and what the end-to-end tests drive. Each DAG runs
through Airflow itself (`dag.test`, in this one process, so a week takes minutes rather than
the scheduler's per-task start-up), against the simulator's real database, HTTP server and drop
folder; the marts DAG then builds, tests and publishes the warehouse for BI.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from yilian.airflow_env import apply_airflow_env
from yilian.dev import sim_layout
from yilian.settings import LOCAL_TZ, Paths, paths

SOURCE_DAGS = ("yilian_hospital", "yilian_imaging", "yilian_prescriptions")
MARTS_DAG = "yilian_marts"


@dataclass
class DagRunResult:
    dag_id: str
    business_day: date
    state: str
    seconds: float


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


def _airflow(*args: str) -> None:
    airflow = Path(sys.executable).with_name("airflow")
    completed = subprocess.run([str(airflow), *args], capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed:\n{completed.stderr[-2000:]}")


def prepare_airflow() -> None:
    """Parse the dbt project (the marts DAG renders from its manifest), create or migrate the
    metadata DB and the DuckDB writer pool, and serialise the DAGs."""
    from yilian.warehouse.dbt import run_dbt

    run_dbt(["parse"])
    Path(os.environ["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    _airflow("db", "migrate")
    _airflow("pools", "set", "yilian_duckdb", "1", "DuckDB allows one writer at a time")
    _airflow("dags", "reserialize")


def logical_date(business_day: date) -> datetime:
    """The logical date of the run for `business_day`: the DAGs' daily data-interval timetable
    starts the interval at local midnight, and the run starts when the day has ended."""
    import pendulum

    return pendulum.datetime(business_day.year, business_day.month, business_day.day, tz=LOCAL_TZ)


def load_dags() -> dict:
    """Parse the project's DAG folder once; every run of the main job reuses the result."""
    from airflow.dag_processing.dagbag import DagBag

    from yilian.settings import PROJECT_ROOT

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"), safe_mode=False)
    missing = {*SOURCE_DAGS, MARTS_DAG} - set(bag.dags)
    if missing:
        raise RuntimeError(
            f"DAGs {sorted(missing)} not found in {PROJECT_ROOT / 'dags'}: {bag.import_errors}"
        )
    return bag.dags


def run_dag(dag, business_day: date, conf: dict | None = None) -> DagRunResult:
    """Run one DAG for one business day through Airflow, in this process."""
    started = time.monotonic()
    dag_run = dag.test(logical_date=logical_date(business_day), run_conf=conf)
    state = str(getattr(dag_run, "state", "failed"))
    return DagRunResult(dag.dag_id, business_day, state, time.monotonic() - started)


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
    """Simulate `days` into the sources, then run the source DAGs day by day and the marts."""
    from yilian_sim.run import simulate_days
    from yilian_sim.sources.imaging_api import serve_imaging

    data = paths()
    prepare_environment(data)
    # the marts scale the reference populations like the simulated region's volumes
    os.environ["YILIAN_POPULATION_SCALE"] = str(config.scale)
    progress(f"simulating {len(days)} day(s) at scale {config.scale} into {data.sim_dir}")
    simulate_days(config, days, sim_layout(), progress=progress)
    progress("preparing Airflow (metadata DB, pool, DAG serialisation)")
    prepare_airflow()

    dags = load_dags()
    result = PipelineResult()
    with serve_imaging(sim_layout(), token=os.environ["YILIAN_IMAGING_TOKEN"]) as base_url:
        os.environ["AIRFLOW_CONN_YILIAN_IMAGING"] = imaging_connection(base_url)
        for day in days:
            for dag_id in SOURCE_DAGS:
                run = run_dag(dags[dag_id], day)
                result.runs.append(run)
                progress(f"{day}  {dag_id:<22} {run.state:<8} {run.seconds:5.1f}s")
    # The scheduler starts the marts when all three source Assets are updated; here they run
    # once, after the last night, for every day loaded.
    run = run_dag(dags[MARTS_DAG], days[-1], conf={"days": [day.isoformat() for day in days]})
    result.runs.append(run)
    progress(f"{days[-1]}  {MARTS_DAG:<22} {run.state:<8} {run.seconds:5.1f}s")
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
    """Start the main job from empty sources and warehouse (secrets and Airflow's DB stay)."""
    import shutil

    for path in (data.sim_dir, data.landing_dir, data.warehouse.parent, data.publish_dir):
        shutil.rmtree(path, ignore_errors=True)


def run_main_job(config, days: int) -> int:
    """`yilian run`: the whole pipeline for `days` simulated days, then the KPI summary."""
    from datetime import timedelta

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
    report = write_report(
        data.publish_dir / "yilian_marts.duckdb",
        data.reports_dir,
        f"yilian run report — {business_days[0]} to {business_days[-1]}, scale {config.scale}",
    )
    print(f"\nKPIs per county, {business_days[0]} to {business_days[-1]} (scale {config.scale}):")
    print(format_summary(report.county_summary))
    print(f"\nreport:          {report.html_path}")
    print(f"marts for BI:    {data.publish_dir / 'yilian_marts.duckdb'} (and parquet/)")
    print(f"data quality:    {data.data_docs_dir}")
    print(f"finished in {time.monotonic() - started:.0f}s")
    return 1 if result.failed else 0


def run_ui(port: int) -> int:
    """`yilian ui`: airflow standalone on the project's DAGs, the imaging API served beside it."""
    from yilian_sim.sources.imaging_api import serve_imaging

    data = paths()
    prepare_environment(data)
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
            f"imaging API of the simulated region: {base_url}\nCtrl-C stops both.",
            file=sys.stderr,
        )
        airflow = Path(sys.executable).with_name("airflow")
        try:
            return subprocess.run([str(airflow), "standalone"]).returncode
        except KeyboardInterrupt:
            return 0
