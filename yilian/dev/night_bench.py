"""One night through the real scheduler, as `make run` runs it, measured (P2 and P4).

A scratch installation per scale: the region's first day simulated, Airflow's api-server,
scheduler, dag-processor and triggerer started, every source DAG backfilled over the day and
the marts built from the partitioned Assets (`main_job.run_pipeline`, the main job's own code).
Then, from Airflow's metadata DB and task logs: the night's wall time (first source run started
→ last marts run ended), each DAG run's and each task's seconds, how long each task waited
queued and spent parsing its DAG file before its code ran, every DAG file's parse time in the
dag-processor; and, sampled from /proc while it ran, the peak resident memory of every task
process and of the whole installation.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

WORKER_TITLE = "airflow worker -- "  # the task runner's process title, then the TI's id
SAMPLE_SECONDS = 0.25


@dataclass(frozen=True)
class TaskFigure:
    dag_id: str
    task_id: str
    state: str
    started_at: float  # seconds after the night's first source run started
    seconds: float  # Airflow's duration: the task's own run, its DAG parse included
    queued_seconds: float  # queued → started: the executor picking it up and starting a process
    parse_seconds: float  # the task process parsing its DAG file
    peak_mib: float
    log_key: tuple[str, str, str, int]  # dag_id, run_id, task_id, try_number


@dataclass
class NightFigures:
    scale: float
    source_rows: int
    wall_seconds: float
    runs: list[tuple[str, str, float]]  # dag_id, state, seconds
    tasks: list[TaskFigure]
    parse_seconds: dict[str, float]  # DAG id → the dag-processor's last parse of its file
    peak_total_mib: float
    load: tuple[float, float, float]
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the failed tasks' error lines
    dbt_lines: list[str] = field(default_factory=list)  # what each dbt build said it ran


def _status_kib(pid: str, key: str) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    return 0


class RssSampler:
    """Peak RSS of this process's descendants: per task process (by its TI id) and in total."""

    def __init__(self) -> None:
        self.per_task_kib: dict[str, int] = {}
        self.peak_total_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _descendants(self) -> list[str]:
        parents: dict[str, str] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError):
                    stat = Path(f"/proc/{entry.name}/stat").read_text()
                    parents[entry.name] = stat.rsplit(")", 1)[1].split()[1]
        mine, frontier = set(), {str(os.getpid())}
        while frontier:
            frontier = {pid for pid, parent in parents.items() if parent in frontier} - mine
            mine |= frontier
        return sorted(mine)

    def _sample(self) -> None:
        total = 0
        for pid in self._descendants():
            total += _status_kib(pid, "VmRSS:")
            with contextlib.suppress(OSError):
                title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                if title.startswith(WORKER_TITLE):
                    # the UUID as the metadata DB keeps it (SQLite: 32 hex digits, no dashes)
                    ti = title.removeprefix(WORKER_TITLE).strip().replace("-", "")
                    peak = _status_kib(pid, "VmHWM:")
                    self.per_task_kib[ti] = max(self.per_task_kib.get(ti, 0), peak)
        self.peak_total_kib = max(self.peak_total_kib, total)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _seconds(a: str | None, b: str | None) -> float:
    from datetime import datetime

    if not (a and b):
        return 0.0
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def _parse_ms(home: Path, key: tuple[str, str, str, int]) -> float:
    """`dag_file_parse_ms` of the task's "Worker startup parse complete" log event."""
    with contextlib.suppress(OSError), _log_path(home, *key).open(errors="replace") as log:
        for line in log:
            if '"dag_file_parse_ms"' in line:
                with contextlib.suppress(json.JSONDecodeError, KeyError):
                    return float(json.loads(line)["dag_file_parse_ms"])
    return 0.0


def _log_path(home: Path, dag_id: str, run_id: str, task_id: str, try_number: int) -> Path:
    return (
        home
        / "logs"
        / f"dag_id={dag_id}"
        / f"run_id={run_id}"
        / f"task_id={task_id}"
        / f"attempt={max(try_number, 1)}.log"
    )


