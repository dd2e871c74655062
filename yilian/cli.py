"""`yilian`: the project's command line, one function per sub-command.

Imports stay inside the sub-commands so `yilian --help` (and any other sub-command) does not pay
for the simulator, SQLAlchemy or pandas.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

DEFAULT_TOKEN_ENV = "YILIAN_IMAGING_TOKEN"
DEFAULT_IMAGING_PORT = 8770


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return int(text)


def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"scale must be a number in (0, 100]: {text!r}")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port (0-65535): {text!r}")
    return int(text)


def _fault(text: str) -> tuple[str, list[str]]:
    """`NAME[:DAY][:key=value]...`, checked once the start day is known (see _fault_specs)."""
    from yilian.simulator.faults import FAULTS

    name, *rest = text.split(":")
    if name not in FAULTS:
        raise argparse.ArgumentTypeError(
            f"unknown fault {name!r} (see `yilian faults`): {', '.join(FAULTS)}"
        )
    return name, rest


def _fault_specs(faults: Sequence[tuple[str, list[str]]], start: date, days: int) -> tuple:
    """FaultSpecs from `--fault` values: DAY is a date or the 1-based number of a simulated day;
    options rate=, count=, column= size the fault. Exits 2 naming the bad value."""
    from dataclasses import replace

    from yilian.simulator.config import FaultSpec
    from yilian.simulator.faults import check_spec

    last = start + timedelta(days=days - 1)
    specs = []
    for name, parts in faults:
        spec = FaultSpec(name)
        try:
            for part in parts:
                key, eq, value = part.partition("=")
                if not eq:
                    day = start + timedelta(int(part) - 1) if part.isdigit() else _day(part)
                    if not start <= day <= last:
                        raise ValueError(f"day {part} is not one of the days {start}..{last}")
                    spec = replace(spec, day=day)
                elif key in ("rate", "count", "column"):
                    cast = {"rate": float, "count": int, "column": str}[key]
                    spec = replace(spec, **{key: cast(value)})
                else:
                    raise ValueError(f"unknown option {key!r} (rate, count or column)")
            check_spec(spec)
        except (ValueError, argparse.ArgumentTypeError) as error:
            raise SystemExit(_usage_error(f"--fault {':'.join([name, *parts])}: {error}")) from None
        specs.append(spec)
    return tuple(specs)


def _usage_error(message: str) -> int:
    print(f"yilian: error: {message}", file=sys.stderr)
    return 2


def _config(args: argparse.Namespace, faults: tuple = ()) -> Any:
    from yilian.simulator.config import SimulationConfig

    defaults = SimulationConfig()
    return SimulationConfig(
        seed=defaults.seed if args.seed is None else args.seed,
        scale=args.scale,
        start=args.start or defaults.start,
        faults=faults,
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    """Write N simulated days into the hospital DB, the imaging store and the drop folder."""
    import shutil

    from yilian.settings import paths
    from yilian.simulator.config import SimulationConfig
    from yilian.simulator.run import simulate_days, source_counts

    start = args.start or SimulationConfig().start
    config = _config(args, _fault_specs(args.fault, start, args.days))
    where = paths()
    if args.reset:
        shutil.rmtree(where.sim_dir, ignore_errors=True)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    result = simulate_days(config, args.days, where, db_url=args.db_url, progress=progress)
    print(f"sources in {where.sim_dir} (clock {result.clock}):")
    for source, counts in source_counts(where, args.db_url).items():
        for table, n in counts.items():
            print(f"  {source:<14}{table:<26}{n:>12,}")
    if result.faults.hits:
        print(f"faults applied (ids in {where.sim_dir / 'faults'}):")
    for hit in result.faults.hits:
        if hit.table == "requests":
            touched = f"next {hit.detail['count']} requests"
        elif hit.fault == "renamed_column":
            touched = f"{hit.detail['column']} -> {hit.detail['renamed_to']}"
        else:
            touched = f"{len(hit.keys):,} records" + ("" if hit.keys else " (none eligible)")
        print(f"  {hit.day} {hit.fault:<24}{hit.source}.{hit.table}: {touched}")
    return 0


def cmd_serve_imaging(args: argparse.Namespace) -> int:
    """Serve the imaging store as the FHIR API until interrupted."""
    from yilian.settings import paths
    from yilian.simulator.sources.imaging_api import ImagingServer

    token = os.environ.get(args.token_env, "")
    if not token:
        return _usage_error(
            f"no bearer token: set the environment variable {args.token_env} "
            "(the imaging API never runs without one)"
        )
    try:
        server = ImagingServer(paths().imaging_store, token, args.host, args.port, quiet=False)
    except OSError as error:
        print(f"yilian: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    print(f"imaging API at {server.base_url} (token from ${args.token_env})", file=sys.stderr)
    sys.stderr.flush()
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


def cmd_truth(args: argparse.Namespace) -> int:
    """Print the region's true indicators: headline figures, then each KPI table by county and
    day (aggregates only, no personal data)."""
    import dataclasses

    import pandas as pd

    from yilian.simulator.run import as_days
    from yilian.simulator.truth import compute_truth, summary

    config = _config(args)
    truth = compute_truth(config, as_days(config, args.days))
    for name, value in summary(truth).items():
        print(f"{name:<28}{value:>10.4f}")
    with pd.option_context("display.max_rows", None, "display.width", 200):
        for field in dataclasses.fields(truth):
            frame = getattr(truth, field.name)
            print(f"\n== {field.name} ({len(frame)} rows)")
            print(frame.to_string(index=False))
    return 0


def cmd_faults(args: argparse.Namespace) -> int:
    """List the fault switches and what each does."""
    import textwrap

    from yilian.simulator.faults import FAULTS

    for switch in FAULTS.values():
        print(f"{switch.name}  [{', '.join(switch.sources)}; sized by {switch.uses}]")
        print(
            textwrap.fill(switch.description, 96, initial_indent="    ", subsequent_indent="    ")
        )
        print()
    return 0


def cmd_bench_simulator(args: argparse.Namespace) -> int:
    """Time the simulator generating one day at each scale (yilian.simulator.bench)."""
    from yilian.simulator.bench import run_benchmark

    run_benchmark(tuple(args.scales))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The main job: simulate the region for some days, run every DAG through Airflow in order,
    then print a KPI summary per county and write the run report."""
    from yilian.pipeline import run_main_job
    from yilian.simulator.config import SimulationConfig

    start = args.start or SimulationConfig().start
    config = _config(args, _fault_specs(args.fault, start, args.days))
    return run_main_job(config, args.days)


