"""The operators' path under the real scheduler: api-server, scheduler and dag-processor as
separate processes, every task in a process of its own (LocalExecutor).

Three business days of all three sources are backfilled with Airflow's own backfill command,
in parallel as Airflow schedules a backfill; each day's marts run starts by itself from the
partitioned Assets. Day 3 of the prescription platform has a renamed column: that day fails in
one task, whose log starts with the reason, and its marts are never built. Then one middle day
of one source is re-run, and exactly that day's marts are rebuilt; an imaging day loaded before
its facility master waits for it; and no resident ID, name or phone reaches any task log.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from pandas.testing import assert_frame_equal
from yilian_sim.config import FaultSpec

from tests.ingestion.warehouse import pii_hits, query, stored_texts
from tests.region import START, Region

pytestmark = pytest.mark.e2e
DAYS = [START + timedelta(days=i) for i in range(3)]
LATE_MASTER_DAY = START + timedelta(days=3)
BLOCKED = DAYS[2]
WAIT = 900


@dataclass
class Installation:
    af: object  # yilian.dev.airflow_services.Airflow
    region: Region
    home: Path

    def runs(self, dag_id: str, day: date) -> list:
        return [r for r in self.af.runs(dag_id) if r.partition_key == day.isoformat()]

    def built(self, day: date) -> list:
        """Marts runs of `day` that built it (their publish ran)."""
        return [
            r
            for r in self.runs("yilian_marts", day)
            if self.af.task_states(r.dag_id, r.run_id).get("publish") == "success"
        ]

    def settled(self) -> bool:
        return all(r.state in ("success", "failed") for r in self.af.runs())


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    """A fresh installation (data dir, Airflow home, secrets) with the three days backfilled."""
    from yilian_sim.sources.imaging_api import serve_imaging

    from yilian.airflow_env import airflow_env
    from yilian.dev import airflow_services, sim_layout
    from yilian.dev.main_job import imaging_connection
    from yilian.installation import prepare_airflow
    from yilian.settings import FIRST_DAY_ENV, LAST_DAY_ENV

    root = tmp_path_factory.mktemp("scheduler")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("YILIAN_DATA_DIR", str(root / "data"))
        env.setenv("AIRFLOW_HOME", str(root / "airflow"))
        for key, value in airflow_env().items():
            env.setenv(key, value)
        env.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(32))
        env.setenv(FIRST_DAY_ENV, START.isoformat())
        env.setenv(LAST_DAY_ENV, LATE_MASTER_DAY.isoformat())
        region = Region(root)
        region.faults = (
            FaultSpec("invalid_resident_ids", rate=0.03),
            FaultSpec("renamed_column", day=BLOCKED, column="prescribed_at"),
        )
        region.simulate([*DAYS, LATE_MASTER_DAY])
        prepare_airflow()
        with serve_imaging(sim_layout(), token=os.environ["YILIAN_IMAGING_TOKEN"]) as url:
            env.setenv("AIRFLOW_CONN_YILIAN_IMAGING", imaging_connection(url))
            with airflow_services.running(root / "airflow" / "services") as af:
                for dag_id in ("yilian_hospital", "yilian_imaging", "yilian_prescriptions"):
                    airflow_services.airflow("dags", "unpause", dag_id)
                airflow_services.airflow("dags", "unpause", "yilian_marts")
                for dag_id in ("yilian_hospital", "yilian_imaging", "yilian_prescriptions"):
                    airflow_services.airflow(
                        "backfill", "create", "--dag-id", dag_id,
                        "--from-date", DAYS[0].isoformat(), "--to-date", DAYS[-1].isoformat(),
                    )  # fmt: skip
                inst = Installation(af, region, root / "airflow")
                af.wait(
                    lambda: inst.settled() and all(inst.built(d) for d in DAYS[:2]),
                    WAIT,
                    "the three-day backfill",
                )
                yield inst


def test_every_day_loads_and_builds_its_marts_by_itself(installation: Installation) -> None:
    inst = installation
    for dag_id in ("yilian_hospital", "yilian_imaging", "yilian_prescriptions"):
        for day in DAYS:
            (run,) = inst.runs(dag_id, day)
            assert run.run_type == "backfill", run
            expected = "failed" if (dag_id, day) == ("yilian_prescriptions", BLOCKED) else "success"
            assert run.state == expected, (dag_id, day, run.state)
    for day in DAYS[:2]:
        assert len(inst.built(day)) == 1, day  # once, when the last feed of the day landed
        assert all(r.run_type == "asset_triggered" for r in inst.runs("yilian_marts", day))
    assert inst.built(BLOCKED) == []  # its prescriptions never loaded
    marts = query("select distinct date from marts.mart_interoperability_daily order by 1")
    assert set(DAYS[:2]) <= {d.date() for d in marts.date}


def test_the_build_reports_watched_nodes_and_logs_every_data_test(
    installation: Installation,
) -> None:
    """The `dbt build` task pushes XComs for the models and seeds a task watches, none for the
    data tests (their lines are in its log) and runs no unit tests (CI's, not the night's)."""
    inst = installation
    run = inst.built(DAYS[0])[0]
    producer = "dbt.dbt_producer_watcher"
    with contextlib.closing(inst.af.db()) as con:
        keys = {
            key
            for (key,) in con.execute(
                "select key from xcom where dag_id = ? and run_id = ? and task_id = ?",
                [run.dag_id, run.run_id, producer],
            )
        }
    assert "model__yilian__fct_encounters_status" in keys
    assert "seed__yilian__ref_icd10_chapters_status" in keys
    assert not [k for k in keys if k.startswith(("test__", "unit_test__"))], sorted(keys)
    log = inst.af.task_log(run.dag_id, run.run_id, producer)
    assert re.search(r"PASS not_null_fct_encounters_\w+", log), log[-3000:]
    assert "START unit_test" not in log


def test_a_blocked_day_is_one_red_task_whose_log_starts_with_the_reason(
    installation: Installation,
) -> None:
    inst = installation
    (run,) = inst.runs("yilian_prescriptions", BLOCKED)
    states = inst.af.task_states(run.dag_id, run.run_id)
    assert [t for t, s in states.items() if s == "failed"] == ["validate"]
    assert states["load"] == "upstream_failed"
    assert inst.af.try_numbers(run.dag_id, run.run_id)["validate"] == 1  # never retried
    log = inst.af.task_log(run.dag_id, run.run_id, "validate")
    reason = next(line for line in log.splitlines() if "BLOCKED" in line)
    assert reason.startswith(f"prescriptions {BLOCKED} BLOCKED: table prescriptions__prescriptions")
    assert "schema_columns" in reason and "prescribe_time" in reason
    assert not query(
        "select * from raw.prescriptions__prescriptions where ds = ?", [BLOCKED]
    ).shape[0]


def test_rerunning_one_middle_day_rebuilds_exactly_that_days_marts(
    installation: Installation,
) -> None:
    from yilian.dev.airflow_services import airflow

    inst = installation
    middle = DAYS[1]
    before = {d: len(inst.runs("yilian_marts", d)) for d in DAYS}
    airflow("dags", "clear", "yilian_hospital", "--partition-key", middle.isoformat(), "--yes")
    inst.af.wait(
        lambda: inst.settled() and len(inst.built(middle)) == 2, WAIT, "the rerun of one day"
    )
    after = {d: len(inst.runs("yilian_marts", d)) for d in DAYS}
    assert after == before | {middle: before[middle] + 1}
    (hospital,) = inst.runs("yilian_hospital", middle)
    assert hospital.state == "success"


def test_a_day_whose_facility_master_arrives_late_waits_for_it(
    installation: Installation,
) -> None:
    from yilian.dev.airflow_services import airflow

    inst, day = installation, LATE_MASTER_DAY

    def backfill(dag_id: str) -> None:
        airflow(
            "backfill", "create", "--dag-id", dag_id,
            "--from-date", day.isoformat(), "--to-date", day.isoformat(),
        )  # fmt: skip

    backfill("yilian_imaging")

    def waiting() -> bool:
        runs = inst.runs("yilian_imaging", day)
        states = inst.af.task_states("yilian_imaging", runs[0].run_id) if runs else {}
        # the wait runs in the triggerer: no worker process, no executor slot
        return states.get("wait_for_facility_master") == "deferred"

    inst.af.wait(waiting, WAIT, "imaging waiting for the facility master")
    assert not query("select * from raw.imaging__studies where ds = ?", [day]).shape[0]
    backfill("yilian_hospital")
    inst.af.wait(
        lambda: [r.state for r in inst.runs("yilian_imaging", day)] == ["success"],
        WAIT,
        "imaging once the master is in",
    )
    assert query("select count(*) n from raw.imaging__studies where ds = ?", [day]).n[0] > 0


def test_loaded_days_land_reconcile_and_quarantine_invalid_ids(
    installation: Installation,
) -> None:
    from yilian.settings import paths
    from yilian.sources import SOURCES

    for source in SOURCES:
        for day in DAYS:
            if (source, day) == ("prescriptions", BLOCKED):
                continue
            (run,) = installation.runs(f"yilian_{source}", day)
            landed = list((paths().landing_dir / f"source={source}").glob(f"table=*/ds={day}/*"))
            assert landed and all(p.name == "part-0.parquet" for p in landed)
            audit = query(
                "select * from audit.load_runs where source = ? and ds = ? and outcome = 'loaded'",
                [source, day],
            )
            assert run.run_id in set(audit.run_id)
            assert (audit.rows_extracted == audit.rows_loaded + audit.rows_quarantined).all()
        rules = set(
            query("select rule from quarantine.rejected_rows where source = ?", [source]).rule
        )
        assert "resident_id_valid" in rules, source


def test_no_personal_data_in_task_logs_landing_warehouse_or_reports(
    installation: Installation,
) -> None:
    texts = {
        str(p): p.read_text(errors="ignore")
        for p in (installation.home / "logs").rglob("*")
        if p.is_file()
    }
    assert any(re.search(r"loaded hospital", text) for text in texts.values())
    texts |= stored_texts()
    hits = pii_hits(installation.region.pii(), texts)
    assert not hits, f"personal data found (counts only): {hits}"


def test_a_backfill_names_one_partition_per_business_day(installation: Installation) -> None:
    from yilian.dev.airflow_services import airflow

    out = airflow(
        "backfill", "create", "--dag-id", "yilian_imaging",
        "--from-date", "2026-11-10", "--to-date", "2026-11-12", "--dry-run",
    )  # fmt: skip
    assert re.findall(r"\|\s+\|\s+(\d{4}-\d{2}-\d{2})\s+\|", out) == [
        "2026-11-10",
        "2026-11-11",
        "2026-11-12",
    ], out[-1500:]


def test_a_reader_holding_the_warehouse_fails_the_build_once_naming_it(
    installation: Installation,
) -> None:
    """A BI tool opens the warehouse itself (read-only) while a marts run starts: the run fails
    in plan_days, whose log starts with the reader's PID; every dbt task is upstream_failed
    (none red) and the marts stay as they were."""
    import subprocess
    import sys

    from yilian.dev.airflow_services import airflow
    from yilian.settings import paths

    inst, day = installation, DAYS[0]
    marts_before = query("select * from marts.mart_interoperability_daily order by all")
    holds = (
        "import duckdb, sys, time\n"
        "con = duckdb.connect(sys.argv[1], read_only=True)\n"
        "print('open', flush=True)\n"
        "time.sleep(900)\n"
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", holds, str(paths().warehouse)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout.readline().strip() == "open"
        airflow(
            "dags", "trigger", "yilian_marts", "--run-id", "held-by-a-reader",
            "--logical-date", f"{day}T12:00:00+08:00", "--conf", f'{{"days": ["{day}"]}}',
        )  # fmt: skip

        def held() -> list:
            return [r for r in inst.af.runs("yilian_marts") if r.run_id == "held-by-a-reader"]

        inst.af.wait(lambda: [r.state for r in held()] == ["failed"], WAIT, "the held build")
        (run,) = held()
        states = inst.af.task_states(run.dag_id, run.run_id)
        log = inst.af.task_log(run.dag_id, run.run_id, "plan_days")
    finally:
        reader.kill()
        reader.wait()
    assert [t for t, s in states.items() if s == "failed"] == ["plan_days"]
    dbt_tasks = {t: s for t, s in states.items() if t.startswith("dbt.")}
    assert len(dbt_tasks) > 20 and set(dbt_tasks.values()) == {"upstream_failed"}
    assert states["publish"] == "upstream_failed"
    reason = next(line for line in log.splitlines() if "held by another process" in line)
    assert f"PID {reader.pid}" in reason and "the warehouse is unchanged" in reason
    assert_frame_equal(
        marts_before, query("select * from marts.mart_interoperability_daily order by all")
    )