def _events(home: Path, task: TaskFigure, wanted: tuple[str, ...]) -> list[str]:
    """The task's log events containing any of `wanted`."""
    found = []
    with contextlib.suppress(OSError):
        for line in _log_path(home, *task.log_key).read_text(errors="replace").splitlines():
            if any(w in line for w in wanted):
                with contextlib.suppress(json.JSONDecodeError, AttributeError):
                    found.append(str(json.loads(line).get("event", ""))[:300])
    return found


def _error_lines(home: Path, task: TaskFigure, keep: int = 3) -> list[str]:
    """The first error events of a failed task's log."""
    lines = []
    with contextlib.suppress(OSError):
        for line in _log_path(home, *task.log_key).read_text(errors="replace").splitlines():
            with contextlib.suppress(json.JSONDecodeError, TypeError):
                event = json.loads(line)
                if event.get("level") in ("error", "critical"):
                    detail = event.get("error_detail") or [{}]
                    last = detail[-1] if isinstance(detail, list) and detail else {}
                    cause = f" {last.get('exc_type')}: {last.get('exc_value')}" if last else ""
                    lines.append(f"{event.get('event', '')}{cause}"[:400])
    return lines[:keep]


def read_figures(home: Path, rss: RssSampler) -> tuple[list, list[TaskFigure], dict, float]:
    """Runs, tasks and DAG parse times from the installation's metadata DB and logs."""
    with contextlib.closing(sqlite3.connect(f"file:{home / 'airflow.db'}?mode=ro", uri=True)) as db:
        db.row_factory = sqlite3.Row
        runs = db.execute(
            "select dag_id, state, start_date, end_date from dag_run order by start_date"
        ).fetchall()
        tis = db.execute(
            "select id, dag_id, run_id, task_id, state, duration, queued_dttm, start_date, "
            "try_number from task_instance where start_date is not null order by start_date"
        ).fetchall()
        parse = dict(db.execute("select dag_id, last_parse_duration from dag").fetchall())
    night_start = min(r["start_date"] for r in runs if r["start_date"])
    tasks = []
    for ti in tis:
        key = (ti["dag_id"], ti["run_id"], ti["task_id"], ti["try_number"])
        tasks.append(
            TaskFigure(
                ti["dag_id"],
                ti["task_id"],
                ti["state"] or "",
                _seconds(night_start, ti["start_date"]),
                float(ti["duration"] or 0.0),
                max(0.0, _seconds(ti["queued_dttm"], ti["start_date"])),
                _parse_ms(home, key) / 1000,
                rss.per_task_kib.get(str(ti["id"]).replace("-", ""), 0) / 1024,
                key,
            )
        )
    wall = _seconds(night_start, max(r["end_date"] for r in runs if r["end_date"]))
    figures = [(r["dag_id"], r["state"], _seconds(r["start_date"], r["end_date"])) for r in runs]
    return figures, tasks, {k: float(v or 0.0) for k, v in parse.items()}, wall


