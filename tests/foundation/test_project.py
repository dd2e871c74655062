"""The project's promises to a newcomer: two commands, CI running the README's test command,
a valid scale-out compose file, and a marts DAG wired to the three source Assets."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Two commands.*?```bash\n(.*?)```", readme, re.S)
    assert block, "README has no 'Two commands' bash block"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands == ["make run", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)
    makefile = (ROOT / "Makefile").read_text()
    for target in ("run:", "test:", "ui:", "bench:"):
        assert re.search(rf"^{target}", makefile, re.M), target


def test_compose_file_is_valid_and_keeps_secrets_out() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"airflow-db", "redis", "hospital-db", "imaging-cloud", "airflow-scheduler"} <= set(
        services
    )
    assert services["imaging-cloud"]["command"][:2] == ["yilian-sim", "serve-imaging"]
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in re.findall(r"PASSWORD: (\S+)", text):
        assert secret.startswith("${"), f"literal secret in docker-compose.yml: {secret}"


@pytest.mark.parametrize(
    ("module", "commands"),
    [
        ("yilian.cli", ("run", "ui", "build", "bench")),
        ("yilian_sim.cli", ("simulate", "serve-imaging", "truth", "faults", "bench")),
    ],
)
def test_cli_lists_the_main_commands(module: str, commands: tuple[str, ...]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in commands:
        assert re.search(rf"\b{command}\b", out), command


def test_marts_dag_waits_for_all_three_sources_and_publishes_after_dbt() -> None:
    from airflow.dag_processing.dagbag import DagBag

    from yilian.warehouse.dbt import run_dbt

    run_dbt(["parse"])  # the DAG renders from the manifest, as in production
    bag = DagBag(dag_folder=str(ROOT / "dags" / "yilian_marts.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["yilian_marts"]
    assets = {asset.uri for asset in dag.timetable.asset_condition.objects}
    assert assets == {f"yilian://raw/{s}" for s in ("hospital", "imaging", "prescriptions")}
    ids = set(dag.task_dict)
    assert {"plan_days", "dbt.dbt_producer_watcher", "publish", "docs"} <= ids
    for mart in (
        "mart_referrals_daily",
        "mart_remote_diagnosis_daily",
        "mart_interoperability_daily",
        "mart_alliance_kpis_monthly",
    ):
        assert f"dbt.{mart}.run" in ids, mart
    publish = dag.get_task("publish")
    assert "dbt.dbt_producer_watcher" in publish.get_flat_relative_ids(upstream=True)
