"""Benchmark ingestion: one simulated business day per scale, stage by stage, beside DuckDB.

Each stage runs in its own process, as an Airflow task does, and reports its own wall time and
peak resident memory (imports are done before the clock starts, so the time is the work; the
memory includes the libraries a task has to load). Next to it: the time DuckDB alone needs to
read the same day's landed Parquet — the floor any per-row Python work is measured against.

    python -m yilian.dev.ingest_bench --scales 1 10
"""

from __future__ import annotations

import argparse
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

STAGES = ("extract", "pseudonymise_and_land", "validate", "load")
DAY = date(2026, 11, 1)


@dataclass
class StageResult:
    source: str
    stage: str
    seconds: float
    rows: int
    peak_mb: float


def peak_rss_mib() -> float:
    """This process's own peak RSS. Linux keeps ru_maxrss across exec, so a spawned child would
    report its parent's peak if larger; VmHWM starts afresh with the new program."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")  # not Linux: no honest per-program figure


def _stage(stage: str, source: str, arg: Any, out: mp.Queue) -> None:
    """One stage in this (child) process: warm the imports, then time the work."""
    import great_expectations  # noqa: F401  (the import is a task's fixed cost, not the work)

    from yilian.steps import ingest

    started = time.perf_counter()
    if stage == "extract":
        result = ingest.extract(source, DAY)
    elif stage == "pseudonymise_and_land":
        result = ingest.pseudonymise_and_land(source, DAY, arg)
    elif stage == "validate":
        result = ingest.validate(source, DAY, "bench", arg, max_bad_row_share=1.0)
    else:
        result = ingest.load(source, DAY, "bench", arg)
    seconds = time.perf_counter() - started
    peak_mb = peak_rss_mib()
    out.put((result, seconds, peak_mb))


def _run_stage(stage: str, source: str, arg: Any) -> tuple[Any, float, float]:
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
    if stage == "load":
        return sum(t["extracted"] for t in result["tables"].values())
    return sum(t["rows"] for t in result["tables"].values())


def duckdb_read_seconds(landing: Path, source: str) -> tuple[float, int]:
    """DuckDB alone reading the source's landed day into Arrow."""
    import duckdb

    started = time.perf_counter()
    rows = 0
    con = duckdb.connect()
    for path in sorted((landing / f"source={source}").glob(f"table=*/ds={DAY}/*.parquet")):
        rows += con.sql(f"select * from read_parquet('{path}')").fetch_arrow_table().num_rows
    con.close()
    return time.perf_counter() - started, rows


def bench_scale(scale: float) -> list[StageResult]:
    """Simulate DAY at `scale` in a scratch directory and ingest it stage by stage."""
    from yilian_sim.config import SimulationConfig
    from yilian_sim.run import simulate_days
    from yilian_sim.sources.imaging_api import ImagingServer

    from yilian.dev import sim_layout
    from yilian.dev.main_job import imaging_connection
    from yilian.settings import paths

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
            for source in SOURCES:
                arg: Any = None
                for stage in STAGES:
                    arg, seconds, peak = _run_stage(stage, source, arg)
                    results.append(StageResult(source, stage, seconds, _rows(stage, arg), peak))
                seconds, rows = duckdb_read_seconds(paths().landing_dir, source)
                results.append(StageResult(source, "duckdb_read_parquet", seconds, rows, 0.0))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return results


def report(scale: float, results: list[StageResult]) -> None:
    print(f"\nscale {scale}")
    print(f"{'source':<14}{'stage':<24}{'rows':>9}{'seconds':>9}{'rows/s':>11}{'peak MB':>9}")
    for r in results:
        rate = r.rows / r.seconds if r.seconds else float("inf")
        peak = f"{r.peak_mb:9.0f}" if r.peak_mb else f"{'':>9}"
        print(f"{r.source:<14}{r.stage:<24}{r.rows:>9}{r.seconds:>9.2f}{rate:>11,.0f}{peak}")


def run_benchmark(scales: tuple[float, ...] = (1.0, 10.0)) -> None:
    for scale in scales:
        report(scale, bench_scale(scale))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    run_benchmark(tuple(parser.parse_args().scales))


if __name__ == "__main__":
    main()
