"""Where yilian keeps its runtime data, from the environment with embedded defaults.

One place for paths so the CLI, the DAGs and the tests agree; every path can be moved with an
environment variable (YILIAN_DATA_DIR moves them all).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_TZ = "Asia/Shanghai"


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
