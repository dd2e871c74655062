"""The hospital DB holds each day's state: rows inserted on their day, updated in place later.

Assertions compare record ids and column names only, never row values: rows hold personal data.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, select
from yilian_sim.config import SimulationConfig
from yilian_sim.faults import FaultContext
from yilian_sim.layout import Layout
from yilian_sim.model import Encounter, Referral, Region
from yilian_sim.population import person
from yilian_sim.region import build_region
from yilian_sim.run import hospital_url, simulate_days, simulated_clock
from yilian_sim.sources import hospital_db
from yilian_sim.sources.hospital_db import HospitalDay

CONFIG = SimulationConfig(seed=7, scale=0.05)
D1 = CONFIG.start
D2, D3 = D1 + timedelta(days=1), D1 + timedelta(days=2)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute)


@pytest.fixture(scope="module")
def region() -> Region:
    return build_region(CONFIG)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return hospital_db.connect(hospital_db.default_url(tmp_path / "hospital.sqlite"))


def write(engine: Engine, region: Region, day: date, **events: Any) -> None:
    hospital_db.write_day(engine, HospitalDay(day, region, D1, **events), FaultContext(CONFIG, day))


def rows(engine: Engine, table: str) -> dict[tuple, dict[str, Any]]:
    t = hospital_db.metadata.tables[table]
    keys = [c.name for c in t.primary_key.columns]
    with engine.connect() as conn:
        return {
            tuple(r[k] for k in keys): dict(r) for r in conn.execute(select(t)).mappings().all()
        }


def digest(engine: Engine) -> dict[str, str]:
    """A fingerprint of every table, so a failed comparison prints no personal data."""
    return {
        t.name: hashlib.sha256(repr(sorted(rows(engine, t.name).items())).encode()).hexdigest()
        for t in hospital_db.TABLES
    }


def referral() -> Referral:
    return Referral(
        "RF20261101000001",
        person("522701", 11, CONFIG.seed),
        "QN2101",
        "QN1001",
        "I10.x00x002",
        False,
        sent_at=at(D1, 10),
        accepted_at=at(D2, 9, 30),
        completed_at=at(D3, 15),
        rejected_at=None,
    )


def inpatient() -> Encounter:
    return Encounter(
        "E202611010000001",
        "QN1001",
        person("522701", 12, CONFIG.seed),
        "inpatient",
        at(D1, 8),
        at(D3, 11),
        "J96.900x001",
        "呼吸内科",
    )


def test_schema_has_contract_keys_and_updated_at_indexes(engine: Engine) -> None:
    inspector = inspect(engine)
    expected_keys = {
        "org_alliance": ["alliance_id"],
        "org_facility": ["facility_code", "version_no"],
        "org_region_population": ["county_code"],
        "his_encounter": ["encounter_id"],
        "his_referral": ["referral_id"],
        "his_result_recognition": ["recognition_id"],
        "platform_upload_log": ["upload_id"],
    }
    for table, key in expected_keys.items():
        assert inspector.get_pk_constraint(table)["constrained_columns"] == key
        indexed = [i["column_names"] for i in inspector.get_indexes(table)]
        assert ["updated_at"] in indexed, table


def test_referral_row_is_updated_in_place_as_its_status_moves(
    engine: Engine, region: Region
) -> None:
    r = referral()
    key = (r.referral_id,)
    write(engine, region, D1, referrals=[r])
    row = rows(engine, "his_referral")[key]
    assert (row["status"], row["accepted_at"], row["updated_at"]) == ("sent", None, r.sent_at)

    write(engine, region, D2, referrals=[r])
    row = rows(engine, "his_referral")[key]
    assert (row["status"], row["accepted_at"], row["completed_at"]) == (
        "accepted",
        r.accepted_at,
        None,
    )
    assert row["updated_at"] == r.accepted_at

    write(engine, region, D3, referrals=[r])
    table = rows(engine, "his_referral")
    assert list(table) == [key]
    assert (table[key]["status"], table[key]["updated_at"]) == ("completed", r.completed_at)


def test_discharge_updates_the_admission_row(engine: Engine, region: Region) -> None:
    e = inpatient()
    write(engine, region, D1, encounters=[e])
    row = rows(engine, "his_encounter")[(e.encounter_id,)]
    assert row["discharge_at"] is None
    assert e.visit_at < row["updated_at"] < at(D2, 0)

    write(engine, region, D3, encounters=[e])
    row = rows(engine, "his_encounter")[(e.encounter_id,)]
    assert (row["discharge_at"], row["updated_at"]) == (e.discharge_at, e.discharge_at)


def test_rewriting_a_day_changes_nothing_and_never_goes_back(
    engine: Engine, region: Region
) -> None:
    write(engine, region, D1, referrals=[referral()], encounters=[inpatient()])
    write(engine, region, D2, referrals=[referral()])
    state = digest(engine)

    write(engine, region, D2, referrals=[referral()])
    assert digest(engine) == state
    write(engine, region, D1, referrals=[referral()], encounters=[inpatient()])
    assert rows(engine, "his_referral")[(referral().referral_id,)]["status"] == "accepted"


def test_facility_versions_are_inserted_on_their_effective_date(
    engine: Engine, region: Region
) -> None:
    changed = {v.facility_code for v in region.facility_versions if v.version_no > 1}
    write(engine, region, D1)
    first = rows(engine, "org_facility")
    assert all(version == 1 for _, version in first)
    assert {r["updated_at"].date() for r in first.values()} == {D1}
    assert len(rows(engine, "org_alliance")) == len(region.alliances)

    later = max(v.effective_date for v in region.facility_versions)
    write(engine, region, later)
    new = {k: r for k, r in rows(engine, "org_facility").items() if k not in first}
    assert {code for code, _ in new} == changed
    assert all(r["updated_at"].date() == r["effective_date"] for r in new.values())


def test_simulated_days_hold_the_state_at_the_end_of_each_day(tmp_path: Path) -> None:
    paths = Layout(tmp_path / "sim")
    assert simulated_clock(paths) is None
    simulate_days(CONFIG, 4, paths)
    engine = hospital_db.connect(hospital_url(paths))
    end = at(D1 + timedelta(days=3), 23, 59) + timedelta(seconds=59)
    assert simulated_clock(paths) == end
    referrals = rows(engine, "his_referral").values()
    assert all(r["updated_at"] <= end for r in referrals)
    moved_later = [r for r in referrals if r["updated_at"].date() > r["sent_at"].date()]
    assert moved_later, "no referral row was updated on a day after it was sent"
    encounters = rows(engine, "his_encounter").values()
    assert all(r["updated_at"] <= end for r in encounters)
    assert all(
        r["updated_at"].date() == (r["discharge_at"] or r["visit_at"]).date() for r in encounters
    )
    assert any(
        r["discharge_at"] and r["discharge_at"].date() > r["visit_at"].date() for r in encounters
    )


def source_digests(paths: Layout) -> dict[str, str]:
    """Fingerprints of all three sources (the API fault table aside)."""
    engine = hospital_db.connect(hospital_url(paths))
    found = digest(engine)
    engine.dispose()
    with sqlite3.connect(paths.imaging_store) as db:
        resources = db.execute("SELECT * FROM resource ORDER BY type, id").fetchall()
    found["imaging"] = hashlib.sha256(repr(resources).encode()).hexdigest()
    for path in sorted(paths.prescription_drop.glob("*/*")):
        found[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def test_writing_days_again_leaves_every_source_unchanged(tmp_path: Path) -> None:
    paths = Layout(tmp_path / "sim")
    simulate_days(CONFIG, 4, paths)
    state = source_digests(paths)
    simulate_days(CONFIG, [D2, D3], paths)  # starts mid-run from the carry file of D1
    assert source_digests(paths) == state
    simulate_days(CONFIG, [D1], paths)  # an old day again: later updates stay
    assert source_digests(paths) == state


def test_days_written_in_separate_runs_equal_one_run(tmp_path: Path) -> None:
    whole, carried, regenerated = (
        Layout(tmp_path / n / "sim") for n in ("whole", "carried", "regen")
    )
    days = [D1 + timedelta(days=n) for n in range(5)]
    simulate_days(CONFIG, days, whole)
    for paths in (carried, regenerated):
        simulate_days(CONFIG, days[:2], paths)
        if paths is regenerated:
            shutil.rmtree(paths.sim_dir / "carry")
        simulate_days(CONFIG, days[2:], paths)
    assert source_digests(carried) == source_digests(whole)
    assert source_digests(regenerated) == source_digests(whole)
