"""Every benchmark in one run: `yilian bench` / `make bench` / `python -m yilian.dev.bench`.

Named parts, each runnable alone (`yilian bench night --scales 1`):

- `simulator` — one day generated per scale;
- `ingest` — ingestion stage by stage, each beside its floor (yilian.dev.ingest_bench, P1);
- `night` — one night through the real scheduler, all four DAGs (yilian.dev.night_bench, P2,
  and every DAG file's parse time, P4);
- `dbt` — the nightly incremental `dbt build` beside DuckDB alone reading the raw rows;
- `history` — the night after a year of history beside the night after one day (P3): the
  same night 2 is run twice, once on one day of history and once after the raw partitions of
  the days before day 1 were bulk-written from day 1's rows (shifted back a day at a time, ids
  with them: what the generator would give, in seconds instead of hours) and built a month at
  a time.

Everything runs in a temporary YILIAN_DATA_DIR with a fresh pseudonym key and imaging token, so
the user's data/ and secrets are never touched. Figures only: timings vary by machine and by
what else it runs (the load average is printed beside them), so nothing here asserts on them.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import secrets
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from yilian.dev import sim_layout
from yilian.dev.ingest_bench import child_result, peak_rss_mib
from yilian.dev.main_job import imaging_connection
from yilian.settings import paths, scoped_environ
from yilian.sources import SOURCES

CONNECTION_VARS = ("AIRFLOW_CONN_YILIAN_HOSPITAL", "AIRFLOW_CONN_YILIAN_PRESCRIPTIONS_DROP")


@contextmanager
def scratch(root: Path) -> Iterator[None]:
    """Data, Airflow home, secrets and source connections of a throw-away installation."""
    from yilian.airflow_env import airflow_env

    installation = {
        "YILIAN_DATA_DIR": str(root / "data"),
        "AIRFLOW_HOME": str(root / "airflow"),
        "YILIAN_PSEUDONYM_KEY": secrets.token_hex(32),
        "YILIAN_IMAGING_TOKEN": secrets.token_urlsafe(24),
        "AIRFLOW_CONN_YILIAN_IMAGING": None,  # set per region, to its own server
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",  # keep the figures readable
        **dict.fromkeys(CONNECTION_VARS),  # the simulator's defaults, never a real system
    }
    with scoped_environ(installation), scoped_environ(airflow_env()):
        yield


# --- a simulated region ingested night by night (dbt, history) ---------------------------------


@dataclass(frozen=True)
class DbtRun:
    """One `dbt build`, run in its own process so its peak RSS is dbt's alone."""

    seconds: float
    node_seconds: float
    peak_mib: float
    summary: str
    success: bool
    #: seconds per dbt node (unique_id), for the profile of where a night's time goes
    node_times: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DuckDBFloor:
    """DuckDB alone reading raw tables into Arrow: what no dbt run can beat."""

    night_rows: int
    night_seconds: float
    all_rows: int
    all_seconds: float


@dataclass
class Night:
    day: date
    ingest_seconds: float
    build: DbtRun
    floor: DuckDBFloor


@dataclass
class Region:
    """A simulated region in a scratch directory, its imaging API served for the block."""

    scale: float
    root: Path
    simulated: list[date] = field(default_factory=list)

    @property
    def config(self) -> Any:
        from yilian_sim.config import SimulationConfig

        return SimulationConfig(scale=self.scale)

    def day(self, number: int) -> date:
        """The business day `number` (1-based) of the simulation."""
        return self.config.start + timedelta(days=number - 1)

    def simulate(self, last: int) -> float:
        """Write the days up to day `last` not written yet; returns seconds."""
        from yilian_sim.run import simulate_days

        first = len(self.simulated) + 1
        days = [self.day(n) for n in range(first, last + 1)]
        started = time.perf_counter()
        simulate_days(self.config, days, sim_layout())
        self.simulated += days
        return time.perf_counter() - started

    def ingest(self, day: date) -> float:
        """extract → pseudonymise_and_land → validate → load for every source; returns seconds."""
        from yilian.steps import ingest

        started = time.perf_counter()
        for source in SOURCES:
            ingest.run_day(source, day, f"bench_{day}")
        return time.perf_counter() - started

    def build(self, day: date | list[date] | None = None) -> DbtRun:
        """Full build (day None) or the incremental build of `day` (or days), in a child
        process."""
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        target = str(self.root / "dbt_target")  # keeps dbt_project/target out of the bench
        child = ctx.Process(target=_dbt_child, args=(day, target, queue))
        child.start()
        return child_result(child, queue, f"dbt build of {day or 'everything'}")

    def night(self, number: int) -> Night:
        """Ingest day `number`, then time its incremental build and DuckDB's floor."""
        day = self.day(number)
        ingest_seconds = self.ingest(day)
        return Night(day, ingest_seconds, self.build(day), duckdb_floor(day))


