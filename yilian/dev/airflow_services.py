"""The real Airflow of the embedded installation: api-server, scheduler, dag-processor and
triggerer as separate processes (LocalExecutor: every task in a process of its own), and the
operator's commands against them.

The main job and the end-to-end tests drive the pipeline through this, as an operator would:
unpause the DAGs, `airflow backfill create` per source, watch the runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import requests

from yilian.installation import airflow, airflow_bin

__all__ = ["Airflow", "airflow", "running"]

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
READY_SECONDS = 180


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class DagRun:
    dag_id: str
    run_id: str
    partition_key: str | None
    state: str
    run_type: str
    start_date: str | None
    end_date: str | None

    @property
    def seconds(self) -> float:
        if not (self.start_date and self.end_date):
            return 0.0
        return (
            datetime.fromisoformat(self.end_date) - datetime.fromisoformat(self.start_date)
        ).total_seconds()


@dataclass
class Airflow:
    """A running installation: its API's base URL and its metadata DB."""

    base_url: str
    home: Path

    def db(self) -> sqlite3.Connection:
        con = sqlite3.connect(f"file:{self.home / 'airflow.db'}?mode=ro", uri=True, timeout=30)
        con.row_factory = sqlite3.Row
        return con

    def runs(self, dag_id: str | None = None) -> list[DagRun]:
        sql = (
            "select dag_id, run_id, partition_key, state, run_type, start_date, end_date "
            "from dag_run"
        )
        with contextlib.closing(self.db()) as con:
            rows = con.execute(
                sql + (" where dag_id = ?" if dag_id else "") + " order by id",
                [dag_id] if dag_id else [],
            ).fetchall()
        return [DagRun(**dict(r)) for r in rows]

    def _per_task(self, dag_id: str, run_id: str, column: str) -> dict[str, object]:
        """`column` of every task instance of the run, by task id."""
        with contextlib.closing(self.db()) as con:
            rows = con.execute(
                f"select task_id, {column} from task_instance where dag_id = ? and run_id = ?",
                [dag_id, run_id],
            ).fetchall()
        return {r["task_id"]: r[column] for r in rows}

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        return self._per_task(dag_id, run_id, "state")

    def try_numbers(self, dag_id: str, run_id: str) -> dict[str, int]:
        return self._per_task(dag_id, run_id, "try_number")

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """The task's log file as the UI shows it (JSON lines: the events' text, in order)."""
        path = (
            self.home
            / "logs"
            / f"dag_id={dag_id}"
            / f"run_id={run_id}"
            / f"task_id={task_id}"
            / f"attempt={try_number}.log"
        )
        lines = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                lines.append(line)
                continue
            lines.append(str(event.get("event", "")))
        return "\n".join(lines)

    def wait(
        self,
        done: callable,
        timeout: float,
        what: str,
        progress: callable | None = None,
    ) -> None:
        """Poll `done()` every second until true; fail naming `what` after `timeout`."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                states = [(r.dag_id, r.partition_key, r.state) for r in self.runs()]
                raise TimeoutError(f"{what} not done after {timeout:.0f}s; runs: {states}")
            if progress is not None:
                progress()
            time.sleep(1)


def _wait_ready(base_url: str, processes: dict[str, subprocess.Popen], logs: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                tail = (logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"airflow {name} exited with {process.returncode}:\n{tail}")
        with contextlib.suppress(requests.RequestException):
            # ready means the tasks' API answers too: its first request builds it (3–4 s,
            # otherwise paid by the night's first task)
            if all(
                requests.get(f"{base_url}{path}", timeout=30).ok
                for path in ("/api/v2/monitor/health", "/execution/health")
            ):
                return
        time.sleep(1)
    raise TimeoutError(f"the Airflow API at {base_url} did not answer in {READY_SECONDS}s")


@contextlib.contextmanager
def running(
    logs: Path, port: int | None = None, components: tuple[str, ...] = COMPONENTS
) -> Iterator[Airflow]:
    """Start the components (the environment must already be Airflow's: airflow_env), wait
    until the API answers, and stop them all afterwards. `components` must include the
    api-server (the UI tests start nothing else)."""
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = os.environ | {
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    logs.mkdir(parents=True, exist_ok=True)
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name in components:
            with open(logs / f"{name}.log", "wb") as out:
                processes[name] = subprocess.Popen(
                    [airflow_bin(), name],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        _wait_ready(base_url, processes, logs)
        yield Airflow(base_url, Path(os.environ["AIRFLOW_HOME"]))
    finally:
        for process in processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 15)
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()
