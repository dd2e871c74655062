"""The project's promises to a newcomer: two commands, CI running the README's test command,
a valid scale-out compose file, and a marts DAG wired to the three source Assets."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# schema/compose-spec.json of github.com/compose-spec/compose-spec, unmodified, at commit
# 170098ba07d9f53c383a41bfd4c5166b0a4529a6 (the file last changed in a08f8d5, 2025-10-28)
COMPOSE_SCHEMA = Path(__file__).with_name("compose-spec.json")
# $$, $VAR, ${VAR} and ${VAR<op>arg} with op one of :- - :? ? :+ + (no nesting); any other $ is
# an invalid template, as for Compose
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<named>[_A-Za-z][_A-Za-z0-9]*)"
    r"|\{(?P<braced>[_A-Za-z][_A-Za-z0-9]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<invalid>))"
)


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


def _substitute(match: re.Match[str], env: dict[str, str]) -> str:
    if match["escaped"]:
        return "$"
    name = match["named"] or match["braced"]
    if name is None:
        raise ValueError(f"invalid interpolation format in {match.string!r}")
    value, op, arg = env.get(name), match["op"], match["arg"]
    if op is None:
        return value or ""
    present = bool(value) if op.startswith(":") else value is not None
    if op.endswith("-"):
        return value if present else arg
    if op.endswith("?"):
        if not present:
            raise ValueError(f"required variable {name} is missing a value: {arg}")
        return value
    return arg if present else ""  # :+ and +


def _interpolate(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {key: _interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate(value, env) for value in node]
    if isinstance(node, str):
        return _VARIABLE.sub(lambda match: _substitute(match, env), node)
    return node


def load_compose(path: Path) -> dict[str, Any]:
    """A compose file as Compose loads it: its values interpolated (every
    variable the file marks required set, the others unset), then validated against the
    Compose Specification schema; raises jsonschema.ValidationError on an invalid file."""
    text = path.read_text()
    required = set(re.findall(r"\$\{([_A-Za-z][_A-Za-z0-9]*):?\?", text))
    compose = _interpolate(yaml.safe_load(text), dict.fromkeys(required, "set"))
    jsonschema.Draft7Validator(json.loads(COMPOSE_SCHEMA.read_text())).validate(compose)
    return compose


def test_compose_interpolation_follows_compose() -> None:
    env = {"SET": "v", "EMPTY": ""}
    cases = {
        "$SET ${SET} $$SET": "v v $SET",
        "${UNSET}|${UNSET:-d}|${EMPTY:-d}|${EMPTY-d}|${SET:-d}": "|d|d||v",
        "${SET:?e}|${EMPTY?e}|${SET:+r}|${EMPTY:+r}|${EMPTY+r}": "v||r||r",
    }
    for template, expected in cases.items():
        assert _interpolate(template, env) == expected, template
    for template in ("${UNSET:?e}", "${EMPTY:?e}", "${UNSET?e}", "${SET", "$ "):
        with pytest.raises(ValueError):
            _interpolate(template, env)


def test_compose_validation_rejects_an_invalid_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  web:\n    image: ${IMAGE:-nginx}\n    comand: [run]\n")
    with pytest.raises(jsonschema.ValidationError, match="comand"):
        load_compose(broken)


def test_compose_file_is_valid_and_keeps_secrets_out() -> None:
    services = load_compose(ROOT / "docker-compose.yml")["services"]
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


def test_marts_dag_is_partitioned_on_the_three_sources_and_publishes_after_dbt() -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import PartitionedAssetTimetable

    from yilian.warehouse.dbt import run_dbt

    run_dbt(["parse"])  # the DAG renders from the manifest, as in production
    bag = DagBag(dag_folder=str(ROOT / "dags" / "yilian_marts.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["yilian_marts"]
    assert isinstance(dag.timetable, PartitionedAssetTimetable)
    assets = {asset.uri for asset in dag.timetable.asset_condition.objects}
    assert assets == {f"yilian://raw/{s}" for s in ("hospital", "imaging", "prescriptions")}
    ids = set(dag.task_dict)
    assert {"plan_days", "dbt.dbt_producer_watcher", "publish", "docs"} <= ids
    producer = dag.get_task("dbt.dbt_producer_watcher")
    watchers = [
        t
        for t in dag.tasks
        if t.task_id.startswith("dbt.") and not t.task_id.startswith("dbt.dbt_producer_watcher")
    ]
    assert watchers and all(
        t.pool == "default_pool" and t.retries == 0 and t.trigger_rule == "all_success"
        for t in watchers
    )
    # each waits for the build alone: chained as the models are, they end a hop at a time
    assert {w.task_id: w.upstream_task_ids for w in watchers} == {
        w.task_id: {producer.task_id} for w in watchers
    }
    assert producer.pool == "yilian_duckdb" and producer.retries == 0
    # each model's task starts and ends in the triggerer, reading its own node's outcome
    for watcher in watchers:
        assert watcher.start_from_trigger, watcher.task_id
        kwargs = watcher.start_trigger_args.trigger_kwargs
        assert kwargs["model_unique_id"] == watcher.model_unique_id
        assert kwargs["producer_task_id"] == producer.task_id
    # one watcher per model, and the build still runs the data tests (nothing limits its types)
    assert not [t for t in ids if t.endswith(".test") or t.endswith("_test")]
    assert "--resource-type" not in (producer.dbt_cmd_flags or [])
    assert producer.dbt_cmd_flags[-2:] == ["--exclude-resource-type", "unit_test"]
    assert type(producer).__name__ == "WatchedNodesProducer"
    # it skips OpenLineage events: nothing here would send them
    assert importlib.util.find_spec("airflow.providers.openlineage") is None
    for mart in (
        "mart_referrals_daily",
        "mart_remote_diagnosis_daily",
        "mart_interoperability_daily",
        "mart_alliance_kpis_monthly",
    ):
        assert f"dbt.{mart}_run" in ids, mart
    publish = dag.get_task("publish")
    # the build's success is every node's: the publish follows it, not its watchers
    assert publish.upstream_task_ids == {"plan_days", "dbt.dbt_producer_watcher"}
