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
    assert "[simulator]" in out and "seconds/day" in out


@pytest.mark.slow  # four `dbt build`s of ~30 s each, whatever the scale
def test_nightly_build_and_history_print_their_figures(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "HISTORY_CHUNK_DAYS", 1)  # a full build, then an incremental one
    with bench.region(SCALE) as r:
        night2 = bench.nightly(r)
        again = bench.history(r, 3, night2)
    out = capsys.readouterr().out
    for label in (
        "[dbt] nightly dbt build, scale 0.02",
        "full build after day 1",
        "nightly incremental build, 2026-11-02",
        "DuckDB floor: night partition",
        "DuckDB floor: every raw row",
        "[history] the night after 3 days of history, scale 0.02",
        "bulk raw history",
        "history built (2 × dbt build)",
        "after 3 days",
        "the night",
    ):
        assert label in out
    assert "FAILED" not in out
    assert night2.build.success and again.build.success
    # the same night's rows, over a warehouse that now holds two more days
    assert again.floor.night_rows == night2.floor.night_rows
    assert 0 < night2.floor.night_rows <= night2.floor.all_rows < again.floor.all_rows


def test_bulk_history_writes_the_days_before_day_one_with_unique_ids() -> None:
    import duckdb

    from yilian.settings import paths

    with bench.region(SCALE) as r:
        r.simulate(1)
        r.ingest(r.day(1))
        bench.bulk_history(r.day(1), [2, 1])
        con = duckdb.connect(str(paths().warehouse), read_only=True)
        per_day = con.execute(
            "select ds, count(*), count(distinct encounter_id), min(visit_at)::date "
            "from raw.hospital__encounters group by ds order by ds"
        ).fetchall()
        audited = con.execute("select count(distinct ds) from audit.load_runs").fetchone()[0]
        con.close()
    days = [r.day(1).toordinal() - 2, r.day(1).toordinal() - 1, r.day(1).toordinal()]
    assert [d.toordinal() for d, *_ in per_day] == days
    assert len({n for _, n, _, _ in per_day}) == 1  # each day as large as day 1
    assert all(n == distinct for _, n, distinct, _ in per_day)
    assert all(first >= d for d, _, _, first in per_day)  # events moved with their day
    assert audited == 3


def _task_like_process(ready: object) -> None:
    """A child titled as Airflow titles a task process, holding ~200 MiB for a moment."""
    import time

    from setproctitle import setproctitle

    setproctitle("airflow worker -- 0190abcd-0000-7000-8000-00000000beef")
    block = bytearray(200 * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])  # touch every page: resident, not just reserved
    ready.set()
    time.sleep(2)


def test_rss_sampler_finds_each_task_process_by_its_title() -> None:
    import multiprocessing as mp

    from yilian.dev.night_bench import RssSampler

    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    with RssSampler() as rss:
        child = ctx.Process(target=_task_like_process, args=(ready,))
        child.start()
        assert ready.wait(30)
        child.join()
    task = "0190abcd000070008000" + "00000000beef"  # the UUID as SQLite keeps it: no dashes
    assert rss.per_task_kib[task] >= 200 * 1024
    assert rss.peak_total_kib >= rss.per_task_kib[task]
