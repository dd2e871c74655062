"""How a simulated region is configured: seed, scale, dates, referral balance, changes, faults."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class FacilityChange:
    """A change to the facility master that takes effect on `day`.

    kind: `tier` (new tier/grade), `alliance` (moves to another alliance), or `merge`
    (`facility_code` is absorbed by `target`, as 景洪 and 桑植 merged hospitals).
    """

    day: date
    kind: str
    facility_code: str
    target: str | None = None  # alliance id for `alliance`, surviving facility for `merge`
    tier: int | None = None
    grade: str | None = None


@dataclass(frozen=True)
class FaultSpec:
    """One fault switched on; see `yilian_sim.faults` for every name and what it does.

    `day` limits it to one business day (None: every day); `rate` is the share of rows hit
    where a fault corrupts rows, `count` the number of rows/requests where it counts them;
    `column` names the column a `renamed_column` fault renames.
    """

    name: str
    day: date | None = None
    rate: float = 0.02
    count: int = 3
    column: str | None = None


@dataclass(frozen=True)
class SimulationConfig:
    seed: int = 20260101
    scale: float = 1.0
    start: date = date(2026, 11, 1)
    down_up_ratio: float = 0.8  # downward : upward referrals, 0.1 to 2
    facility_changes: tuple[FacilityChange, ...] | None = None  # None: the region's default plan
    faults: tuple[FaultSpec, ...] = field(default_factory=tuple)
