"""A deliberate rotation of the pseudonym key (`yilian rekey`): refused, changing nothing, where
it cannot be done; otherwise every stored pseudonym is the new key's, in one step, and the next
night runs with the new key while the old one is refused."""

from __future__ import annotations

import secrets
import shutil

import duckdb
import pytest

from tests.ingestion.warehouse import assert_same, query, snapshot
from tests.region import START, Region
from yilian.cli import main
from yilian.privacy import pseudonymise
from yilian.settings import paths
from yilian.sources import SOURCES
from yilian.steps import ingest
from yilian.warehouse.rekey import RekeyRefused, rekey

PATIENT_TABLES = [
    f"raw.{spec.raw_name}"
    for system in SOURCES.values()
    for spec in system.tables
    if spec.has_patient
]


@pytest.fixture
def loaded(region: Region, imaging_api, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """One day of every source, loaded with a key of its own; returns that key."""
    key = secrets.token_hex(32)
    monkeypatch.setenv("YILIAN_PSEUDONYM_KEY", key)
    region.simulate(1)
    for name in SOURCES:
        ingest.run_day(name, START, f"test-{name}")
    return key.encode()


def _keys() -> set[str]:
    return {
        k
        for table in PATIENT_TABLES
        for k in query(f"select patient_key from {table}").patient_key
        if k
    }


def test_a_rekey_that_cannot_be_done_is_refused_and_changes_nothing(loaded: bytes) -> None:
    before = snapshot()
    other = secrets.token_hex(32).encode()
    with pytest.raises(RekeyRefused, match="is not the key the warehouse was built with"):
        rekey(other, other)
    with pytest.raises(RekeyRefused, match="already the warehouse's key"):
        rekey(loaded, loaded)
    drop_day = paths().sim_dir / "drop" / START.isoformat()
    shutil.move(drop_day, drop_day.with_name("elsewhere"))
    try:
        with pytest.raises(RekeyRefused, match=f"prescriptions {START} is loaded but its source"):
            rekey(loaded, other)
    finally:
        shutil.move(drop_day.with_name("elsewhere"), drop_day)
    assert_same(before, snapshot())
    # a pseudonym no source delivers an ID for any more (its record was deleted at the source)
    con = duckdb.connect(str(paths().warehouse))
    con.execute(
        "insert into raw.hospital__encounters by name select * replace ('f' || repeat('0', 63) "
        "as patient_key) from raw.hospital__encounters where patient_key is not null limit 1"
    )
    con.close()
    orphaned = snapshot()
    with pytest.raises(RekeyRefused, match=r"raw\.hospital__encounters: 1\)"):
        rekey(loaded, other)
    assert_same(orphaned, snapshot())


def test_rekey_re_makes_every_pseudonym_and_the_next_night_uses_the_new_key(
    loaded: bytes, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    before, old_keys = snapshot(), _keys()
    new = secrets.token_hex(32)
    monkeypatch.setenv("YILIAN_PSEUDONYM_KEY", new)
    monkeypatch.setenv("YILIAN_OLD_PSEUDONYM_KEY", loaded.decode())
    assert main(["rekey"]) == 0
    assert "re-keyed" in capsys.readouterr().out

    spec = SOURCES["prescriptions"].table("prescriptions")
    delivered = SOURCES["prescriptions"].extract(START)["prescriptions"]
    expected = set(pseudonymise(delivered, spec, new.encode(), START)["patient_key"].dropna())
    loaded_now = set(query(f"select patient_key from raw.{spec.raw_name}").patient_key.dropna())
    assert loaded_now <= expected and loaded_now
    assert not _keys() & old_keys
    records = query("select record from quarantine.rejected_rows").record
    assert not any(k in r for r in records for k in old_keys)
    after = snapshot()
    for name, frame in before.items():  # the same rows, only the pseudonyms differ
        assert len(after[name]) == len(frame), name
        keep = [c for c in frame.columns if c not in ("patient_key", "record")]
        assert (
            after[name][keep]
            .sort_values(keep)
            .reset_index(drop=True)
            .equals(frame[keep].sort_values(keep).reset_index(drop=True))
        ), name

    ingest.run_day("hospital", START, "test-after-rekey")  # the new key is the warehouse's now
    monkeypatch.setenv("YILIAN_PSEUDONYM_KEY", loaded.decode())
    with pytest.raises(ingest.PseudonymKeyChanged):
        ingest.run_day("hospital", START, "test-old-key")
