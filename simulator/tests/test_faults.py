"""Each fault switch produces exactly its fault: against a clean run of the same seed, only the
records its FaultLog names differ, and they differ only as the switch's description says.

Records hold personal data: assertions show record ids, column names and counts, never values.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select
from stdnum.cn import ric, uscc
from yilian_sim import activity
from yilian_sim.config import FaultSpec, SimulationConfig
from yilian_sim.faults import FAULTS, FaultLog, check_spec
from yilian_sim.layout import Layout
from yilian_sim.model import DayEvents, Region
from yilian_sim.region import build_region
from yilian_sim.run import faults_dir, hospital_url, read_fault_log, simulate_days
from yilian_sim.sources import day_end, hospital_db
from yilian_sim.sources.imaging_api import ImagingServer

CLEAN = SimulationConfig(seed=11, scale=0.2)
DAYS = 5
FAULT_DAY = CLEAN.start + timedelta(days=DAYS - 1)
DS = FAULT_DAY.isoformat()
SPECS = {name: FaultSpec(name, day=FAULT_DAY) for name in FAULTS} | {
    "late_status_update": FaultSpec("late_status_update", day=FAULT_DAY, count=2),
}
Key = tuple[str, str]  # (source, table or file)


@dataclass(repr=False)
class Snapshot:
    """Everything the sources hold after a run (its repr shows no data: rows hold PII)."""

    paths: Layout
    hospital: dict[str, dict[str, dict[str, Any]]]
    imaging: dict[str, dict[str, dict[str, Any]]]
    drop: dict[str, bytes]
    log: FaultLog

    def __repr__(self) -> str:
        return f"Snapshot({self.paths.data_dir})"


def snapshot(paths: Layout, log: FaultLog) -> Snapshot:
    engine = hospital_db.connect(hospital_url(paths))
    hospital = {}
    with engine.connect() as conn:
        for table in hospital_db.TABLES:
            keys = [c.name for c in table.primary_key.columns]
            hospital[table.name] = {
                "|".join(str(r[k]) for k in keys): dict(r)
                for r in conn.execute(select(table)).mappings()
            }
    engine.dispose()
    with sqlite3.connect(paths.imaging_store) as db:
        imaging: dict[str, dict[str, dict[str, Any]]] = {}
        for rtype, rid, body in db.execute("SELECT type, id, body FROM resource"):
            imaging.setdefault(rtype, {})[rid] = json.loads(body)
    drop = {p.name: p.read_bytes() for p in sorted(paths.prescription_drop.glob("*/*"))}
    return Snapshot(paths, hospital, imaging, drop, log)


def csv_rows(data: bytes) -> tuple[list[str], dict[str, list[list[str]]]]:
    """Header, and each row's values by its first column (a list, so duplicates show)."""
    reader = csv.reader(io.StringIO(data.decode("gb18030", errors="replace"), newline=""))
    header = next(reader)
    rows: dict[str, list[list[str]]] = {}
    for values in reader:
        rows.setdefault(values[0], []).append(values)
    return header, rows


def differing(a: dict[str, Any], b: dict[str, Any]) -> set[str]:
    return {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}


def changes(clean: Snapshot, faulted: Snapshot) -> dict[Key, set[str]]:
    """Which records differ, per source table or file (manifests are checked on their own)."""
    found: dict[Key, set[str]] = {}
    for table, rows in clean.hospital.items():
        found[("hospital", table)] = differing(rows, faulted.hospital[table])
    for rtype in ("ImagingStudy", "DiagnosticReport"):
        found[("imaging", rtype)] = differing(
            clean.imaging.get(rtype, {}), faulted.imaging.get(rtype, {})
        )
    assert set(clean.drop) == set(faulted.drop)
    for name, data in clean.drop.items():
        if name.endswith(".csv"):
            header, rows = csv_rows(data)
            faulted_header, faulted_rows = csv_rows(faulted.drop[name])
            found[("prescriptions", name)] = differing(rows, faulted_rows) | (
                {"<header>"} if header != faulted_header else set()
            )
    return {k: v for k, v in found.items() if v}


def logged(log: FaultLog) -> dict[Key, set[str]]:
    found: dict[Key, set[str]] = {}
    for hit in log.hits:
        table = f"{hit.table}_{hit.day}.csv" if hit.source == "prescriptions" else hit.table
        if hit.keys:
            found.setdefault((hit.source, table), set()).update(hit.keys)
    return found


