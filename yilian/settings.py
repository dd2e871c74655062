"""Where yilian keeps its runtime data, from the environment with embedded defaults.

One place for paths so the CLI, the DAGs and the tests agree; every path can be moved with an
environment variable (YILIAN_DATA_DIR moves them all).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_TZ = "Asia/Shanghai"
FIRST_DAY_ENV = "YILIAN_FIRST_DAY"
LAST_DAY_ENV = "YILIAN_LAST_DAY"


@dataclass(frozen=True)
class Paths:
    data_dir: Path

    @property
    def sim_dir(self) -> Path:
        """The embedded simulated region: where the sources' default connections point."""
        return self.data_dir / "sim"

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def warehouse(self) -> Path:
        return self.data_dir / "warehouse" / "yilian.duckdb"

    @property
    def publish_dir(self) -> Path:
        """Read-only copies for BI: marts.duckdb and one Parquet file per mart."""
        return self.data_dir / "publish"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def data_docs_dir(self) -> Path:
        return self.reports_dir / "data_docs"


def paths() -> Paths:
    return Paths(Path(os.environ.get("YILIAN_DATA_DIR", PROJECT_ROOT / "data")).resolve())


def schedule_window() -> tuple[date, date | None]:
    """The first and last business day the schedule covers (YILIAN_FIRST_DAY, default
    2026-11-01; YILIAN_LAST_DAY, default none: every night from then on).

    A deployment starts on its first day; a bounded window is for a region whose data ends,
    such as the simulated week of the main job, so the scheduler never runs days that have no
    data. Backfills may still ask for any day.
    """
    first = date.fromisoformat(os.environ.get(FIRST_DAY_ENV, "2026-11-01"))
    last = os.environ.get(LAST_DAY_ENV)
    return first, date.fromisoformat(last) if last else None


@contextmanager
def scoped_environ(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, unset) environment variables for the block, then restore them."""
    saved = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
