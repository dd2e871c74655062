"""Write simulated days into the three source systems, each as it stands at the end of its day.

`generate_day` gives the events that *start* on a day with their whole future (a referral sent
today already knows when it will be accepted). A real system only learns of each step when it
happens, so this module files every step under the day it falls on: writing day d applies what
happens on d to records created up to LOOKBACK_DAYS earlier (a referral accepted, a patient
discharged, a report signed, a prescription dispensed). Steps later than that never reach the
source (an inpatient stay longer than six weeks is never discharged there), whichever way the
days are written, so the sources depend only on the config and the days.

Days written in order reuse what was generated for the days before. A run that starts later
picks up the steps still pending from the carry file the previous day left in
`<sim_dir>/carry/`, or, without one, regenerates the look-back window once (generation is
deterministic per seed and day).
"""

from __future__ import annotations

import json
import pickle
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from yilian_sim.config import SimulationConfig
from yilian_sim.faults import FaultContext, FaultLog
from yilian_sim.layout import Layout
from yilian_sim.model import (
    DayEvents,
    Encounter,
    Prescription,
    Referral,
    Region,
    RemoteRead,
    ResultRecognition,
    UploadLog,
)
from yilian_sim.sources import day_end, hospital_db, prescription_drop
from yilian_sim.sources.hospital_db import HospitalDay, referral_transitions
from yilian_sim.sources.imaging_api import ImagingStore, study_time

LOOKBACK_DAYS = 42
STALE_DAYS = (3, 10)  # late_status_update reaches back this many days (inclusive)
CARRY_KEEP_DAYS = 3  # carry files kept behind the newest one written


@dataclass
class _Due:
    """Everything that changes a source on one day."""

    encounters: list[Encounter] = field(default_factory=list)
    referrals: list[Referral] = field(default_factory=list)
    recognitions: list[ResultRecognition] = field(default_factory=list)
    uploads: list[UploadLog] = field(default_factory=list)
    studies: list[RemoteRead] = field(default_factory=list)
    reports: list[RemoteRead] = field(default_factory=list)
    prescriptions: list[Prescription] = field(default_factory=list)
    dispenses: list[Prescription] = field(default_factory=list)


class _Timeline:
    """Generated events filed under the days their steps fall on, from `first` on."""

    def __init__(self, config: SimulationConfig, region: Region, carry_dir: Path) -> None:
        from yilian_sim.activity import generate_day

        self._generate = generate_day
        self.config, self.region, self.carry_dir = config, region, carry_dir
        self.due: dict[date, _Due] = defaultdict(_Due)
        self.left_open: dict[date, list[Referral]] = {}  # accepted, never completed nor rejected
        self.last: date | None = None

    def catch_up(self, day: date) -> None:
        """Generate what `day` needs: just `day` after its eve or its eve's carry file, else
        its look-back window too."""
        eve = day - timedelta(days=1)
        if self.last == eve or self._load(eve):
            days = [day]
        else:
            self.due.clear()
            self.left_open.clear()
            first = max(self.config.start, day - timedelta(days=LOOKBACK_DAYS))
            days = [first + timedelta(days=i) for i in range((day - first).days + 1)]
        for d in days:
            self._file(self._generate(self.config, self.region, d), day)
        self.last = day
        for old in [d for d in self.left_open if d < day - timedelta(days=max(STALE_DAYS))]:
            del self.left_open[old]

    def _fingerprint(self) -> str:
        """What the events depend on (faults do not change events)."""
        c = self.config
        return repr((c.seed, c.scale, c.start, c.down_up_ratio, c.facility_changes))

    def save(self, day: date) -> None:
        """Leave the steps still pending after `day` for a later run; prune old carry files."""
        self.carry_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "fingerprint": self._fingerprint(),
            "due": {d: bucket for d, bucket in self.due.items() if d > day},
            "left_open": self.left_open,
        }
        target = self.carry_dir / f"{day.isoformat()}.pickle"
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        tmp.replace(target)
        newest = max(date.fromisoformat(p.stem) for p in self.carry_dir.glob("*.pickle"))
        for path in self.carry_dir.glob("*.pickle"):
            if date.fromisoformat(path.stem) < newest - timedelta(days=CARRY_KEEP_DAYS):
                path.unlink()

    def _load(self, eve: date) -> bool:
        path = self.carry_dir / f"{eve.isoformat()}.pickle"
        if eve < self.config.start or not path.exists():
            return False
        state = pickle.loads(path.read_bytes())  # our own file, beside the sources
        if state["fingerprint"] != self._fingerprint():
            return False
        self.due = defaultdict(_Due, state["due"])
        self.left_open = state["left_open"]
        return True

    def _file(self, events: DayEvents, first: date) -> None:
        horizon = events.day + timedelta(days=LOOKBACK_DAYS)

        def due(moment: datetime | None) -> _Due | None:
            if moment is None or not first <= moment.date() <= horizon:
                return None
            return self.due[moment.date()]

        for e in events.encounters:
            for moment in {e.visit_at.date(): e.visit_at, **_dated(e.discharge_at)}.values():
                if bucket := due(moment):
                    bucket.encounters.append(e)
        for r in events.referrals:
            steps = referral_transitions(r)
            for moment in {at.date(): at for at, _ in steps}.values():
                if bucket := due(moment):
                    bucket.referrals.append(r)
            if [status for _, status in steps] == ["sent", "accepted"]:
                self.left_open.setdefault(r.sent_at.date(), []).append(r)
        for rec in events.result_recognitions:
            if bucket := due(rec.presented_at):
                bucket.recognitions.append(rec)
        for u in events.uploads:
            if bucket := due(u.received_at):
                bucket.uploads.append(u)
        for read in events.remote_reads:
            if bucket := due(study_time(read)):
                bucket.studies.append(read)
            if bucket := due(read.reported_at):
                bucket.reports.append(read)
        for p in events.prescriptions:
            if bucket := due(p.prescribed_at):
                bucket.prescriptions.append(p)
            if p.dispense_id is not None and (bucket := due(p.dispensed_at)):
                bucket.dispenses.append(p)

    def take(self, day: date) -> _Due:
        return self.due.pop(day, _Due())

    def stale_referrals(self, day: date) -> list[Referral]:
        """Referrals sent STALE_DAYS ago, accepted before `day` and left open: the candidates
        of late_status_update."""
        lo, hi = (day - timedelta(days=n) for n in reversed(STALE_DAYS))
        return [
            r
            for d, refs in self.left_open.items()
            if lo <= d <= hi
            for r in refs
            if r.accepted_at is not None and r.accepted_at.date() < day
        ]