def changed_columns(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> set[str]:
    """Paths of the fields that differ between two records (nested for FHIR resources)."""
    paths = set()
    for key in a.keys() | b.keys():
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            paths |= changed_columns(x, y, f"{prefix}{key}.")
        elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
            for i, (u, v) in enumerate(zip(x, y, strict=True)):
                if isinstance(u, dict) and isinstance(v, dict):
                    paths |= changed_columns(u, v, f"{prefix}{key}.{i}.")
                elif u != v:
                    paths.add(f"{prefix}{key}.{i}")
        elif x != y:
            paths.add(prefix + str(key))
    return paths


REGION = build_region(CLEAN)


@pytest.fixture(scope="module")
def generation() -> Iterator[None]:
    """Generate each day once for all runs of this module (faults do not change events)."""
    original = activity.generate_day

    @cache
    def cached(day: date) -> DayEvents:
        return original(CLEAN, REGION, day)

    def generate(config: SimulationConfig, region: Region, day: date) -> DayEvents:
        assert (config.seed, config.scale) == (CLEAN.seed, CLEAN.scale)
        return cached(day)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(activity, "generate_day", generate)
        yield


@pytest.fixture(scope="module")
def before_fault_day(tmp_path_factory: pytest.TempPathFactory, generation: None) -> Path:
    """The clean sources up to the eve of the fault day; each run copies them and writes on."""
    root = tmp_path_factory.mktemp("eve")
    simulate_days(CLEAN, DAYS - 1, Layout(root / "sim"))
    return root


def simulate(root: Path, eve: Path, config: SimulationConfig) -> Snapshot:
    shutil.copytree(eve, root, dirs_exist_ok=True)
    result = simulate_days(config, [FAULT_DAY], Layout(root / "sim"))
    return snapshot(Layout(root / "sim"), result.faults)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, before_fault_day: Path) -> Snapshot:
    return simulate(tmp_path_factory.mktemp("clean"), before_fault_day, CLEAN)


@pytest.fixture
def run_fault(tmp_path: Path, before_fault_day: Path) -> Callable[[str], Snapshot]:
    def run(name: str) -> Snapshot:
        return simulate(tmp_path, before_fault_day, replace(CLEAN, faults=(SPECS[name],)))

    return run


ROW_FAULTS = (
    "duplicate_rows",
    "invalid_resident_ids",
    "invalid_credit_codes",
    "unknown_facility_codes",
    "future_timestamps",
    "inverted_timestamps",
    "late_status_update",
    "implausible_resident_ids",
    "redelivered_rows",
)


def test_every_switch_is_documented_and_checked() -> None:
    assert set(SPECS) == set(FAULTS)
    for switch in FAULTS.values():
        assert len(switch.description) > 80, switch.name
        assert switch.uses in ("rate", "count", "column", "none")
    for bad in (
        FaultSpec("no_such_fault"),
        FaultSpec("duplicate_rows", rate=0),
        FaultSpec("api_errors", count=0),
        FaultSpec("renamed_column", column="no_such_column"),
    ):
        with pytest.raises(ValueError, match=repr(bad.column) if bad.column else bad.name):
            check_spec(bad)


def test_a_clean_run_logs_no_faults(clean: Snapshot) -> None:
    assert clean.log.hits == []
    assert json.loads((faults_dir(clean.paths) / f"{DS}.json").read_text()) == []


@pytest.mark.parametrize("name", ROW_FAULTS)
def test_row_faults_change_exactly_the_logged_records(
    name: str, clean: Snapshot, run_fault: Callable[[str], Snapshot]
) -> None:
    faulted = run_fault(name)
    assert faulted.log.hits and {h.fault for h in faulted.log.hits} == {name}
    assert {h.day for h in faulted.log.hits} == {FAULT_DAY}
    expected = logged(faulted.log)
    assert expected, f"{name} touched nothing"
    assert changes(clean, faulted) == expected
    CHECKS[name](clean, faulted)


def _hospital_pairs(clean: Snapshot, faulted: Snapshot, table: str) -> Iterator[tuple[dict, dict]]:
    for key in faulted.log.keys("hospital", table):
        yield clean.hospital[table][key], faulted.hospital[table][key]


def _drop_pairs(clean: Snapshot, faulted: Snapshot) -> Iterator[tuple[dict, dict]]:
    name = f"prescriptions_{DS}.csv"
    header, before = csv_rows(clean.drop[name])
    _, after = csv_rows(faulted.drop[name])
    for key in faulted.log.keys("prescriptions", "prescriptions"):
        yield (
            dict(zip(header, before[key][0], strict=True)),
            dict(zip(header, after[key][0], strict=True)),
        )


