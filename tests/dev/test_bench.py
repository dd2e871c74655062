"""Smoke test of `yilian bench`'s pieces at a tiny scale: they run and print labelled figures.

Timings are machine-dependent, so nothing here asserts on them.
"""

from __future__ import annotations

import os

import pytest

from yilian.dev import bench

SCALE = 0.02


def test_scratch_installation_is_undone_afterwards() -> None:
    before = {key: os.environ.get(key) for key in ("YILIAN_DATA_DIR", "YILIAN_PSEUDONYM_KEY")}
    with bench.region(SCALE) as r:
        assert os.environ["YILIAN_DATA_DIR"] == str(r.root / "data")
        assert os.environ["YILIAN_PSEUDONYM_KEY"] != before["YILIAN_PSEUDONYM_KEY"]
        assert "AIRFLOW_CONN_YILIAN_IMAGING" in os.environ
    assert {key: os.environ.get(key) for key in before} == before
    assert not r.root.exists()


def test_a_stage_whose_process_dies_fails_the_bench_instead_of_hanging_it() -> None:
    import multiprocessing as mp

    from yilian.dev.ingest_bench import child_result

    ctx = mp.get_context("spawn")
    child = ctx.Process(target=os._exit, args=(3,))  # dies without putting a result
    child.start()
    with pytest.raises(RuntimeError, match=r"hospital extract died in the benchmark \(exit 3\)"):
        child_result(child, ctx.Queue(), "hospital extract")


def test_simulator_section_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    bench.simulator_section((SCALE,))
    out = capsys.readouterr().out
    assert "[a] simulator" in out and "seconds/day" in out


@pytest.mark.slow  # three `dbt build`s of ~30 s each, whatever the scale
def test_nightly_build_and_history_print_their_figures(capsys: pytest.CaptureFixture[str]) -> None:
    with bench.region(SCALE) as r:
        night2 = bench.nightly(r)
        night3 = bench.history(r, 2, night2)
    out = capsys.readouterr().out
    for label in (
        "[c] nightly dbt build, scale 0.02",
        "full build after day 1",
        "nightly incremental build, 2026-11-02",
        "DuckDB floor: night partition",
        "DuckDB floor: every raw row",
        "[d] history independence, scale 0.02, 2 days of history",
        "nightly incremental build, 2026-11-03",
        "night 3 vs night 2",
    ):
        assert label in out
    assert "FAILED" not in out
    assert night2.build.success and night3.build.success
    assert 0 < night2.floor.night_rows <= night2.floor.all_rows < night3.floor.all_rows
