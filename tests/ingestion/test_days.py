"""Whole days: blocked days keep the warehouse, flaky APIs are retried through, and re-running
a day — twice, or after later days — leaves exactly the warehouse of one in-order run.

One region (two days, a few invalid IDs every day so quarantine is never empty) is loaded once;
each test changes a source, checks the outcome, and puts the source back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from yilian_sim.config import FaultSpec

from tests.conftest import START, Region
from tests.ingestion.warehouse import assert_same, query, snapshot
from yilian.settings import paths
from yilian.sources import SOURCES
from yilian.sources.base import ExtractError
from yilian.sources.imaging import ATTEMPTS, ImagingApiError
from yilian.steps import ingest

DAY2 = START + timedelta(days=1)
BASE_FAULTS = (FaultSpec("invalid_resident_ids", rate=0.02),)


def run(source: str, ds, **options) -> dict:
    fast = {"retry_backoff": 0.05} if source == "imaging" else {}
    return ingest.run_day(source, ds, f"test__{source}__{ds}", **fast, **options)


@pytest.fixture(scope="module")
def loaded(module_region: Region, module_imaging_api) -> dict:
    """Two days of every source, loaded in order; the in-order warehouse snapshot."""
    module_region.faults = BASE_FAULTS
    module_region.simulate(2)
    for ds in (START, DAY2):
        for source in SOURCES:
            run(source, ds)
    return snapshot()


@contextmanager
def fault_on_day2(region: Region, fault: FaultSpec) -> Iterator[None]:
    """Rewrite day 2 of the sources with `fault` on, and back to normal afterwards."""
    region.faults = (*BASE_FAULTS, fault)
    region.simulate([DAY2])
    try:
        yield
    finally:
        region.faults = BASE_FAULTS
        region.simulate([DAY2])


def test_in_order_load_has_quarantine_and_no_blocks(loaded) -> None:
    assert len(loaded["quarantine.rejected_rows"]) > 0
    audit = query("select * from audit.load_runs")
    assert (audit.outcome == "loaded").all()


def test_rerunning_a_day_twice_and_after_later_days_changes_nothing(loaded) -> None:
    for source in SOURCES:
        run(source, DAY2)
        run(source, DAY2)
        run(source, START)  # out of order: after DAY2 was loaded
    assert_same(loaded, snapshot())


def test_renamed_column_blocks_on_schema_drift(module_region: Region, loaded) -> None:
    with fault_on_day2(
        module_region, FaultSpec("renamed_column", day=DAY2, column="patient_id_no")
    ):
        with pytest.raises(ingest.DataQualityBlocked) as blocked:
            run("prescriptions", DAY2)
        landed = paths().landing_dir / "source=prescriptions/table=prescriptions"
        columns = query(f"select * from read_parquet('{landed}/ds={DAY2}/part-0.parquet')").columns
    message = str(blocked.value)
    assert f"prescriptions {DAY2}" in message and "prescriptions__prescriptions" in message
    assert "schema_columns" in message and "id_card_no" in message  # the renamed column, named
    assert "id_card_no" not in columns  # an unknown column never lands: it could be PII
    assert_same(loaded, snapshot())
    audit = query("select * from audit.load_runs where ds = ? and outcome = 'blocked'", [DAY2])
    assert set(audit.table_name) == {"prescriptions", "dispenses"}


def test_truncated_file_fails_naming_file_and_counts(module_region: Region, loaded) -> None:
    truncated = FaultSpec("truncated_file", day=DAY2, rate=0.2)
    with fault_on_day2(module_region, truncated), pytest.raises(ExtractError) as failed:
        run("prescriptions", DAY2)
    message = str(failed.value)
    assert f"prescriptions_{DAY2}.csv" in message
    assert "expected" in message and "rows" in message and "sha256" in message
    assert_same(loaded, snapshot())


def test_too_many_bad_rows_block_with_examples(module_region: Region, loaded) -> None:
    many_bad = FaultSpec("invalid_resident_ids", day=DAY2, rate=0.5)
    with fault_on_day2(module_region, many_bad), pytest.raises(ingest.DataQualityBlocked) as err:
        run("hospital", DAY2)
    message = str(err.value)
    assert "hospital__encounters" in message and "bad_row_share" in message
    assert "e.g. keys ['E" in message  # record ids, never personal data
    assert_same(loaded, snapshot())


def test_missing_manifest_is_not_ready_and_extract_refuses(loaded) -> None:
    later = DAY2 + timedelta(days=1)
    assert ingest.delivered("prescriptions", DAY2) and not ingest.delivered("prescriptions", later)
    with pytest.raises(ExtractError, match="manifest .* is missing"):
        ingest.extract("prescriptions", later)


@pytest.mark.parametrize("fault", ["api_errors", "api_rate_limit", "slow_api"])
def test_api_faults_are_retried_through(module_imaging_api, loaded, fault: str) -> None:
    module_imaging_api.inject_fault(fault, 2, delay=0.5)
    run("imaging", DAY2)
    assert_same(loaded, snapshot())


def test_an_api_that_keeps_failing_names_day_url_and_status(module_imaging_api, loaded) -> None:
    module_imaging_api.inject_fault("api_errors", ATTEMPTS)  # all used up here
    with pytest.raises(ImagingApiError) as failed:
        ingest.extract("imaging", DAY2, retry_backoff=0.01)
    message = str(failed.value)
    assert f"imaging {DAY2}" in message and "/fhir/ImagingStudy" in message
    assert "HTTP 503" in message and "failed 6 times" in message


def test_paging_and_chunking_do_not_change_what_is_extracted(module_imaging_api, loaded) -> None:
    """Every `link[next]` is followed and every chunk kept: small pages give the same rows."""
    import pandas as pd

    imaging, hospital = SOURCES["imaging"], SOURCES["hospital"]
    one_page = imaging.extract(DAY2, page_size=1000)
    many_pages = imaging.extract(DAY2, page_size=2)
    assert len(many_pages["studies"]) > 2
    for name in one_page:
        pd.testing.assert_frame_equal(one_page[name], many_pages[name])
    big, small = hospital.extract(DAY2), hospital.extract(DAY2, chunk_rows=7)
    assert len(small["encounters"]) > 7
    for name in big:
        pd.testing.assert_frame_equal(big[name], small[name])


def test_a_day_without_activity_is_blocked_as_an_empty_feed(region: Region, imaging_api) -> None:
    """A day the sources have nothing for (after the simulated clock) is no crash: the hospital
    platform's day is blocked, saying its feeds are empty; nothing is loaded."""
    region.simulate(1)
    empty_day = START + timedelta(days=5)
    with pytest.raises(ingest.DataQualityBlocked) as blocked:
        run("hospital", empty_day)
    first = str(blocked.value).split(" | ")[0]
    assert first.startswith(f"hospital {empty_day} BLOCKED: table hospital__encounters")
    assert "the feed is empty" in first
    with pytest.raises(ingest.DataQualityBlocked, match=f"hospital {empty_day} is blocked"):
        ingest.facility_master_loaded(empty_day)  # the other sources' days fail at once


def test_an_empty_imaging_batch_gets_its_check_columns(region: Region) -> None:
    from yilian.privacy import pseudonymise
    from yilian.quality.checks import with_checks
    from yilian.sources.frames import empty

    imaging = SOURCES["imaging"]
    specs = {spec.table: spec for spec in imaging.tables}
    frames = {
        name: pseudonymise(empty(spec, "imaging test"), spec, b"k" * 32)
        for name, spec in specs.items()
    }
    checked = with_checks(frames, specs, paths().warehouse, START)
    assert "_study_read_requested_at" in checked["reports"] and checked["reports"].empty