def _imaging_pairs(clean: Snapshot, faulted: Snapshot, rtype: str) -> Iterator[tuple[dict, dict]]:
    for key in faulted.log.keys("imaging", rtype):
        yield clean.imaging[rtype][key], faulted.imaging[rtype][key]


def check_duplicate_rows(clean: Snapshot, faulted: Snapshot) -> None:
    (hit,) = [h for h in faulted.log.hits if h.source == "hospital"]
    encounters = faulted.hospital["his_encounter"]
    for copy, original in hit.detail["duplicate_of"].items():
        assert copy not in clean.hospital["his_encounter"]
        assert changed_columns(encounters[copy], encounters[original]) == {"encounter_id"}
    name = f"prescriptions_{DS}.csv"
    _, before = csv_rows(clean.drop[name])
    _, after = csv_rows(faulted.drop[name])
    keys = faulted.log.keys("prescriptions", "prescriptions")
    assert [k for k in keys if after[k] != before[k] * 2] == []


def check_invalid_resident_ids(clean: Snapshot, faulted: Snapshot) -> None:
    pairs = [*_hospital_pairs(clean, faulted, "his_encounter"), *_drop_pairs(clean, faulted)]
    for before, after in pairs:
        assert changed_columns(before, after) == {"patient_id_no"}
    # counts only: a failing check must not print the IDs themselves
    assert sum(not ric.is_valid(b["patient_id_no"]) for b, _ in pairs) == 0
    assert sum(ric.is_valid(a["patient_id_no"]) for _, a in pairs) == 0
    studies = list(_imaging_pairs(clean, faulted, "ImagingStudy"))
    for before, after in studies:
        assert changed_columns(before, after) == {"subject.identifier.value"}
    assert sum(ric.is_valid(a["subject"]["identifier"]["value"]) for _, a in studies) == 0


def check_invalid_credit_codes(clean: Snapshot, faulted: Snapshot) -> None:
    for before, after in _drop_pairs(clean, faulted):
        assert changed_columns(before, after) == {"pharmacy_credit_code"}
        assert uscc.is_valid(before["pharmacy_credit_code"])
        assert not uscc.is_valid(after["pharmacy_credit_code"])


def check_unknown_facility_codes(clean: Snapshot, faulted: Snapshot) -> None:
    known = {v.facility_code for v in REGION.facility_versions}
    for before, after in _hospital_pairs(clean, faulted, "his_encounter"):
        assert changed_columns(before, after) == {"facility_code"}
        assert after["facility_code"] not in known
    for before, after in _imaging_pairs(clean, faulted, "ImagingStudy"):
        assert changed_columns(before, after) == {"extension.0.valueIdentifier.value"}
        assert after["extension"][0]["valueIdentifier"]["value"] not in known


def check_future_timestamps(clean: Snapshot, faulted: Snapshot) -> None:
    for before, after in _hospital_pairs(clean, faulted, "his_encounter"):
        assert changed_columns(before, after) == {"visit_at"}
        assert after["visit_at"] > day_end(FAULT_DAY)
        assert after["updated_at"].date() == FAULT_DAY


def check_inverted_timestamps(clean: Snapshot, faulted: Snapshot) -> None:
    for before, after in _hospital_pairs(clean, faulted, "his_encounter"):
        assert changed_columns(before, after) == {"discharge_at"}
        assert after["discharge_at"] < after["visit_at"]
    for before, after in _hospital_pairs(clean, faulted, "his_referral"):
        assert changed_columns(before, after) == {"accepted_at"}
        assert after["accepted_at"] < after["sent_at"]
    for before, after in _imaging_pairs(clean, faulted, "DiagnosticReport"):
        assert changed_columns(before, after) == {"issued"}
        study = faulted.imaging["ImagingStudy"][after["imagingStudy"][0]["reference"][13:]]
        requested = study["extension"][2]["valueDateTime"]
        assert datetime.fromisoformat(after["issued"]) < datetime.fromisoformat(requested)
    assert faulted.log.keys("hospital", "his_referral")
    assert faulted.log.keys("imaging", "DiagnosticReport")


