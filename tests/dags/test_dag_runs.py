"""The DAGs run through Airflow itself (`dag.test`) on simulated days: real SQLite hospital DB,
real HTTP imaging API, real drop files; landing, raw, quarantine and audit are checked, and no
resident ID, name or phone of a simulated patient appears in landing, warehouse, reports or the
task logs. A backfill makes one run per business day."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pendulum
import pytest
from yilian_sim.config import FaultSpec

from tests.conftest import START, Region
from tests.ingestion.warehouse import pii_hits, query, stored_texts
from yilian.settings import paths
from yilian.steps import ingest

pytestmark = pytest.mark.e2e
DAGS = Path(__file__).resolve().parents[2] / "dags"
DAYS = (START, date(2026, 11, 2))


@pytest.fixture(autouse=True)
def info_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Keep yilian's INFO lines (the task logs a scheduler would write) for the PII scan."""
    caplog.set_level(logging.INFO, logger="yilian")


def run_dag(dag_id: str, day: date):
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py")).dags[dag_id]
    return dag.test(
        logical_date=pendulum.datetime(day.year, day.month, day.day, tz="Asia/Shanghai")
    )


@pytest.mark.parametrize("source", ["hospital", "imaging", "prescriptions"])
def test_two_days_through_airflow(
    airflow_db,
    region: Region,
    imaging_api,
    capfd: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
    source: str,
) -> None:
    region.faults = (FaultSpec("invalid_resident_ids", rate=0.03),)
    region.simulate(len(DAYS))
    runs = {}
    for day in DAYS:
        if source != "hospital":
            ingest.run_day("hospital", day, "facility-master")
        runs[day] = run_dag(f"yilian_{source}", day)
        assert runs[day].state == "success"

    for day in DAYS:
        landed = list((paths().landing_dir / f"source={source}").glob(f"table=*/ds={day}/*"))
        assert landed and all(p.name == "part-0.parquet" for p in landed)
        audit = query("select * from audit.load_runs where source = ? and ds = ?", [source, day])
        assert set(audit.run_id) == {runs[day].run_id}
        assert (audit.outcome == "loaded").all()
        assert (audit.rows_extracted == audit.rows_loaded + audit.rows_quarantined).all()
        main = audit.set_index("table_name").rows_loaded
        first = {"hospital": "encounters", "imaging": "studies", "prescriptions": "prescriptions"}[
            source
        ]
        assert main[first] > 0
        raw = query(f"select count(*) n from raw.{source}__{first} where ds = ?", [day]).n[0]
        assert raw == main[first]
    rules = set(query("select rule from quarantine.rejected_rows where source = ?", [source]).rule)
    assert "resident_id_valid" in rules

    logs = capfd.readouterr()
    texts = stored_texts() | {"task output": logs.out + logs.err, "task logs": caplog.text}
    airflow_logs = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    texts |= {str(p): p.read_text(errors="ignore") for p in airflow_logs.rglob("*") if p.is_file()}
    assert f"loaded {source}" in caplog.text  # the scan really saw the task logs
    hits = pii_hits(region.pii(), texts)
    assert not hits, f"personal data found (counts only): {hits}"


def test_a_blocked_day_fails_validate_and_never_loads(
    airflow_db, region: Region, caplog: pytest.LogCaptureFixture
) -> None:
    day = DAYS[1]
    region.faults = (FaultSpec("renamed_column", day=day, column="prescribed_at"),)
    region.simulate(len(DAYS))
    ingest.run_day("hospital", DAYS[0], "facility-master")
    assert run_dag("yilian_prescriptions", DAYS[0]).state == "success"
    run = run_dag("yilian_prescriptions", day)
    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["validate"] == "failed" and states["load"] in ("upstream_failed", None)
    assert not len(query("select * from raw.prescriptions__prescriptions where ds = ?", [day]))
    (line,) = [r.getMessage() for r in caplog.records if "yilian task failed" in r.getMessage()]
    assert line.startswith(
        f"yilian task failed: dag=yilian_prescriptions task=validate ds={day} "
        "error=DataQualityBlocked: "
    )
    assert "schema_columns" in line and "prescribe_time" in line


def test_backfill_makes_one_run_per_business_day(airflow_db) -> None:
    """`--from-date`/`--to-date` name business days, both included (days with no run yet)."""
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run(
        [
            str(airflow),
            "backfill",
            "create",
            "--dag-id",
            "yilian_imaging",
            "--from-date",
            "2026-11-10",
            "--to-date",
            "2026-11-12",
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    logical = re.findall(
        r"^\| (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2})", done.stdout, flags=re.MULTILINE
    )
    days = [pendulum.parse(v).in_timezone("Asia/Shanghai") for v in logical]
    assert [d.isoformat() for d in days] == [f"2026-11-{n}T00:00:00+08:00" for n in (10, 11, 12)], (
        done.stdout[-1500:]
    )
