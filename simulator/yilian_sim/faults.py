"""Faults on demand: the named switches, how each corrupts a source, and the log of what it hit.

Production sources fail in a handful of well-known ways; the simulator reproduces each one on
request (`SimulationConfig.faults`) so the pipeline's checks are exercised by the same failures
they exist for. A fault changes exactly what its description says and nothing else, and every
application is recorded in a `FaultLog` by record id only (never personal data), so tests and the
truth can set aside exactly the records a fault corrupted.
"""

from __future__ import annotations

import hashlib
import json
import random
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from yilian_sim.config import FaultSpec, SimulationConfig

T = TypeVar("T")


@dataclass(frozen=True)
class FaultSwitch:
    name: str
    sources: tuple[str, ...]  # hospital | imaging | prescriptions
    uses: str  # which FaultSpec field sizes it: rate | count | column | none
    description: str


FAULTS: dict[str, FaultSwitch] = {
    s.name: s
    for s in (
        FaultSwitch(
            "duplicate_rows",
            ("hospital", "prescriptions"),
            "rate",
            "The same record is delivered twice. In the prescription drop a share `rate` of the "
            "day's prescription rows appear twice, byte for byte (the manifest counts both). The "
            "hospital database has primary keys, so there the HIS re-submits a share `rate` of "
            "the day's final encounters under a new encounter_id with every other column equal "
            "(id = original + 'D'); the log maps each new id to its original.",
        ),
        FaultSwitch(
            "invalid_resident_ids",
            ("hospital", "imaging", "prescriptions"),
            "rate",
            "A share `rate` of the day's encounter rows, ImagingStudy subjects and prescription "
            "rows carry a resident ID that fails GB 11643: alternately a wrong check character, "
            "or an impossible birth date (month 13) with an otherwise correct check character.",
        ),
        FaultSwitch(
            "implausible_resident_ids",
            ("hospital",),
            "rate",
            "A share `rate` of the day's encounter rows carry a resident ID that passes GB 11643 "
            "(right check character, real date, the patient's own division) but cannot be the "
            "patient's: alternately born a year after the visit, or 125 years before it.",
        ),
        FaultSwitch(
            "invalid_credit_codes",
            ("prescriptions",),
            "rate",
            "A share `rate` of the day's outflow prescriptions name their pharmacy by a unified "
            "social credit code that fails GB 32100 (wrong check character). Dispense rows keep "
            "the correct code.",
        ),
        FaultSwitch(
            "unknown_facility_codes",
            ("hospital", "imaging"),
            "rate",
            "A share `rate` of the day's encounter rows and ImagingStudies reference a facility "
            "code that is not in the facility master (a mistyped code of the right shape).",
        ),
        FaultSwitch(
            "future_timestamps",
            ("hospital",),
            "rate",
            "A share `rate` of the day's outpatient and emergency encounters get a visit_at "
            "2 to 400 days after the business day (clock or keying error); updated_at stays in "
            "the day, so the row is still in that day's extract.",
        ),
        FaultSwitch(
            "inverted_timestamps",
            ("hospital", "imaging"),
            "rate",
            "Time runs backwards on a share `rate` of rows finished today: inpatient encounters "
            "discharged before admission, referrals accepted before they were sent, and "
            "DiagnosticReports issued before the read was requested (meta.lastUpdated keeps the "
            "true time, so the report is still in the day's window).",
        ),
        FaultSwitch(
            "renamed_column",
            ("prescriptions",),
            "column",
            "The day's export renames one CSV column (`column`, default prescribed_at -> "
            "prescribe_time; also dispensed_at, patient_id_no, pharmacy_credit_code, "
            "total_amount). The manifest describes the renamed file, so only the schema drifts.",
        ),
        FaultSwitch(
            "truncated_file",
            ("prescriptions",),
            "rate",
            "The day's prescriptions CSV is cut short after the manifest was computed, mid-row, "
            "losing about a share `rate` of its bytes (at least one row): the manifest's row "
            "count and SHA-256 no longer match the file. The log lists the rows lost or cut.",
        ),
        FaultSwitch(
            "garbled_file",
            ("prescriptions",),
            "rate",
            "The day's prescriptions CSV is damaged after the manifest was computed: its last "
            "share `rate` of bytes (rate=1: all of it) are replaced by random bytes, the size "
            "unchanged. Only the SHA-256 tells it is not the file the manifest lists; decoding it "
            "would fail or, worse, succeed.",
        ),
        FaultSwitch(
            "utf8_bom",
            ("prescriptions",),
            "none",
            "The day's CSV files are exported in UTF-8 with a byte-order mark instead of "
            "GB18030, and the manifest says so (`encoding: UTF-8`; rows and SHA-256 match): a "
            "reader honouring the manifest reads the same data.",
        ),
        FaultSwitch(
            "mislabelled_encoding",
            ("prescriptions",),
            "none",
            "The day's CSV files are exported in UTF-8 with a byte-order mark, but the manifest "
            "still declares GB18030 (rows and SHA-256 match the files): read as GB18030 the "
            "first column name turns into mojibake.",
        ),
        FaultSwitch(
            "redelivered_rows",
            ("prescriptions",),
            "rate",
            "The platform re-sends yesterday with today: a share `rate` of the previous day's "
            "prescription rows, exactly as its file held them (same updated_at), are appended "
            "to today's prescriptions CSV and counted by today's manifest.",
        ),
        FaultSwitch(
            "late_status_update",
            ("hospital",),
            "count",
            "`count` referrals sent 3 to 10 days earlier, accepted and then left open (never "
            "completed), are completed today: their rows are updated in place with today's "
            "completed_at and updated_at, days after the usual window, so only an extractor "
            "that reads by updated_at (and a warehouse that keeps the latest version) sees it.",
        ),
        FaultSwitch(
            "api_errors",
            ("imaging",),
            "count",
            "The imaging API answers the next `count` FHIR requests after the day is written "
            "with 503 and an OperationOutcome, then recovers.",
        ),
        FaultSwitch(
            "api_rate_limit",
            ("imaging",),
            "count",
            "The imaging API answers the next `count` FHIR requests with 429 and "
            "`Retry-After: 1`, then recovers.",
        ),
        FaultSwitch(
            "slow_api",
            ("imaging",),
            "count",
            "The imaging API delays each of the next `count` FHIR requests by "
            "SLOW_API_DELAY_S seconds (configurable when switched on at runtime) before "
            "answering correctly.",
        ),
        FaultSwitch(
            "looping_next_link",
            ("imaging",),
            "count",
            "The imaging API's paging breaks: each of the next `count` FHIR search answers is "
            "correct but its `link[next]` is the URL of the page itself (even on the last page), "
            "so a client that follows `next` verbatim fetches the same page again and again.",
        ),
    )
}
API_FAULTS = ("api_errors", "api_rate_limit", "slow_api", "looping_next_link")
SLOW_API_DELAY_S = 2.0
RENAMED_COLUMNS = {
    "prescribed_at": "prescribe_time",
    "dispensed_at": "dispense_time",
    "patient_id_no": "id_card_no",
    "pharmacy_credit_code": "pharmacy_uscc",
    "total_amount": "amount",
}


