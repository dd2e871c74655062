"""The harness's sub-commands of `yilian`: the main job, the UI and the benchmarks.

They drive the simulated region, so their arguments (scale, seed, faults) are the simulator's;
everything heavy is imported only when a command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from yilian_sim.cli import add_fault_option, config_from, fault_specs, port_arg, scale_arg

Add = Callable[[str, Callable[[argparse.Namespace], int]], argparse.ArgumentParser]


def cmd_run(args: argparse.Namespace) -> int:
    """The main job: simulate the region for some days, run every DAG through Airflow in order,
    then print a KPI summary per county and write the run report."""
    from yilian_sim.config import SimulationConfig

    from yilian.dev.main_job import run_main_job

    start = args.start or SimulationConfig().start
    config = config_from(args, fault_specs(args.fault, start, args.days))
    return run_main_job(config, args.days)


def cmd_ui(args: argparse.Namespace) -> int:
    """Open the Airflow UI (`airflow standalone`) on the project's DAGs, with the imaging API
    of the simulated region served beside it."""
    from yilian.dev.main_job import run_ui

    return run_ui(args.port)


def cmd_bench(args: argparse.Namespace) -> int:
    """The benchmarks (all, or the named parts): simulator, ingestion per stage beside its
    floor, the night through the real scheduler, the nightly dbt build, a year of history."""
    from yilian.dev.bench import PARTS, run_all

    run_all(tuple(args.parts or PARTS), tuple(args.scales), args.history_scale, args.history_days)
    return 0


def add_commands(add: Add, day: Callable[[str], object], positive: Callable[[str], int]) -> None:
    run = add("run", cmd_run)
    run.add_argument("--days", type=positive, default=3, help="days to simulate (3)")
    run.add_argument("--start", type=day, help="first day, YYYY-MM-DD (default 2026-11-01)")
    run.add_argument("--scale", type=scale_arg, default=0.1, help="population scale (0.1)")
    run.add_argument("--seed", type=int, help="random seed (default: the config's)")
    add_fault_option(run)

    ui = add("ui", cmd_ui)
    ui.add_argument("--port", type=port_arg, default=8080, help="web server port (8080)")

    bench = add("bench", cmd_bench)
    bench.add_argument(
        "parts",
        nargs="*",
        choices=["simulator", "ingest", "night", "dbt", "history"],
        help="parts to run (default: all)",
    )
    bench.add_argument(
        "--scales",
        nargs="+",
        type=scale_arg,
        default=[1.0, 10.0, 50.0],
        help="scales of simulator, ingest, night and dbt (1 10 50)",
    )
    bench.add_argument(
        "--history-scale", type=scale_arg, default=10.0, help="scale of the history part (10)"
    )
    bench.add_argument(
        "--history-days",
        type=positive,
        default=120,
        help="days of history before the night compared with the night after one day (120; "
        "the goal is 365, whose full build at scale 10 needs far more than 8 GB)",
    )