def check_late_status_update(clean: Snapshot, faulted: Snapshot) -> None:
    pairs = list(_hospital_pairs(clean, faulted, "his_referral"))
    assert len(pairs) == SPECS["late_status_update"].count
    for before, after in pairs:
        assert changed_columns(before, after) == {"status", "completed_at", "updated_at"}
        assert (before["status"], after["status"]) == ("accepted", "completed")
        assert after["updated_at"] == after["completed_at"]
        assert after["updated_at"].date() == FAULT_DAY
        assert after["sent_at"].date() <= FAULT_DAY - timedelta(days=3)


def check_implausible_resident_ids(clean: Snapshot, faulted: Snapshot) -> None:
    pairs = list(_hospital_pairs(clean, faulted, "his_encounter"))
    assert pairs
    for before, after in pairs:
        assert changed_columns(before, after) == {"patient_id_no"}
    ids = [(a["patient_id_no"], a["visit_at"]) for _, a in pairs]
    assert sum(not ric.is_valid(i) for i, _ in ids) == 0  # counts only, never the IDs
    born = [(ric.get_birth_date(i), visit.date()) for i, visit in ids]
    assert all(b > v or (v.year - b.year) > 120 for b, v in born)
    assert any(b > v for b, v in born) and any(v.year - b.year > 120 for b, v in born)


def check_redelivered_rows(clean: Snapshot, faulted: Snapshot) -> None:
    header, today = csv_rows(faulted.drop[f"prescriptions_{DS}.csv"])
    _, clean_today = csv_rows(clean.drop[f"prescriptions_{DS}.csv"])
    before = (FAULT_DAY - timedelta(days=1)).isoformat()
    _, yesterday = csv_rows(clean.drop[f"prescriptions_{before}.csv"])
    again = faulted.log.keys("prescriptions", "prescriptions")
    assert again and again <= set(yesterday) and not again & set(clean_today)
    assert {k: today[k] for k in again} == {k: yesterday[k] for k in again}
    assert _manifest(faulted)["files"][0]["rows"] == _manifest(clean)["files"][0]["rows"] + len(
        again
    )


CHECKS = {
    "implausible_resident_ids": check_implausible_resident_ids,
    "redelivered_rows": check_redelivered_rows,
    "duplicate_rows": check_duplicate_rows,
    "invalid_resident_ids": check_invalid_resident_ids,
    "invalid_credit_codes": check_invalid_credit_codes,
    "unknown_facility_codes": check_unknown_facility_codes,
    "future_timestamps": check_future_timestamps,
    "inverted_timestamps": check_inverted_timestamps,
    "late_status_update": check_late_status_update,
}


def _manifest(snap: Snapshot) -> dict[str, Any]:
    return json.loads(snap.drop[f"manifest_{DS}.json"])


def test_renamed_column_changes_only_the_header(
    clean: Snapshot, run_fault: Callable[[str], Snapshot]
) -> None:
    faulted = run_fault("renamed_column")
    name = f"prescriptions_{DS}.csv"
    assert changes(clean, faulted) == {("prescriptions", name): {"<header>"}}
    before, after = clean.drop[name].split(b"\r\n", 1), faulted.drop[name].split(b"\r\n", 1)
    assert before[1] == after[1]
    assert after[0] == before[0].replace(b"prescribed_at", b"prescribe_time")
    (hit,) = faulted.log.hits
    assert (hit.detail["column"], hit.detail["renamed_to"]) == ("prescribed_at", "prescribe_time")
    entry = _manifest(faulted)["files"][0]
    assert entry["rows"] == _manifest(clean)["files"][0]["rows"]
    assert entry["sha256"] != _manifest(clean)["files"][0]["sha256"]


def test_truncated_file_breaks_only_the_file_against_its_manifest(
    clean: Snapshot, run_fault: Callable[[str], Snapshot]
) -> None:
    faulted = run_fault("truncated_file")
    name = f"prescriptions_{DS}.csv"
    assert differing(clean.drop, faulted.drop) == {name}
    full, cut = clean.drop[name], faulted.drop[name]
    assert len(cut) < len(full) and full.startswith(cut) and not cut.endswith(b"\r\n")
    assert _manifest(faulted) == _manifest(clean)
    complete = {line.split(b",", 1)[0].decode() for line in cut.split(b"\r\n")[1:-1]}
    _, rows = csv_rows(full)
    (hit,) = faulted.log.hits
    assert set(hit.keys) == set(rows) - complete
    assert differing(clean.hospital, faulted.hospital) == set()
    assert differing(clean.imaging, faulted.imaging) == set()


