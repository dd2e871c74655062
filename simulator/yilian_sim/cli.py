"""`yilian-sim`: the simulated region's command line (write days, serve the imaging API, truth).

The simulator is its own package: the pipeline never imports it and reaches it only over the
sources' protocols. Imports stay inside the sub-commands so `yilian-sim --help` is instant.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from yilian_sim.layout import Layout

DEFAULT_TOKEN_ENV = "YILIAN_IMAGING_TOKEN"
DEFAULT_IMAGING_PORT = 8770


def default_sim_dir() -> Path:
    """`$YILIAN_DATA_DIR/sim`, where the pipeline's embedded default connections look."""
    return Path(os.environ.get("YILIAN_DATA_DIR", "data")).resolve() / "sim"


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return int(text)


def scale_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"scale must be a number in (0, 100]: {text!r}")
    return value


def port_arg(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port (0-65535): {text!r}")
    return int(text)


def fault_arg(text: str) -> tuple[str, list[str]]:
    """`NAME[:DAY][:key=value]...`, checked once the start day is known (see fault_specs)."""
    from yilian_sim.faults import FAULTS

    name, *rest = text.split(":")
    if name not in FAULTS:
        raise argparse.ArgumentTypeError(
            f"unknown fault {name!r} (see `yilian-sim faults`): {', '.join(FAULTS)}"
        )
    return name, rest


def fault_specs(faults: Sequence[tuple[str, list[str]]], start: date, days: int) -> tuple:
    """FaultSpecs from `--fault` values: DAY is a date or the 1-based number of a simulated day;
    options rate=, count=, column= size the fault. Exits 2 naming the bad value."""
    from dataclasses import replace

    from yilian_sim.config import FaultSpec
    from yilian_sim.faults import check_spec

    last = start + timedelta(days=days - 1)
    specs = []
    for name, parts in faults:
        spec = FaultSpec(name)
        try:
            for part in parts:
                key, eq, value = part.partition("=")
                if not eq:
                    day = start + timedelta(int(part) - 1) if part.isdigit() else parse_day(part)
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
            raise SystemExit(usage_error(f"--fault {':'.join([name, *parts])}: {error}")) from None
        specs.append(spec)
    return tuple(specs)


def usage_error(message: str) -> int:
    print(f"yilian-sim: error: {message}", file=sys.stderr)
    return 2


def config_from(args: argparse.Namespace, faults: tuple = ()) -> Any:
    from yilian_sim.config import SimulationConfig

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

    from yilian_sim.config import SimulationConfig
    from yilian_sim.run import simulate_days, source_counts

    start = args.start or SimulationConfig().start
    config = config_from(args, fault_specs(args.fault, start, args.days))
    where = Layout(args.sim_dir)
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
    from yilian_sim.sources.imaging_api import ImagingServer

    token = os.environ.get(args.token_env, "")
    if not token:
        return usage_error(
            f"no bearer token: set the environment variable {args.token_env} "
            "(the imaging API never runs without one)"
        )
    try:
        server = ImagingServer(
            Layout(args.sim_dir).imaging_store, token, args.host, args.port, quiet=False
        )
    except OSError as error:
        print(f"yilian-sim: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
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

    from yilian_sim.run import as_days
    from yilian_sim.truth import compute_truth, summary

    config = config_from(args)
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

    from yilian_sim.faults import FAULTS

    for switch in FAULTS.values():
        size = "on or off" if switch.uses == "none" else f"sized by {switch.uses}"
        print(f"{switch.name}  [{', '.join(switch.sources)}; {size}]")
        print(
            textwrap.fill(switch.description, 96, initial_indent="    ", subsequent_indent="    ")
        )
        print()
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Time the simulator generating one day at each scale (yilian_sim.bench)."""
    from yilian_sim.bench import run_benchmark

    run_benchmark(tuple(args.scales))
    return 0


def add_region_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=positive_int, required=True, help="days to simulate")
    parser.add_argument(
        "--start", type=parse_day, help="first day, YYYY-MM-DD (default 2026-11-01)"
    )
    parser.add_argument("--scale", type=scale_arg, default=1.0, help="population scale (1.0)")
    parser.add_argument("--seed", type=int, help="random seed (default: the config's)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yilian-sim",
        description="The simulated region: its hospital DB, imaging cloud and prescription drop.",
    )
    parser.add_argument(
        "--sim-dir",
        type=Path,
        default=None,
        help="where the source systems live (default $YILIAN_DATA_DIR/sim, else data/sim)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=func.__doc__, description=func.__doc__)
        command.set_defaults(func=func)
        return command

    simulate = add("simulate", cmd_simulate)
    add_region_options(simulate)
    add_fault_option(simulate)
    simulate.add_argument("--db-url", help="hospital DB SQLAlchemy URL (default: SQLite file)")
    simulate.add_argument(
        "--reset", action="store_true", help="delete the simulated sources before writing"
    )

    serve = add("serve-imaging", cmd_serve_imaging)
    serve.add_argument("--port", type=port_arg, default=DEFAULT_IMAGING_PORT, help="0: any free")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (loopback)")
    serve.add_argument(
        "--token-env",
        default=DEFAULT_TOKEN_ENV,
        metavar="VAR",
        help=f"environment variable holding the bearer token ({DEFAULT_TOKEN_ENV})",
    )

    truth = add("truth", cmd_truth)
    add_region_options(truth)

    add("faults", cmd_faults)

    bench = add("bench", cmd_bench)
    bench.add_argument(
        "scales", nargs="*", type=scale_arg, default=[1.0, 10.0], help="scales to time (1 10)"
    )
    return parser


def add_fault_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fault",
        type=fault_arg,
        action="append",
        default=[],
        metavar="NAME[:DAY][:key=value]",
        help="switch a fault on (every day, or DAY = date or day number); options "
        "rate=, count=, column=; repeatable; see `yilian-sim faults`",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.sim_dir = args.sim_dir or default_sim_dir()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