@contextmanager
def region(scale: float) -> Iterator[Region]:
    """A scratch installation with the region's imaging API served on a free port."""
    from yilian_sim.sources.imaging_api import serve_imaging

    with (
        tempfile.TemporaryDirectory(prefix=f"yilian-bench-{scale:g}-") as tmp,
        scratch(Path(tmp)),
        serve_imaging(sim_layout(), token=os.environ["YILIAN_IMAGING_TOKEN"]) as base_url,
        scoped_environ({"AIRFLOW_CONN_YILIAN_IMAGING": imaging_connection(base_url)}),
    ):
        yield Region(scale, Path(tmp))


def _dbt_child(day: date | list[date] | None, target: str, out: Any) -> None:
    """Child process: import dbt before the clock starts (a fixed cost), then build quietly
    (errors still print)."""
    import dbt.cli.main  # noqa: F401

    os.environ["DBT_QUIET"] = "True"

    from yilian.warehouse.dbt import build

    started = time.perf_counter()
    result = build(
        ds=day,
        full_refresh=day is None,
        target_path=target,
        raise_on_failure=False,
    )
    seconds = time.perf_counter() - started
    peak_mib = peak_rss_mib()
    failures = "; ".join(f"{n.unique_id}: {n.message}" for n in result.failures[:3])
    summary = result.summary() + (f" FAILED: {failures or result.exception}" if failures else "")
    node_times = {n.unique_id: n.execution_time for n in result.nodes}
    out.put(
        DbtRun(seconds, sum(node_times.values()), peak_mib, summary, result.success, node_times)
    )


def duckdb_floor(day: date) -> DuckDBFloor:
    """Read the night's raw partition, then every raw row, into Arrow with DuckDB alone."""
    import duckdb

    with duckdb.connect(str(paths().warehouse), read_only=True) as con:
        tables = [
            name
            for (name,) in con.sql(
                "select table_name from information_schema.tables where table_schema = 'raw'"
            ).fetchall()
        ]

        def scan(where: str) -> tuple[int, float]:
            started = time.perf_counter()
            rows = sum(
                con.sql(f'select * from raw."{t}" {where}').to_arrow_table().num_rows
                for t in tables
            )
            return rows, time.perf_counter() - started

        night_rows, night_seconds = scan(f"where ds = date '{day.isoformat()}'")
        all_rows, all_seconds = scan("")
    return DuckDBFloor(night_rows, night_seconds, all_rows, all_seconds)


def _print_build(label: str, run: DbtRun) -> None:
    status = "" if run.success else "  (FAILED)"
    print(
        f"  {label:<36}{run.seconds:>8.1f} s  (dbt nodes {run.node_seconds:6.1f} s)  "
        f"peak RSS {run.peak_mib:6.0f} MiB{status}"
    )
    if not run.success:
        print(f"    {run.summary}")


def _print_floor(floor: DuckDBFloor) -> None:
    print(
        f"  {'DuckDB floor: night partition':<36}{floor.night_seconds:>8.2f} s  "
        f"({floor.night_rows:,} raw rows)"
    )
    print(
        f"  {'DuckDB floor: every raw row':<36}{floor.all_seconds:>8.2f} s  "
        f"({floor.all_rows:,} raw rows)"
    )


def nightly(r: Region) -> Night:
    """Day 1 ingested and fully built, then night 2 timed."""
    print(f"\n[dbt] nightly dbt build, scale {r.scale:g}")
    print(f"  {'simulate days 1-2':<36}{r.simulate(2):>8.1f} s")
    print(f"  {'ingest day 1 (3 sources)':<36}{r.ingest(r.day(1)):>8.1f} s")
    _print_build("full build after day 1", r.build())
    night = r.night(2)
    print(f"  {'ingest day 2 (3 sources)':<36}{night.ingest_seconds:>8.1f} s")
    _print_build(f"nightly incremental build, {night.day}", night.build)
    _print_floor(night.floor)
    return night


