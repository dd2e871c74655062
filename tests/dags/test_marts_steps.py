"""The marts DAG's gate: a day is built once all its feeds are in, and once per set of loads."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from yilian.settings import paths
from yilian.sources import SOURCES
from yilian.steps import marts
from yilian.warehouse import raw

DAY = date(2026, 11, 1)


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("YILIAN_DATA_DIR", str(tmp_path))
    return paths().warehouse


def load(source_name: str) -> None:
    """An (empty) audited load of the source's DAY, as the load task records it."""
    tables = {spec.table: pa.table({}) for spec in SOURCES[source_name].tables}
    audit = [
        raw.AuditRow(source_name, DAY, name, 0, 0, 0, "loaded", "", None, "r") for name in tables
    ]
    rejected = pa.table({})
    raw.load_day(paths().warehouse, source_name, DAY, tables, rejected, audit, "fingerprint")


def context(days: list[str] | None = None) -> dict:
    return {"partition_key": DAY.isoformat(), "params": {"days": days or []}}


def test_a_day_builds_once_per_set_of_loads(warehouse: Path) -> None:
    load("hospital")
    assert not marts.feeds_complete(context())  # two feeds still missing
    assert marts.plan_days(context()) is None  # the run ends there, its build skipped
    for name in ("imaging", "prescriptions"):
        load(name)
    assert marts.feeds_complete(context())
    plan = marts.plan_days(context())
    assert plan["ds"] == DAY.isoformat()
    assert plan["loads_through"] == {DAY.isoformat(): raw.last_load(warehouse, DAY).isoformat()}
    raw.record_mart_build(warehouse, {DAY: raw.last_load(warehouse, DAY)}, "run 1")
    # the second run of two feeds that landed together has nothing left to build
    assert not marts.feeds_complete(context())
    # a manual run naming the day always builds
    assert marts.feeds_complete(context([DAY.isoformat()]))
    load("imaging")  # a rerun of one source's day: build again
    assert marts.feeds_complete(context())
