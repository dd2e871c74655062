"""The prescription drop: GB18030 files that match their manifest, which always comes last.

Rows hold personal data: assertions compare ids, counts and hashes only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from yilian_sim.config import SimulationConfig
from yilian_sim.faults import FaultContext
from yilian_sim.layout import Layout
from yilian_sim.model import Prescription
from yilian_sim.population import person
from yilian_sim.run import simulate_days
from yilian_sim.sources import prescription_drop
from yilian_sim.sources.prescription_drop import day_dir, file_names

CONFIG = SimulationConfig(seed=5, scale=0.05)
D1 = CONFIG.start
D2 = D1 + timedelta(days=1)
PHARMACY = "91522701MA6DMT2W0C"


def prescription(n: int, dispensed_at: datetime | None) -> Prescription:
    prescribed = datetime(D1.year, D1.month, D1.day, 9) + timedelta(minutes=7 * n)
    outflow = n % 2 == 0
    return Prescription(
        prescription_id=f"RX{D1:%Y%m%d}{n:07d}",
        hospital_code="QN2001",
        encounter_id=f"E{D1:%Y%m%d}{n:07d}",
        patient=person("522722", n, CONFIG.seed),
        prescribed_at=prescribed,
        main_drug_name=("苯磺酸氨氯地平片", "二甲双胍缓释片", "阿莫西林胶囊")[n % 3],
        drug_count=1 + n % 4,
        total_amount=12.5 * (n + 1),
        is_outflow=outflow,
        pharmacy_credit_code=PHARMACY if outflow else None,
        dispense_id=f"DP{D1:%Y%m%d}{n:07d}" if outflow and dispensed_at else None,
        dispensed_at=dispensed_at if outflow else None,
    )


PRESCRIPTIONS = [
    prescription(n, datetime(D1.year, D1.month, D1.day, 18) + timedelta(hours=4 * (n % 3)))
    for n in range(12)
]


def write(root: Path, day: date) -> None:
    scripts = [p for p in PRESCRIPTIONS if p.prescribed_at.date() == day]
    dispensed = [p for p in PRESCRIPTIONS if p.dispensed_at and p.dispensed_at.date() == day]
    prescription_drop.write_day(root, day, scripts, dispensed, FaultContext(CONFIG, day))


def read_day(root: Path, day: date) -> tuple[dict, dict[str, list[dict[str, str]]]]:
    """The manifest, and each file's rows after checking it against the manifest."""
    folder = day_dir(root, day)
    names = file_names(day)
    manifest = json.loads((folder / names["manifest"]).read_text(encoding="utf-8"))
    assert manifest["business_date"] == day.isoformat()
    files = {}
    for entry in manifest["files"]:
        data = (folder / entry["name"]).read_bytes()
        assert entry["encoding"] == "GB18030"
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["name"]
        rows = list(csv.DictReader(io.StringIO(data.decode("gb18030"), newline="")))
        assert len(rows) == entry["rows"], entry["name"]
        files[entry["name"].split("_")[0]] = rows
    return manifest, files


def test_files_are_gb18030_and_match_their_manifest(tmp_path: Path) -> None:
    write(tmp_path, D1)
    manifest, files = read_day(tmp_path, D1)
    assert [f["name"] for f in manifest["files"]] == [
        f"prescriptions_{D1}.csv",
        f"dispenses_{D1}.csv",
    ]
    assert list(files["prescriptions"][0]) == list(prescription_drop.PRESCRIPTION_COLUMNS)
    assert list(files["dispenses"][0]) == list(prescription_drop.DISPENSE_COLUMNS)
    assert {r["main_drug_name"] for r in files["prescriptions"]} == {
        "苯磺酸氨氯地平片",
        "二甲双胍缓释片",
        "阿莫西林胶囊",
    }
    closed = [r["prescription_id"] for r in files["prescriptions"] if r["is_outflow"] == "0"]
    assert closed and all(
        r["pharmacy_credit_code"] == "" for r in files["prescriptions"] if r["is_outflow"] == "0"
    )
    raw = (day_dir(tmp_path, D1) / f"prescriptions_{D1}.csv").read_bytes()
    assert raw.count(b"\r\n") == len(files["prescriptions"]) + 1
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")


def test_dispensings_land_in_the_file_of_the_day_they_happen(tmp_path: Path) -> None:
    write(tmp_path, D1)
    write(tmp_path, D2)
    for day in (D1, D2):
        dispensed = read_day(tmp_path, day)[1]["dispenses"]
        assert {r["dispensed_at"][:10] for r in dispensed} == {day.isoformat()}
    assert len(read_day(tmp_path, D2)[1]["prescriptions"]) == 0


def test_the_manifest_is_written_last_and_removed_first_on_rewrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, D1)
    manifest = day_dir(tmp_path, D1) / file_names(D1)["manifest"]
    writes: list[tuple[str, bool]] = []
    original = prescription_drop._atomic_write

    def recording(path: Path, data: bytes) -> None:
        writes.append((path.name, manifest.exists()))
        original(path, data)

    monkeypatch.setattr(prescription_drop, "_atomic_write", recording)
    write(tmp_path, D1)
    assert writes == [
        (f"prescriptions_{D1}.csv", False),
        (f"dispenses_{D1}.csv", False),
        (f"manifest_{D1}.json", False),
    ]
    assert sorted(p.suffix for p in day_dir(tmp_path, D1).iterdir()) == [".csv", ".csv", ".json"]


def test_rewriting_a_day_gives_the_same_bytes(tmp_path: Path) -> None:
    write(tmp_path, D1)
    before = {p.name: p.read_bytes() for p in day_dir(tmp_path, D1).iterdir()}
    write(tmp_path, D1)
    after = {p.name: p.read_bytes() for p in day_dir(tmp_path, D1).iterdir()}
    assert {n: hashlib.sha256(b).hexdigest() for n, b in after.items()} == {
        n: hashlib.sha256(b).hexdigest() for n, b in before.items()
    }


def test_simulated_drop_days_are_complete_and_consistent(tmp_path: Path) -> None:
    paths = Layout(tmp_path / "sim")
    simulate_days(CONFIG, 3, paths)
    prescribed: set[str] = set()
    for n in range(3):
        day = D1 + timedelta(days=n)
        _, files = read_day(paths.prescription_drop, day)
        assert {r["prescribed_at"][:10] for r in files["prescriptions"]} == {day.isoformat()}
        prescribed |= {r["prescription_id"] for r in files["prescriptions"]}
        dispensed = files["dispenses"]
        assert dispensed and {r["dispensed_at"][:10] for r in dispensed} == {day.isoformat()}
        assert {r["prescription_id"] for r in dispensed} <= prescribed