def bulk_history(day1: date, shifts: Sequence[int]) -> int:
    """Raw partitions (and their audit rows) for the days `day1 - k`, k in `shifts`, from
    day 1's: events shifted back k days with their ids too (`_shifted_id`); the masters (tables
    without freshness: alliances, facilities, populations) repeated as they are, as a
    snapshot is. Written a day after another, oldest first, as nights append them (the
    `ds` filters of loads and staging prune by it). Returns the raw rows written."""
    from yilian.sources import all_tables
    from yilian.warehouse import raw

    written = 0
    shifted = "(select unnest(?::integer[]) as k) t"
    with raw.connect(paths().warehouse) as con:
        for spec in all_tables():
            exprs = []
            for c in spec.columns:
                if not spec.freshness:
                    exprs.append(c.name)
                elif c.type == "timestamp":
                    exprs.append(f"{c.name} - to_days(k)")
                elif c.type == "date":
                    exprs.append(f"{c.name} - k")
                elif c.type == "string" and (c.name.endswith("_id") or c.name in spec.key):
                    exprs.append(_shifted_id(c.name))
                else:
                    exprs.append(c.name)
            (n,) = con.execute(
                f"insert into raw.{spec.raw_name} by position select {', '.join(exprs)}, "
                f"ds - k from raw.{spec.raw_name}, {shifted} where ds = ? order by k desc",
                [list(shifts), day1],
            ).fetchone()
            written += n
        con.execute(
            "insert into audit.load_runs select a.* replace (a.ds - k as ds) "
            f"from audit.load_runs a, {shifted} where a.ds = ?",
            [list(shifts), day1],
        )
    return written


def _shifted_id(column: str) -> str:
    """SQL for `column`'s id k days earlier: the generator's ids carry their day (E20261101…),
    so the day in it moves back k days, as the generator would have numbered it; an id without
    a day gets the suffix `~k`."""
    day = f"regexp_extract({column}, '\\d{{8}}')"
    earlier = f"strftime(strptime({day}, '%Y%m%d') - to_days(k), '%Y%m%d')"
    return (
        f"case when {day} <> '' then regexp_replace({column}, '\\d{{8}}', {earlier}) "
        f"else {column} || '~' || k end"
    )


def forget_day(day: date) -> None:
    """Take `day` out of raw, quarantine and the load audit, as if it had never been loaded."""
    from yilian.sources import all_tables
    from yilian.warehouse import raw

    with raw.connect(paths().warehouse) as con:
        for spec in all_tables():
            con.execute(f"delete from raw.{spec.raw_name} where ds = ?", [day])
        con.execute("delete from quarantine.rejected_rows where ds = ?", [day])
        con.execute("delete from audit.load_runs where ds = ?", [day])


#: Days of history built per `dbt build`: one full build of a year at scale 10 would need far
#: more memory than the night itself (120 days peaked at 7.8 GB), a month at a time does not.
HISTORY_CHUNK_DAYS = 30


def history(r: Region, days: int, night2: Night) -> Night:
    """(P3) `days` days of history under night 2, then night 2 again beside its first run.

    Continues the region of `nightly`, whose warehouse holds days 1-2 built. Day 2 is taken out
    again, the history goes before day 1, a month at a time, oldest first: the first month and
    day 1 built in full, each later month by the incremental build of its days (a catch-up run,
    which gives what a full build gives: tests/e2e). Then day 2 is ingested and built again: the
    same night, after a year.
    """
    print(f"\n[history] the night after {days} days of history, scale {r.scale:g}")
    forget_day(r.day(2))
    shifts = list(range(days - 1, 0, -1))  # day 1 - k, oldest first
    chunks = [shifts[i : i + HISTORY_CHUNK_DAYS] for i in range(0, len(shifts), HISTORY_CHUNK_DAYS)]
    rows, bulk_seconds, builds = 0, 0.0, []
    for n, chunk in enumerate(chunks):
        started = time.perf_counter()
        rows += bulk_history(r.day(1), chunk)
        bulk_seconds += time.perf_counter() - started
        builds.append(r.build(None if n == 0 else [r.day(1) - timedelta(days=k) for k in chunk]))
    print(f"  {f'bulk raw history ({rows:,} rows)':<36}{bulk_seconds:>8.1f} s")
    _print_build(
        f"history built ({len(builds)} × dbt build)",
        DbtRun(
            seconds=sum(b.seconds for b in builds),
            node_seconds=sum(b.node_seconds for b in builds),
            peak_mib=max((b.peak_mib for b in builds), default=0.0),
            summary="; ".join(b.summary for b in builds if not b.success),
            success=all(b.success for b in builds),
        ),
    )
    night = r.night(2)
    print(f"  {'ingest day 2 again (3 sources)':<36}{night.ingest_seconds:>8.1f} s")
    _print_build(f"nightly incremental build, {night.day}", night.build)
    _print_floor(night.floor)
    before = night2.ingest_seconds + night2.build.seconds
    after = night.ingest_seconds + night.build.seconds
    print(f"  {'':<36}{'after 1 day':>14}{f'after {days} days':>16}{'ratio':>8}")
    for label, one, year in (
        ("ingest day 2 (3 sources)", night2.ingest_seconds, night.ingest_seconds),
        ("incremental dbt build", night2.build.seconds, night.build.seconds),
        ("the night", before, after),
    ):
        print(f"  {label:<36}{one:>12.1f} s{year:>14.1f} s{year / one:>8.2f}")
    _print_profile(night2.build, night.build, days)
    return night


