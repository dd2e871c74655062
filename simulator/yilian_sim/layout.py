"""Where the simulated region keeps its three source systems on disk.

The simulator owns this layout; the product only knows it as the embedded default of its
connections (a SQLite URL, a drop folder, the imaging API the simulator serves).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    """The source systems under one folder (the product's `data/sim/`)."""

    sim_dir: Path

    @property
    def hospital_db(self) -> Path:
        return self.sim_dir / "hospital.sqlite"

    @property
    def imaging_store(self) -> Path:
        return self.sim_dir / "imaging.sqlite"

    @property
    def prescription_drop(self) -> Path:
        return self.sim_dir / "drop"
