"""The three ingestion DAGs: they import fast and clean, and their shape is the documented one."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
SOURCES = ("hospital", "imaging", "prescriptions")
HEAVY = ("pandas", "great_expectations", "duckdb", "requests", "pyarrow", "stdnum")


def test_dag_files_import_fast_without_heavy_modules_network_or_database() -> None:
    """Import in a fresh interpreter with sockets and SQLAlchemy engines forbidden.

    Airflow itself (imported first, as the DAG processor has it) opens its metadata engine;
    what is forbidden is our DAG files and the yilian modules they import doing so.
    """
    script = textwrap.dedent(f"""
        import importlib.util, socket, sys, time
        import airflow.sdk, sqlalchemy
        def forbidden(*a, **k):
            raise RuntimeError("network or database touched at DAG import")
        socket.socket.connect = forbidden
        sqlalchemy.create_engine = forbidden
        started = time.monotonic()
        for name in {[f"yilian_{s}" for s in SOURCES]!r}:
            spec = importlib.util.spec_from_file_location(name, {str(DAGS)!r} + f"/{{name}}.py")
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
        print("SECONDS", round(time.monotonic() - started, 2))
        print("HEAVY", ",".join(m for m in {HEAVY!r} if m in sys.modules))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = dict(
        (line + " ").split(" ", 1)
        for line in done.stdout.splitlines()
        if line.startswith(("SECONDS", "HEAVY"))
    )
    assert float(found["SECONDS"]) < 10, f"DAG import took {found['SECONDS']}s"
    assert found["HEAVY"].strip() == "", f"heavy modules imported at DAG import: {found['HEAVY']}"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag) -> None:
    ours = {f"yilian_{s}.py" for s in SOURCES}
    errors = {path: e for path, e in dagbag.import_errors.items() if Path(path).name in ours}
    assert not errors
    assert {f"yilian_{s}" for s in SOURCES} <= set(dagbag.dags)


@pytest.mark.parametrize("source", SOURCES)
def test_structure(dagbag, source: str) -> None:
    from airflow.sdk import CronPartitionTimetable

    dag = dagbag.dags[f"yilian_{source}"]
    steps = ["extract", "pseudonymise_and_land", "validate", "load"]
    expected = (["wait_for_delivery"] if source == "prescriptions" else []) + steps
    sensors = [] if source == "hospital" else ["wait_for_facility_master"]
    assert sorted(dag.task_ids) == sorted(expected + sensors + ["data_docs"])
    for upstream, downstream in zip(expected, expected[1:], strict=False):
        extra = set(sensors) if downstream == "validate" else set()
        assert dag.get_task(downstream).upstream_task_ids == {upstream} | extra
    # Data Docs of a blocked day too, and never in the writers' pool
    docs = dag.get_task("data_docs")
    assert docs.upstream_task_ids == {"validate"} and docs.trigger_rule == "all_done"
    assert docs.pool == "yilian_data_docs"
    assert isinstance(dag.timetable, CronPartitionTimetable)
    assert dag.timetable.expression == "0 0 * * *"
    assert str(dag.timetable.timezone) == "Asia/Shanghai"
    assert dag.timetable.key_format == "%Y-%m-%d" and dag.timetable.run_offset == -1
    assert dag.catchup is False
    assert {"yilian", "ingestion", source} <= set(dag.tags)
    assert dag.doc_md and f"yilian_{source}" in dag.doc_md
    assert "max_bad_row_share" in dag.params
    for task in dag.tasks:
        assert task.owner == "yilian-data"
        assert task.on_failure_callback
    for task_id in ("extract", "validate", "load"):
        task = dag.get_task(task_id)
        assert task.retries == 3 and task.retry_exponential_backoff
        assert task.retry_delay == timedelta(minutes=5)
    assert {dag.get_task(t).pool for t in ("validate", "load")} == {"yilian_duckdb"}
    outlets = dag.get_task("load").outlets
    assert [a.uri for a in outlets] == [f"yilian://raw/{source}"]
    assert all(not t.outlets for t in dag.tasks if t.task_id != "load")


def test_failure_callback_logs_one_actionable_line(caplog: pytest.LogCaptureFixture) -> None:

    from yilian.steps import ingest, on_failure

    class TI:
        dag_id, task_id = "yilian_hospital", "validate"

    context = {
        "ti": TI(),
        "partition_key": "2026-11-03",
        "exception": ingest.DataQualityBlocked("hospital 2026-11-03 BLOCKED: x\nmore"),
    }
    with caplog.at_level("ERROR", logger="yilian.steps"):
        on_failure(context)
    (record,) = caplog.records
    line = record.getMessage()
    assert "dag=yilian_hospital task=validate ds=2026-11-03" in line
    assert "DataQualityBlocked" in line and "\n" not in line
