"""Benchmark ingestion: one simulated business day per scale, stage by stage, beside its floor.

Each stage runs in its own process, as an Airflow task does, and reports its wall time, how much
of it went to importing modules (a task's fixed start-up cost, timed by wrapping `__import__`),
and its peak resident memory. Beside each stage, its floor measured in the same run on the same
rows: for extract, the source's own driver fetching the window (sqlite3 for the hospital
platform's SQLite, the FHIR searches without flattening, the drop files decoded and parsed by
Arrow); for validate, DuckDB alone evaluating the suites' row rules over the landed day (the
same SQL, generated from the suite files, that validation runs: yilian.quality.rules), beside
the check columns and suite parameters computed beforehand and outside the timing; for the
others, DuckDB alone on the landed day (reading and rewriting it for pseudonymise+land, reading
it into a table of a database file for load). Each floor runs in a fresh process of its own
too, its imports before the clock, so that both sides of the ratio pay the same first-use
costs (a DuckDB connection and its first query, a driver's first fetch) and neither pays
imports: a floor timed in the warm parent cost half of that at scale 1, which made the ratio
of a small source a count of first calls. The ratio is the stage's work (its time less its
imports) over the floor. data_docs (GX storing the results and rendering their pages, a task
apart from validate) is reported without a floor: no DuckDB query does its work.

    python -m yilian.dev.ingest_bench --scales 1 10
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing as mp
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from yilian.sources import SOURCES

STAGES = ("extract", "pseudonymise_and_land", "validate", "data_docs", "load")
DAY = date(2026, 11, 1)


@dataclass
class StageResult:
    source: str
    stage: str
    seconds: float
    rows: int
    peak_mb: float
    import_seconds: float = 0.0
    floor_seconds: float = 0.0

    @property
    def ratio(self) -> float:
        work = self.seconds - self.import_seconds
        return work / self.floor_seconds if self.floor_seconds else float("nan")


def peak_rss_mib() -> float:
    """This process's own peak RSS. Linux keeps ru_maxrss across exec, so a spawned child would
    report its parent's peak if larger; VmHWM starts afresh with the new program."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")  # not Linux: no honest per-program figure