def _node_kind(unique_id: str) -> str:
    """`model staging`, `test fct`, `seed`…: a node's resource type and its model's layer."""
    resource, _, name = unique_id.split(".", 2)
    layer = next((p for p in ("stg", "int", "fct", "dim", "mart") if f"{p}_" in name), "other")
    return resource if resource == "seed" else f"{resource} {layer}"


#: Nodes listed one by one in the profile: those whose time grew the most.
PROFILE_TOP_NODES = 12


def _print_profile(one: DbtRun, year: DbtRun, days: int) -> None:
    """dbt node seconds of the two nights by kind, then the nodes that grew the most: where a
    longer history costs the night."""
    print(f"  {'dbt node seconds by kind':<36}{'after 1 day':>14}{f'after {days} days':>16}")
    kinds = sorted({_node_kind(n) for n in (*one.node_times, *year.node_times)})
    for kind in kinds:
        a, b = (
            sum(t for n, t in r.node_times.items() if _node_kind(n) == kind) for r in (one, year)
        )
        print(f"    {kind:<34}{a:>12.1f} s{b:>14.1f} s")
    grown = sorted(year.node_times, key=lambda n: one.node_times.get(n, 0.0) - year.node_times[n])[
        :PROFILE_TOP_NODES
    ]
    print(f"  {'the nodes that grew the most':<36}")
    for node in grown:
        name, before = node.split(".", 2)[2], one.node_times.get(node, 0.0)
        print(f"    {name[:58]:<58}{before:>6.2f} s{year.node_times[node]:>8.2f} s")


# --- the one command ----------------------------------------------------------------------------


def simulator_section(scales: tuple[float, ...]) -> None:
    from yilian_sim.bench import run_benchmark

    print("\n[simulator] one day generated per scale")
    run_benchmark(scales)


def ingestion_section(scales: tuple[float, ...]) -> None:
    """The ingestion benchmark (yilian.dev.ingest_bench), in a scratch installation of its own."""
    print("\n[ingest] one day per scale, stage by stage, each beside its floor")
    from yilian.dev.ingest_bench import run_benchmark

    with tempfile.TemporaryDirectory(prefix="yilian-bench-ingest-") as tmp, scratch(Path(tmp)):
        # It makes its scratch directories with mkdtemp and keeps them; put them inside ours.
        saved, tempfile.tempdir = tempfile.tempdir, tmp
        try:
            with scoped_environ({"AIRFLOW_CONN_YILIAN_IMAGING": None}):
                run_benchmark(scales)
        finally:
            tempfile.tempdir = saved


PARTS = ("simulator", "ingest", "night", "dbt", "history")
DEFAULT_SCALES = (1.0, 10.0, 50.0)
HISTORY_SCALE = 10.0
HISTORY_DAYS = 365


def run_all(
    parts: tuple[str, ...] = PARTS,
    scales: tuple[float, ...] = DEFAULT_SCALES,
    history_scale: float = HISTORY_SCALE,
    history_days: int = HISTORY_DAYS,
) -> None:
    """Print the named parts, in the order of PARTS, with the machine's load around them."""
    from yilian.dev.night_bench import run_nights

    started = time.perf_counter()
    print(f"yilian bench {' '.join(parts)}; load average {_load()}; {os.cpu_count()} cores")
    if "simulator" in parts:
        simulator_section(scales)
    if "ingest" in parts:
        ingestion_section(scales)
    if "night" in parts:
        run_nights(scales)
    if "dbt" in parts:
        for scale in scales:
            with region(scale) as r:
                nightly(r)
    if "history" in parts:
        with region(history_scale) as r:
            history(r, history_days, nightly(r))
    print(f"\nbench finished in {time.perf_counter() - started:.0f} s; load average {_load()}")


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", choices=PARTS, default=list(PARTS))
    parser.add_argument("--scales", type=float, nargs="+", default=list(DEFAULT_SCALES))
    parser.add_argument("--history-scale", type=float, default=HISTORY_SCALE)
    parser.add_argument("--history-days", type=int, default=HISTORY_DAYS)
    args = parser.parse_args()
    run_all(tuple(args.parts), tuple(args.scales), args.history_scale, args.history_days)


if __name__ == "__main__":
    main()