@pytest.mark.parametrize(
    ("name", "statuses"),
    [("api_errors", [503] * 3 + [200]), ("api_rate_limit", [429] * 3 + [200])],
)
def test_api_faults_fail_requests_but_change_no_data(
    name: str, statuses: list[int], clean: Snapshot, run_fault: Callable[[str], Snapshot]
) -> None:
    faulted = run_fault(name)
    assert changes(clean, faulted) == {}
    (hit,) = faulted.log.hits
    assert (hit.source, hit.table, hit.detail["count"]) == ("imaging", "requests", 3)
    with ImagingServer(faulted.paths.imaging_store, "t") as server:
        answers = [
            requests.get(
                f"{server.base_url}/ImagingStudy", headers={"Authorization": "Bearer t"}, timeout=10
            )
            for _ in statuses
        ]
        assert [a.status_code for a in answers] == statuses
        assert [h["status"] for h in server.store.fault_hits()] == statuses[:-1]
    if name == "api_rate_limit":
        assert {a.headers.get("Retry-After") for a in answers[:-1]} == {"1"}


def test_slow_api_is_armed_for_its_day(
    clean: Snapshot, run_fault: Callable[[str], Snapshot]
) -> None:
    faulted = run_fault("slow_api")
    assert changes(clean, faulted) == {}
    (hit,) = faulted.log.hits
    assert (hit.fault, hit.detail["count"]) == ("slow_api", 3)


def test_the_fault_log_beside_the_sources_holds_ids_only(
    tmp_path: Path, before_fault_day: Path
) -> None:
    everything = replace(CLEAN, faults=tuple(SPECS.values()))
    faulted = simulate(tmp_path, before_fault_day, everything)
    text = (faults_dir(faulted.paths) / f"{DS}.json").read_text(encoding="utf-8")
    assert read_fault_log(faulted.paths).hits == faulted.log.hits
    assert {h.fault for h in faulted.log.hits} == set(FAULTS)
    assert not re.search(r"\b\d{17}[\dX]\b", text), "a resident ID in the fault log"
    assert not re.search(r"\b1\d{10}\b", text), "a phone number in the fault log"
    assert not re.search(r"[\u4e00-\u9fff]", text), "Chinese text (a name?) in the fault log"


def test_garbled_file_keeps_size_and_manifest_but_not_the_bytes(
    clean: Snapshot, run_fault: Callable[[str], Snapshot]
) -> None:
    faulted = run_fault("garbled_file")
    name = f"prescriptions_{DS}.csv"
    assert differing(clean.drop, faulted.drop) == {name}
    assert len(faulted.drop[name]) == len(clean.drop[name])
    assert faulted.drop[name] != clean.drop[name]
    assert _manifest(faulted) == _manifest(clean)
    assert _manifest(clean)["files"][0]["bytes"] == len(clean.drop[name])


@pytest.mark.parametrize(
    ("name", "declared"), [("utf8_bom", "UTF-8"), ("mislabelled_encoding", "GB18030")]
)
def test_utf8_exports_hold_the_same_text_with_a_bom(
    name: str, declared: str, clean: Snapshot, run_fault: Callable[[str], Snapshot]
) -> None:
    faulted = run_fault(name)
    for kind in ("prescriptions", "dispenses"):
        file = f"{kind}_{DS}.csv"
        data = faulted.drop[file]
        assert data.startswith(b"\xef\xbb\xbf")
        assert data.decode("utf-8-sig") == clean.drop[file].decode("gb18030")
    entries = _manifest(faulted)["files"]
    assert {e["encoding"] for e in entries} == {declared}
    assert [e["rows"] for e in entries] == [e["rows"] for e in _manifest(clean)["files"]]
    assert faulted.log.hits[0].detail["declared"] == declared


def test_a_looping_next_link_points_each_answer_back_at_itself(
    clean: Snapshot, run_fault: Callable[[str], Snapshot]
) -> None:
    faulted = run_fault("looping_next_link")
    assert changes(clean, faulted) == {}
    with ImagingServer(faulted.paths.imaging_store, "t") as server:
        url = f"{server.base_url}/ImagingStudy?_count=1000"
        for _ in range(SPECS["looping_next_link"].count):
            bundle = requests.get(url, headers={"Authorization": "Bearer t"}, timeout=10).json()
            links = {link["relation"]: link["url"] for link in bundle["link"]}
            assert links["next"] == links["self"] == url
        after = requests.get(url, headers={"Authorization": "Bearer t"}, timeout=10).json()
        assert "next" not in {link["relation"] for link in after["link"]}