class ImportClock:
    """Seconds spent in top-level `import` statements while active (nested ones included in
    their parent's)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = 0

    def __enter__(self) -> ImportClock:
        import builtins

        self._builtins, self._original = builtins, builtins.__import__

        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._depth:
                return self._original(*args, **kwargs)
            self._depth += 1
            started = time.perf_counter()
            try:
                return self._original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self._depth -= 1

        builtins.__import__ = timed
        return self

    def __exit__(self, *exc: object) -> None:
        self._builtins.__import__ = self._original


def _stage(stage: str, source: str, arg: Any, out: mp.Queue) -> None:
    """One stage in this (child) process, as a task runs it: imports included, and timed
    (but Airflow's own, which a task process has loaded before it runs the task)."""
    import airflow.sdk  # noqa: F401

    with ImportClock() as imports:
        started = time.perf_counter()
        from yilian.steps import ingest

        if stage == "extract":
            result = ingest.extract(source, DAY)
        elif stage == "pseudonymise_and_land":
            result = ingest.pseudonymise_and_land(source, DAY, arg)
        elif stage == "validate":
            result = ingest.validate(source, DAY, "bench", arg, max_bad_row_share=1.0)
        elif stage == "data_docs":  # hands validate's summary on to load, as the DAG does
            result = {"pages": ingest.data_docs(source, DAY), "validated": arg}
        else:
            result = ingest.load(source, DAY, "bench", arg["validated"])
        seconds = time.perf_counter() - started
    out.put((result, seconds, imports.seconds, peak_rss_mib()))


def _run_stage(stage: str, source: str, arg: Any) -> tuple[Any, float, float, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_stage, args=(stage, source, arg, queue))
    child.start()
    return child_result(child, queue, f"{source} {stage}")


def child_result(child: Any, queue: Any, what: str) -> Any:
    """What `child` put on `queue`, waiting only while it lives: a child that dies (an
    exception, the OOM killer) fails the benchmark naming `what` instead of hanging it."""
    import queue as queues

    while True:
        alive = child.is_alive()  # before the get: a child dead by then has flushed its put
        try:
            result = queue.get(timeout=1)
            break
        except queues.Empty:
            if not alive:
                child.join()
                raise RuntimeError(
                    f"{what} died in the benchmark (exit {child.exitcode})"
                ) from None
    child.join()
    if child.exitcode:
        raise RuntimeError(f"{what} failed in the benchmark (exit {child.exitcode})")
    return result


def _rows(stage: str, result: dict[str, Any]) -> int:
    """Rows the stage handled, from the summary it hands to the next task."""
    if stage == "extract":
        return sum(result["rows"].values())
    if stage == "data_docs":
        return _rows("validate", result["validated"])
    if stage == "load":
        return sum(t["extracted"] for t in result["tables"].values())
    return sum(t["rows"] for t in result["tables"].values())


def _timed(work: Any) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def extract_floor(source: str) -> float:
    """The source's own driver fetching the day's window, nothing else."""
    import sqlite3
    from datetime import datetime, timedelta

    from yilian.sources import hospital, imaging, prescriptions

    system = SOURCES[source]
    if source == "hospital":
        path = hospital.database_url().removeprefix("sqlite:///")
        lo = datetime.combine(DAY, datetime.min.time())
        bounds = (str(lo + timedelta(days=1)), str(lo))

        def fetch() -> None:
            with contextlib.closing(sqlite3.connect(path)) as con:
                for spec in system.tables:
                    where = "updated_at < ?" + ("" if spec.snapshot else " and updated_at >= ?")
                    con.execute(
                        f"select * from {spec.source_table} where {where} "
                        f"order by {', '.join(spec.key)}",
                        bounds[: 1 if spec.snapshot else 2],
                    ).fetchall()

        return _timed(fetch)
    if source == "imaging":
        api = imaging.endpoint()
        return _timed(
            lambda: [
                list(imaging.search(api, s.source_table, DAY, 500, 1.0)) for s in system.tables
            ]
        )
    import pyarrow.csv as csv

    folder = prescriptions.drop_folder() / DAY.isoformat()

    def read() -> None:
        for spec in system.tables:
            data = (folder / f"{spec.table}_{DAY.isoformat()}.csv").read_bytes()
            csv.read_csv(io.BytesIO(data.decode(prescriptions.ENCODING).encode()))

    return _timed(read)


def validate_floor(source: str) -> float:
    """DuckDB alone evaluating every table's row rules over its landed day, as validation does
    (the same generated SQL); the check columns and parameters are prepared untimed."""
    import duckdb
    import pyarrow as pa

    from yilian.landing import partition_path, read_landed
    from yilian.quality import checks, rules
    from yilian.quality.suites import load_suite
    from yilian.settings import paths
    from yilian.warehouse import raw

    system, db = SOURCES[source], paths().warehouse
    specs = {spec.table: spec for spec in system.tables}
    frames = {name: read_landed(spec, DAY, paths().landing_dir) for name, spec in specs.items()}
    with raw.reader(db) as warehouse:
        known = checks.known_facilities(frames, specs, warehouse, DAY)
        params_of = checks.parameters(specs, DAY, known, warehouse)
        batches = checks.with_checks(frames, specs, warehouse, DAY)
    prepared = []
    for name, frame in batches.items():
        params = params_of[name]
        row_rules = [
            (e["type"], rules.resolved(e.get("kwargs", {}), params))
            for e in load_suite(specs[name])["expectations"]
            if e["type"] in rules.ROW_RULES
        ]
        extra = [c for c in frame.columns if c.startswith("_")]
        check_columns = pa.Table.from_pandas(frame[extra], preserve_index=False)
        prepared.append(
            (partition_path(paths().landing_dir, specs[name], DAY), check_columns, row_rules)
        )

    def evaluate() -> None:
        with duckdb.connect() as con:
            for path, check_columns, row_rules in prepared:
                rules.failing_rows(con, rules.batch_relation(con, path, check_columns), row_rules)

    return _timed(evaluate)


def _landed_paths(source: str) -> list[Path]:
    from yilian.settings import paths

    return sorted((paths().landing_dir / f"source={source}").glob(f"table=*/ds={DAY}/*.parquet"))


def rewrite_floor(source: str) -> float:
    """DuckDB alone reading the source's landed day and writing it again (pseudonymise+land)."""
    import duckdb

    scratch = Path(tempfile.mkdtemp())

    def rewrite() -> None:
        with duckdb.connect() as con:
            for i, path in enumerate(_landed_paths(source)):
                con.execute(
                    f"copy (select * from read_parquet('{path}')) to "
                    f"'{scratch / f'{i}.parquet'}' (format parquet, compression zstd)"
                )

    try:
        return _timed(rewrite)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def into_table_floor(source: str) -> float:
    """DuckDB alone reading the landed day into tables of a database file, as the warehouse
    is (load): the commit writes it."""
    import duckdb

    scratch = Path(tempfile.mkdtemp())

    def into_table() -> None:
        with duckdb.connect(str(scratch / "floor.duckdb")) as db:
            for i, path in enumerate(_landed_paths(source)):
                db.execute(f"create table t{i} as select * from read_parquet('{path}')")

    try:
        return _timed(into_table)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


FLOORS = {
    "extract": extract_floor,
    "pseudonymise_and_land": rewrite_floor,
    "validate": validate_floor,
    "load": into_table_floor,
}


def _floor(stage: str, source: str, out: mp.Queue) -> None:
    """One floor in this (child) process, its imports done before the clock starts."""
    import sqlite3  # noqa: F401

    import duckdb  # noqa: F401
    import pyarrow.csv  # noqa: F401
    import requests.adapters  # noqa: F401

    out.put(FLOORS[stage](source))


def _run_floor(stage: str, source: str) -> float:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_floor, args=(stage, source, queue))
    child.start()
    return child_result(child, queue, f"{source} {stage} floor")


