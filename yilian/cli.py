"""`yilian`: the pipeline's command line, one function per sub-command.

`build` runs dbt on the warehouse by hand; `metrics` asks the semantic layer for indicators;
`rekey` rotates the pseudonym key; `contracts` checks (or regenerates) what is generated from the
table definitions. `run`, `ui` and `bench` drive the embedded simulated region (`yilian.dev`);
they are offered only where the simulator is installed (a development checkout), never in a
production image. Imports stay inside the sub-commands so `yilian --help` does not pay for dbt,
SQLAlchemy or pandas.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable, Sequence
from datetime import date


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return int(text)


def cmd_build(args: argparse.Namespace) -> int:
    """Run `dbt build` on the warehouse by hand: some business days, or a full refresh."""
    from yilian.warehouse.dbt import DbtError, build

    try:
        result = build(args.day or None, full_refresh=args.full_refresh)
    except DbtError as error:
        print(f"yilian: {error}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


def cmd_contracts(args: argparse.Namespace) -> int:
    """Check the GX suites' schema blocks, the dbt sources and docs/CONTRACTS.md against the
    table definitions in yilian.sources (exit 1 on drift); --write regenerates them."""
    from yilian import contracts

    if args.write:
        for path in contracts.write():
            print(f"rewrote {path}")
        return 0
    found = contracts.drift()
    for item in found:
        print(f"{item.path}: {item.what}", file=sys.stderr)
    if found:
        print("run `yilian contracts --write` to regenerate them", file=sys.stderr)
    return 1 if found else 0


def cmd_metrics(args: argparse.Namespace) -> int:
    """Indicators from the semantic layer (MetricFlow) on the published marts, at any grain,
    e.g. `yilian metrics in_county_visit_rate --by metric_time__month --by county`."""
    import pandas as pd

    from yilian.warehouse.semantic import IN_REGION, query_metrics

    where = args.where if args.all_counties else [IN_REGION, *args.where]
    result = query_metrics(args.metric, args.by or ["metric_time__day"], where=where)
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(result.to_string(index=False))
    return 0


def cmd_rekey(args: argparse.Namespace) -> int:
    """Rotate the pseudonym key on purpose: re-make every pseudonym in the warehouse with the
    configured key (connection yilian_pseudonym_key or YILIAN_PSEUDONYM_KEY), in one
    transaction, given the old key in an environment variable. Pause the DAGs first."""
    import os

    from yilian.privacy import pseudonym_key
    from yilian.warehouse.rekey import RekeyRefused, rekey

    old = os.environ.get(args.old_key_env, "")
    if not old:
        print(
            f"yilian: set {args.old_key_env} to the old pseudonym key (never on the command "
            "line: it would stay in the shell history)",
            file=sys.stderr,
        )
        return 2
    try:
        done = rekey(old.encode(), pseudonym_key())
    except RekeyRefused as refused:
        print(f"yilian: {refused}", file=sys.stderr)
        return 1
    print(
        f"re-keyed {done.pseudonyms} pseudonyms; rows changed: "
        + ", ".join(f"{table} {n}" for table, n in done.rows.items())
        + f". The warehouse now records key fingerprint {done.fingerprint[:12]}…; "
        "unpause the DAGs (the next marts run re-publishes the BI copy)."
    )
    return 0


def cmd_airflow(args: argparse.Namespace) -> int:
    """Any `airflow` command in this installation's environment (its AIRFLOW_HOME, metadata DB,
    DAG folder, telemetry off), e.g. `yilian airflow dags unpause yilian_hospital`."""
    import os

    from yilian.installation import airflow_bin, ensure_prepared

    ensure_prepared()
    os.execv(airflow_bin(), [airflow_bin(), *args.args])
    return 0  # pragma: no cover - execv does not return


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yilian", description="Regional health data warehouse: the nightly pipeline."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=func.__doc__, description=func.__doc__)
        command.set_defaults(func=func)
        return command

    build = add("build", cmd_build)
    build.add_argument(
        "--day", type=_day, action="append", default=[], help="business day to rebuild; repeatable"
    )
    build.add_argument(
        "--full-refresh", action="store_true", help="rebuild every model from all of raw"
    )
    metrics = add("metrics", cmd_metrics)
    metrics.add_argument("metric", nargs="+", help="metric names (docs/INDICATORS.md)")
    metrics.add_argument(
        "--by",
        action="append",
        default=[],
        help="group by, repeatable: metric_time__day|month|year, county, alliance, "
        "facility_version__tier, modality, referral__direction …",
    )
    metrics.add_argument("--where", action="append", default=[], help="MetricFlow where filter")
    metrics.add_argument(
        "--all-counties",
        action="store_true",
        help="also count what the platform sees outside the region's counties",
    )
    rekey = add("rekey", cmd_rekey)
    rekey.add_argument(
        "--old-key-env",
        default="YILIAN_OLD_PSEUDONYM_KEY",
        help="environment variable holding the old key (default YILIAN_OLD_PSEUDONYM_KEY)",
    )
    passthrough = add("airflow", cmd_airflow)
    passthrough.add_argument("args", nargs=argparse.REMAINDER, help="the airflow command")
    contracts = add("contracts", cmd_contracts)
    contracts.add_argument("--write", action="store_true", help="regenerate what drifted")
    if importlib.util.find_spec("yilian_sim") is not None:
        from yilian.dev.cli import add_commands

        add_commands(add, _day, _positive_int)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
