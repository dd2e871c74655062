"""The simulated region's three source systems, each written as it stands at the end of a day.

`hospital_db` (SQL tables), `imaging_api` (FHIR store and HTTP server) and `prescription_drop`
(daily GB18030 files) turn the simulator's events into exactly what an extractor sees in the
real systems (docs/CONTRACTS.md §2); `yilian_sim.run` decides which events each day holds.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zlib import crc32


def day_start(day: date) -> datetime:
    return datetime.combine(day, time())


def day_end(day: date) -> datetime:
    """The last representable second of `day`: state 'as of the end of the day' includes it."""
    return datetime.combine(day, time(23, 59, 59))


def on_day(moment: datetime | None, day: date) -> bool:
    return moment is not None and moment.date() == day


def settle(moment: datetime, key: str, lo_min: int, hi_min: int) -> datetime:
    """`moment` plus a stable lag of lo..hi minutes (a system saving a record a bit later),
    never past the end of that day, so the record stays in its business day's extract."""
    settled = moment + timedelta(minutes=lo_min + crc32(key.encode()) % (hi_min - lo_min + 1))
    if settled.day == moment.day:
        return settled
    return max(moment, day_end(moment.date()))