def warm_up_imaging_server() -> None:
    """One search of another day, untimed: the simulated server's first answer (its thread
    pool, its database) costs a few tenths of a second once, which neither the extract nor
    its floor, measured after it, should carry; a real imaging cloud is already up."""
    from datetime import timedelta

    from yilian.sources import imaging

    imaging.search(imaging.endpoint(), "ImagingStudy", DAY - timedelta(days=1), 1, 1.0)


def bench_scale(scale: float) -> list[StageResult]:
    """Simulate DAY at `scale` in a scratch directory and ingest it stage by stage."""
    from yilian_sim.config import SimulationConfig
    from yilian_sim.run import simulate_days
    from yilian_sim.sources.imaging_api import ImagingServer

    from yilian.dev import sim_layout
    from yilian.dev.main_job import imaging_connection

    root = Path(tempfile.mkdtemp(prefix=f"yilian-bench-{scale}-"))
    os.environ["YILIAN_DATA_DIR"] = str(root)
    os.environ.setdefault("YILIAN_PSEUDONYM_KEY", secrets.token_hex(32))
    token = os.environ.setdefault("YILIAN_IMAGING_TOKEN", secrets.token_urlsafe(24))
    started = time.perf_counter()
    simulate_days(SimulationConfig(scale=scale), [DAY], sim_layout())
    print(f"scale {scale}: simulated {DAY} in {time.perf_counter() - started:.1f}s")
    results: list[StageResult] = []
    try:
        with ImagingServer(sim_layout().imaging_store, token) as server:
            os.environ["AIRFLOW_CONN_YILIAN_IMAGING"] = imaging_connection(server.base_url)
            warm_up_imaging_server()
            for source in SOURCES:
                arg: Any = None
                mine = []
                for stage in STAGES:
                    arg, seconds, imports, peak = _run_stage(stage, source, arg)
                    mine.append(
                        StageResult(source, stage, seconds, _rows(stage, arg), peak, imports)
                    )
                floors = {stage: _run_floor(stage, source) for stage in FLOORS}
                for result in mine:
                    result.floor_seconds = floors.get(result.stage, 0.0)
                results += mine
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return results


def report(scale: float, results: list[StageResult]) -> None:
    print(f"\nscale {scale}")
    print(
        f"{'source':<14}{'stage':<24}{'rows':>9}{'seconds':>9}{'imports':>9}{'floor':>8}"
        f"{'ratio':>7}{'peak MB':>9}"
    )
    for r in results:
        print(
            f"{r.source:<14}{r.stage:<24}{r.rows:>9}{r.seconds:>9.2f}{r.import_seconds:>9.2f}"
            f"{r.floor_seconds:>8.2f}{r.ratio:>7.1f}{r.peak_mb:>9.0f}"
        )
    print(
        "ratio = (seconds - imports) / floor; floor = the same rows by the driver or DuckDB "
        "(validate: DuckDB evaluating the suites' row rules; data_docs has none)"
    )


def run_benchmark(scales: tuple[float, ...] = (1.0, 10.0)) -> None:
    for scale in scales:
        report(scale, bench_scale(scale))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    run_benchmark(tuple(parser.parse_args().scales))


if __name__ == "__main__":
    main()