def check_spec(spec: FaultSpec) -> None:
    """Fail early, naming the bad value, rather than silently simulating a clean day."""
    if spec.name not in FAULTS:
        raise ValueError(f"unknown fault {spec.name!r}; known: {', '.join(FAULTS)}")
    if not 0 < spec.rate <= 1:
        raise ValueError(f"fault {spec.name}: rate must be in (0, 1], got {spec.rate}")
    if spec.count < 1:
        raise ValueError(f"fault {spec.name}: count must be >= 1, got {spec.count}")
    if spec.name == "renamed_column" and (spec.column or "prescribed_at") not in RENAMED_COLUMNS:
        raise ValueError(
            f"fault renamed_column: cannot rename column {spec.column!r}; "
            f"choose one of {', '.join(RENAMED_COLUMNS)}"
        )


def faults_on(config: SimulationConfig, day: date) -> dict[str, FaultSpec]:
    """The faults switched on for `day`, by name (the last spec of a name wins)."""
    active: dict[str, FaultSpec] = {}
    for spec in config.faults:
        check_spec(spec)
        if spec.day is None or spec.day == day:
            active[spec.name] = spec
    return active


def fault_rng(config: SimulationConfig, name: str, day: date, target: str) -> random.Random:
    """A generator private to (seed, fault, day, target): same config, same corruption."""
    digest = hashlib.sha256(f"{config.seed}|{name}|{day}|{target}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def pick(items: Sequence[T], rate: float, rng: random.Random) -> list[T]:
    """A share `rate` of `items` (at least one when any exist), in their original order."""
    if not items:
        return []
    n = min(len(items), max(1, round(rate * len(items))))
    chosen = sorted(rng.sample(range(len(items)), n))
    return [items[i] for i in chosen]


_RIC_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def ric_check(first17: str) -> str:
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, _RIC_WEIGHTS, strict=True)) % 11]


