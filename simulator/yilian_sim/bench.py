"""How fast one simulated day is generated, per scale: `python -m yilian_sim.bench`.

Time is measured on a plain run; peak memory on a second run under tracemalloc (which slows
Python down, so it would spoil the timing), so the two figures come from separate runs.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from dataclasses import dataclass, fields

from yilian_sim.activity import generate_day
from yilian_sim.config import SimulationConfig
from yilian_sim.model import DayEvents
from yilian_sim.region import build_region


@dataclass(frozen=True)
class BenchResult:
    scale: float
    seconds: float
    events: int
    encounters: int
    peak_mib: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds


def _count(events: DayEvents) -> int:
    return sum(len(getattr(events, f.name)) for f in fields(events) if f.name != "day")


def measure(scale: float, seed: int = 20260101) -> BenchResult:
    """Generate the first day at `scale` twice: once timed, once under tracemalloc."""
    config = SimulationConfig(seed=seed, scale=scale)
    region = build_region(config)
    generate_day(config, region, config.start)  # warm caches shared by every day
    started = time.perf_counter()
    events = generate_day(config, region, config.start)
    seconds = time.perf_counter() - started
    total, encounters = _count(events), len(events.encounters)
    del events
    tracemalloc.start()
    generate_day(config, region, config.start)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return BenchResult(scale, seconds, total, encounters, peak / 2**20)


def run_benchmark(scales: tuple[float, ...] = (1, 10)) -> list[BenchResult]:
    """Measure and print one line per scale."""
    results = []
    print(
        f"{'scale':>6} {'seconds/day':>12} {'events':>9} {'encounters':>11} "
        f"{'events/s':>10} {'peak MiB':>9}"
    )
    for scale in scales:
        r = measure(scale)
        print(
            f"{r.scale:>6g} {r.seconds:>12.2f} {r.events:>9,} {r.encounters:>11,} "
            f"{r.events_per_second:>10,.0f} {r.peak_mib:>9.1f}"
        )
        results.append(r)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scales", nargs="*", type=float, default=[1, 10])
    run_benchmark(tuple(parser.parse_args().scales))


if __name__ == "__main__":
    main()
