"""A small region for the operator pages: four hospital days with invalid resident IDs (so
quarantine has rows), then a day without activity (blocked: its feed is empty).

Run in-process the way tests/ingestion/test_days.py runs days; five validations in all, so
"three runs back" of the latest is the second day.
"""

from __future__ import annotations

from datetime import date, timedelta

from yilian_sim.config import FaultSpec

from tests.region import START, Region
from yilian.steps import ingest

FAULTS = (FaultSpec("invalid_resident_ids", rate=0.03),)
LOADED_DAYS = [START + timedelta(days=n) for n in range(4)]
BLOCKED_DAY = START + timedelta(days=6)
RUNS = [*LOADED_DAYS, BLOCKED_DAY]


def run_id(ds: date) -> str:
    return f"test__hospital__{ds}"


def load(region: Region) -> None:
    region.faults = FAULTS
    region.simulate(len(LOADED_DAYS))
    for ds in LOADED_DAYS:
        ingest.run_day("hospital", ds, run_id(ds))
    try:
        ingest.run_day("hospital", BLOCKED_DAY, run_id(BLOCKED_DAY))
    except ingest.DataQualityBlocked:
        pass
    else:
        raise AssertionError(f"{BLOCKED_DAY} should be blocked: the simulated days end before it")