def corrupt_resident_id(resident_id: str, index: int) -> str:
    """A wrong check character (even `index`) or month 13 with a correct check (odd)."""
    if index % 2 == 0:
        right = resident_id[17]
        wrong = next(c for c in "0123456789X" if c != right)
        return resident_id[:17] + wrong
    body = resident_id[:10] + "13" + resident_id[12:17]
    return body + ric_check(body)


def implausible_resident_id(resident_id: str, event_at: datetime, index: int) -> str:
    """A GB 11643-valid ID that cannot belong to the patient of an event at `event_at`: born a
    year after it (even `index`) or 125 years before it (odd); check character recomputed."""
    year = event_at.year + 1 if index % 2 == 0 else event_at.year - 125
    body = f"{resident_id[:6]}{year:04d}{event_at:%m%d}{resident_id[14:17]}"
    if body[10:14] == "0229":  # 29 February of a year that may have none
        body = body[:12] + "28" + body[14:]
    return body + ric_check(body)


_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def corrupt_credit_code(code: str) -> str:
    """Same code with its check character shifted, so only the GB 32100 check fails."""
    i = _USCC_ALPHABET.index(code[17])
    return code[:17] + _USCC_ALPHABET[(i + 1) % len(_USCC_ALPHABET)]


def unknown_facility_code(code: str, known: set[str]) -> str:
    """A code shaped like `code` (same length, same prefix) that the master does not hold."""
    stem, start = code[:-4], zlib.crc32(code.encode())
    for step in range(10**4):
        candidate = f"{stem}{(start + step) % 10**4:04d}"
        if candidate not in known:
            return candidate
    raise RuntimeError(f"no unknown facility code shaped like {code!r}")


@dataclass(frozen=True)
class FaultHit:
    """One application of one fault: which records of which table it touched (ids only)."""

    fault: str
    day: date
    source: str  # hospital | imaging | prescriptions
    table: str  # his_encounter, ImagingStudy, prescriptions_<ds>.csv, requests, ...
    keys: tuple[str, ...]
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class FaultLog:
    """Every fault applied, so what a fault corrupted can be excluded exactly."""

    hits: list[FaultHit] = field(default_factory=list)

    def add(
        self,
        fault: str,
        day: date,
        source: str,
        table: str,
        keys: Iterable[str],
        **detail: Any,
    ) -> None:
        self.hits.append(FaultHit(fault, day, source, table, tuple(keys), detail))

    def extend(self, other: FaultLog) -> None:
        self.hits.extend(other.hits)

    def on(self, day: date) -> FaultLog:
        return FaultLog([h for h in self.hits if h.day == day])

    def keys(self, source: str, table: str, fault: str | None = None) -> set[str]:
        return {
            k
            for h in self.hits
            if h.source == source and h.table == table and fault in (None, h.fault)
            for k in h.keys
        }

    def to_json(self) -> str:
        return json.dumps(
            [asdict(h) | {"day": h.day.isoformat(), "keys": list(h.keys)} for h in self.hits],
            ensure_ascii=False,
            indent=1,
            default=_json_default,
        )

    @classmethod
    def from_json(cls, text: str) -> FaultLog:
        return cls(
            [
                FaultHit(
                    h["fault"],
                    date.fromisoformat(h["day"]),
                    h["source"],
                    h["table"],
                    tuple(h["keys"]),
                    h["detail"],
                )
                for h in json.loads(text)
            ]
        )

    def write(self, directory: Path, day: date) -> Path:
        """`<directory>/<ds>.json`, replaced atomically (a rewrite of the day replaces it)."""
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"{day.isoformat()}.json"
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(self.on(day).to_json(), encoding="utf-8")
        tmp.replace(target)
        return target


def _json_default(value: object) -> str:
    if isinstance(value, date | datetime | timedelta):
        return str(value)
    raise TypeError(f"cannot log {type(value).__name__} in a fault log")


@dataclass
class FaultContext:
    """What a source writer needs to apply the day's faults and record them."""

    config: SimulationConfig
    day: date
    log: FaultLog = field(default_factory=FaultLog)
    active: dict[str, FaultSpec] = field(init=False)

    def __post_init__(self) -> None:
        self.active = faults_on(self.config, self.day)

    def spec(self, name: str) -> FaultSpec | None:
        return self.active.get(name)

    def rng(self, name: str, target: str) -> random.Random:
        return fault_rng(self.config, name, self.day, target)