def _dated(moment: datetime | None) -> dict[date, datetime]:
    return {moment.date(): moment} if moment is not None else {}


@dataclass
class SimulationResult:
    """What a run wrote: the fault log, the clock it left, rows and seconds per day and source."""

    faults: FaultLog
    clock: datetime | None
    rows: dict[date, dict[str, dict[str, int]]] = field(default_factory=dict)
    seconds: dict[date, dict[str, float]] = field(default_factory=dict)


def as_days(config: SimulationConfig, days: int | Sequence[date]) -> list[date]:
    """`days` as sorted dates: an int N means the first N days from `config.start`."""
    if isinstance(days, int):
        return [config.start + timedelta(days=i) for i in range(days)]
    return sorted(set(days))


def hospital_url(layout: Layout) -> str:
    return hospital_db.default_url(layout.hospital_db)


def faults_dir(layout: Layout) -> Path:
    return layout.sim_dir / "faults"


def simulate_days(
    config: SimulationConfig,
    days: int | Sequence[date],
    layout: Layout,
    *,
    db_url: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> SimulationResult:
    """Write `days` in order into the hospital DB (`db_url`, default the SQLite file of
    `layout`), the imaging store and the prescription drop; returns what was written and every
    fault applied (also in `<sim_dir>/faults/<ds>.json`). Rewriting a day changes nothing.
    `progress` receives one line per day written (rows and seconds per source)."""
    from yilian_sim.region import build_region

    wanted = as_days(config, days)
    if wanted and wanted[0] < config.start:
        raise ValueError(f"day {wanted[0]} is before the simulation starts ({config.start})")
    region = build_region(config)
    known = {v.facility_code for v in region.facility_versions}
    engine = hospital_db.connect(db_url or hospital_url(layout))
    store = ImagingStore(layout.imaging_store)
    timeline = _Timeline(config, region, layout.sim_dir / "carry")
    result = SimulationResult(FaultLog(), store.clock())
    try:
        for day in wanted:
            ctx = FaultContext(config, day)
            timeline.catch_up(day)
            due = timeline.take(day)
            stale = timeline.stale_referrals(day) if ctx.spec("late_status_update") else []
            batch = HospitalDay(
                day,
                region,
                config.start,
                encounters=due.encounters,
                referrals=due.referrals,
                recognitions=due.recognitions,
                uploads=due.uploads,
                stale_referrals=stale,
            )
            t0 = time.perf_counter()
            rows = {"hospital": hospital_db.write_day(engine, batch, ctx)}
            t1 = time.perf_counter()
            rows["imaging"] = store.write_day(day, due.studies, due.reports, known, ctx)
            t2 = time.perf_counter()
            rows["prescriptions"] = prescription_drop.write_day(
                layout.prescription_drop, day, due.prescriptions, due.dispenses, ctx
            )
            seconds = {
                "hospital": t1 - t0,
                "imaging": t2 - t1,
                "prescriptions": time.perf_counter() - t2,
            }
            store.advance_clock(day_end(day))
            ctx.log.write(faults_dir(layout), day)
            timeline.save(day)

            result.faults.extend(ctx.log)
            result.rows[day], result.seconds[day] = rows, seconds
            if progress is not None:
                written = ", ".join(f"{src} {sum(n.values()):,} rows" for src, n in rows.items())
                progress(f"{day}: {written} ({sum(seconds.values()):.2f} s)")
    finally:
        engine.dispose()
    result.clock = store.clock()
    return result


def simulated_clock(layout: Layout) -> datetime | None:
    """The end of the latest day written into the sources (None before any)."""
    return ImagingStore(layout.imaging_store).clock() if layout.imaging_store.exists() else None


def read_fault_log(layout: Layout) -> FaultLog:
    """Every day's fault log left beside the sources."""
    log = FaultLog()
    for path in sorted(faults_dir(layout).glob("*.json")):
        log.extend(FaultLog.from_json(path.read_text(encoding="utf-8")))
    return log


def source_counts(layout: Layout, db_url: str | None = None) -> dict[str, dict[str, int]]:
    """Rows held by each source: tables, FHIR resource types, and drop files (from manifests)."""
    engine = hospital_db.connect(db_url or hospital_url(layout))
    try:
        hospital = hospital_db.row_counts(engine)
    finally:
        engine.dispose()
    store = ImagingStore(layout.imaging_store)
    drop: dict[str, int] = {"days": 0, "prescriptions": 0, "dispenses": 0}
    for manifest in sorted(layout.prescription_drop.glob("*/manifest_*.json")):
        drop["days"] += 1
        for entry in json.loads(manifest.read_text(encoding="utf-8"))["files"]:
            drop[entry["name"].split("_")[0]] += entry["rows"]
    return {
        "hospital": hospital,
        "imaging": {t: store.count(t) for t in ("ImagingStudy", "DiagnosticReport")},
        "prescriptions": drop,
    }