def night(scale: float) -> NightFigures:
    """Simulate the first day at `scale` in a scratch installation and run it through Airflow."""
    from yilian_sim.config import SimulationConfig

    from yilian.dev.bench import scratch
    from yilian.dev.main_job import run_pipeline
    from yilian.settings import paths, scoped_environ
    from yilian.warehouse import raw

    config = SimulationConfig(scale=scale)
    with (
        tempfile.TemporaryDirectory(prefix=f"yilian-night-{scale:g}-") as tmp,
        scratch(Path(tmp)),
        # the task logs' INFO events carry each task's DAG parse time
        scoped_environ({"AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO"}),
    ):
        progress: list[str] = []  # the main job's lines: kept out of the figures
        with RssSampler() as rss:
            result = run_pipeline([config.start], config, progress.append)
        home = Path(os.environ["AIRFLOW_HOME"])
        runs, tasks, parse, wall = read_figures(home, rss)
        errors = [
            f"{t.dag_id}.{t.task_id}: {line}"
            for t in tasks
            if t.state == "failed"
            for line in _error_lines(home, t)
        ]
        dbt_lines = [
            line
            for t in tasks
            if t.task_id.endswith("dbt_producer_watcher") and t.state != "skipped"
            for line in _events(home, t, ("Unable to do partial parsing", "Finished running"))
        ]
        with raw.connect(paths().warehouse, read_only=True) as con:
            (rows,) = con.execute(
                "select sum(rows_extracted) from audit.load_runs where outcome = 'loaded'"
            ).fetchone()
    return NightFigures(
        scale=scale,
        source_rows=int(rows or 0),
        wall_seconds=wall,
        runs=runs,
        tasks=tasks,
        parse_seconds=parse,
        peak_total_mib=rss.peak_total_kib / 1024,
        load=os.getloadavg(),
        failed=[f"{r.dag_id} {r.business_day}" for r in result.failed],
        errors=errors,
        dbt_lines=dbt_lines,
    )


def report(figures: NightFigures) -> None:
    f = figures
    load = ", ".join(f"{x:.2f}" for x in f.load)
    print(
        f"\n  scale {f.scale:g}: night {f.wall_seconds:.1f} s wall (first source run started → "
        f"last marts run ended), {f.source_rows:,} source rows, peak RSS of the installation "
        f"{f.peak_total_mib:,.0f} MiB; load average {load}"
    )
    if f.failed:
        print(f"  FAILED runs: {', '.join(f.failed)}")
        for line in f.errors:
            print(f"    {line}")
    for dag_id, state, seconds in f.runs:
        print(f"    run {dag_id:<24}{state:<10}{seconds:>8.1f} s")
    print(
        f"    {'task':<60}{'state':<10}{'at':>7}{'seconds':>8}{'queued':>8}{'parse':>7}"
        f"{'peak MiB':>10}"
    )
    for t in f.tasks:
        if t.state == "skipped":
            continue
        peak = f"{t.peak_mib:10.0f}" if t.peak_mib else f"{'':>10}"
        print(
            f"    {t.dag_id.removeprefix('yilian_') + '.' + t.task_id:<60}{t.state:<10}"
            f"{t.started_at:>7.1f}{t.seconds:>8.1f}{t.queued_seconds:>8.1f}{t.parse_seconds:>7.2f}{peak}"
        )
    watched = [t for t in f.tasks if t.task_id.startswith("dbt.") and "producer" not in t.task_id]
    skipped = sum(t.state == "skipped" for t in f.tasks)
    print(
        f"    {len(f.tasks)} task runs ({skipped} skipped, not listed): "
        f"{sum(t.seconds for t in f.tasks):.1f} s of task time, "
        f"{sum(t.queued_seconds for t in f.tasks):.1f} s queued, "
        f"{sum(t.parse_seconds for t in f.tasks):.1f} s parsing DAG files "
        f"({len(watched)} dbt watcher runs: {sum(t.seconds for t in watched):.1f} s)"
    )
    for line in f.dbt_lines:
        print(f"    dbt: {line}")
    print(
        "    DAG file parse in the dag-processor: "
        + ", ".join(f"{dag} {s:.2f} s" for dag, s in sorted(f.parse_seconds.items()))
    )


def run_nights(scales: tuple[float, ...]) -> list[NightFigures]:
    print(
        "\n[night] one business day through the real scheduler (api-server, scheduler, "
        "dag-processor, triggerer; every task its own process, the waits and dbt watchers in "
        "the triggerer)"
    )
    out = []
    for scale in scales:
        started = time.perf_counter()
        figures = night(scale)
        report(figures)
        print(
            f"    (simulation, Airflow set-up and the night: {time.perf_counter() - started:.0f} s)"
        )
        out.append(figures)
    return out
