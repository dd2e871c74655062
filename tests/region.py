"""The simulated region a test works on, and the first simulated day.

Test modules import these from here, never from `conftest`: pytest loads conftest.py under its
own name, so importing `tests.conftest` would run it a second time (a second session directory
and environment) and whichever copy bound Airflow first would win.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from yilian_sim.config import FaultSpec, SimulationConfig
from yilian_sim.layout import Layout

from yilian.settings import paths

START = date(2026, 11, 1)
SCALE = 0.02


@dataclass
class Region:
    """A simulated region writing into this test's own data directory."""

    root: Path
    scale: float = SCALE
    faults: tuple[FaultSpec, ...] = ()
    written: list[date] = field(default_factory=list)

    @property
    def config(self) -> SimulationConfig:
        return SimulationConfig(scale=self.scale, start=START, faults=self.faults)

    def simulate(self, days: int | list[date]):
        from yilian_sim.run import simulate_days

        result = simulate_days(self.config, days, Layout(paths().sim_dir))
        self.written.extend(sorted(result.rows))
        return result

    def day(self, n: int) -> date:
        return START + timedelta(days=n)

    def pii(self) -> dict[str, set[str]]:
        """Resident IDs, names and phones of every simulated patient (from the events)."""
        from yilian_sim.activity import generate_day
        from yilian_sim.region import build_region

        region = build_region(self.config)
        people = set()
        last = max(self.written)
        day = START
        while day <= last:
            events = generate_day(self.config, region, day)
            for group in (
                events.encounters,
                events.referrals,
                events.result_recognitions,
                events.remote_reads,
                events.prescriptions,
            ):
                people.update(e.patient for e in group)
            day += timedelta(days=1)
        return {
            "resident_id": {p.resident_id for p in people},
            "name": {p.name for p in people},
            "phone": {p.phone for p in people},
        }
