"""The embedded-region harness: the main job, the UI launcher and the benchmarks.

The one room of the package allowed to import the simulator (`yilian_sim`): it writes the
simulated region, serves its imaging API, and drives the pipeline against it.
"""

from yilian_sim.layout import Layout

from yilian.settings import paths


def sim_layout() -> Layout:
    """The simulated sources under `data/sim/`, where the embedded default connections look."""
    return Layout(paths().sim_dir)