def cmd_ui(args: argparse.Namespace) -> int:
    """Open the Airflow UI (`airflow standalone`) on the project's DAGs, with the imaging API
    of the simulated region served beside it."""
    from yilian.pipeline import run_ui

    return run_ui(args.port)


def cmd_build(args: argparse.Namespace) -> int:
    """Run `dbt build` on the warehouse by hand: some business days, or a full refresh."""
    from yilian.marts_dag import population_scale
    from yilian.warehouse import DbtError, build

    try:
        result = build(
            args.day or None, full_refresh=args.full_refresh, population_scale=population_scale()
        )
    except DbtError as error:
        print(f"yilian: {error}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Every benchmark: simulator, ingestion per stage (beside DuckDB alone), nightly dbt build."""
    from yilian.bench import run_all

    run_all(tuple(args.scales), history_days=args.history_days)
    return 0


def _add_region_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=_positive_int, required=True, help="days to simulate")
    parser.add_argument("--start", type=_day, help="first day, YYYY-MM-DD (default 2026-11-01)")
    parser.add_argument("--scale", type=_scale, default=1.0, help="population scale (1.0)")
    parser.add_argument("--seed", type=int, help="random seed (default: the config's)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yilian", description="Regional health data warehouse: pipeline and simulator."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=func.__doc__, description=func.__doc__)
        command.set_defaults(func=func)
        return command

    simulate = add("simulate", cmd_simulate)
    _add_region_options(simulate)
    simulate.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="NAME[:DAY][:key=value]",
        help="switch a fault on (every day, or DAY = date or day number); options "
        "rate=, count=, column=; repeatable; see `yilian faults`",
    )
    simulate.add_argument("--db-url", help="hospital DB SQLAlchemy URL (default: SQLite file)")
    simulate.add_argument(
        "--reset", action="store_true", help="delete the simulated sources before writing"
    )

    serve = add("serve-imaging", cmd_serve_imaging)
    serve.add_argument("--port", type=_port, default=DEFAULT_IMAGING_PORT, help="0: any free")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (loopback)")
    serve.add_argument(
        "--token-env",
        default=DEFAULT_TOKEN_ENV,
        metavar="VAR",
        help=f"environment variable holding the bearer token ({DEFAULT_TOKEN_ENV})",
    )

    truth = add("truth", cmd_truth)
    _add_region_options(truth)

    add("faults", cmd_faults)

    bench = add("bench-simulator", cmd_bench_simulator)
    bench.add_argument(
        "scales", nargs="*", type=_scale, default=[1.0, 10.0], help="scales to time (1 10)"
    )
    run = add("run", cmd_run)
    run.add_argument("--days", type=_positive_int, default=7, help="days to simulate (7)")
    run.add_argument("--start", type=_day, help="first day, YYYY-MM-DD (default 2026-11-01)")
    run.add_argument("--scale", type=_scale, default=0.2, help="population scale (0.2)")
    run.add_argument("--seed", type=int, help="random seed (default: the config's)")
    run.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="NAME[:DAY][:key=value]",
        help="switch a fault on, as for `yilian simulate`; repeatable",
    )

    ui = add("ui", cmd_ui)
    ui.add_argument("--port", type=_port, default=8080, help="web server port (8080)")

    build = add("build", cmd_build)
    build.add_argument(
        "--day", type=_day, action="append", default=[], help="business day to rebuild; repeatable"
    )
    build.add_argument(
        "--full-refresh", action="store_true", help="rebuild every model from all of raw"
    )

    bench_all = add("bench", cmd_bench)
    bench_all.add_argument(
        "scales", nargs="*", type=_scale, default=[1.0, 10.0], help="scales to measure (1 10)"
    )
    bench_all.add_argument(
        "--history-days",
        type=_positive_int,
        default=30,
        help="days of history before the night compared with night 2 (30)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
