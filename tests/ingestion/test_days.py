"""Whole days: blocked days keep the warehouse, flaky APIs are retried through, and re-running
a day — twice, or after later days — leaves exactly the warehouse of one in-order run.

One region (two days, a few invalid IDs every day so quarantine is never empty) is loaded once;
each test changes a source, checks the outcome, and puts the source back.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from yilian_sim.config import FaultSpec

from tests.ingestion.warehouse import assert_same, query, reconciled, snapshot
from tests.region import START, Region
from yilian.settings import paths
from yilian.sources import SOURCES
from yilian.sources.base import ExtractError
from yilian.sources.imaging import ATTEMPTS, ImagingApiError, PaginationError
from yilian.steps import ingest

DAY2 = START + timedelta(days=1)
BASE_FAULTS = (FaultSpec("invalid_resident_ids", rate=0.02),)


def first_event(trigger, seconds: float = 10):
    """The first event a trigger fires, run as the triggerer runs it (its own event loop)."""

    async def first():
        async for event in trigger.run():
            return event

    return asyncio.run(asyncio.wait_for(first(), seconds))


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
    assert f"prescriptions_{DAY2}.csv" in message and "not the file the manifest lists" in message
    assert "rows" in message and "bytes" in message and "sha256" in message
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


def test_the_waits_end_their_task_from_the_triggerer(loaded) -> None:
    """The real checks, polled as the triggerer polls them: a ready day ends the task there; a
    day not yet delivered keeps waiting; a run without a business day fails, saying so."""
    from airflow.triggers.base import TaskFailedEvent, TaskSuccessEvent

    from yilian.steps.waits import DayReadyTrigger

    # day 1: no test here blocks it (a day the tests above block is blocked for its waits too)
    for check, source in (("facility_master", "imaging"), ("delivery", "prescriptions")):
        event = first_event(DayReadyTrigger(check, source, START.isoformat()))
        assert isinstance(event, TaskSuccessEvent), (check, source)
    later = (DAY2 + timedelta(days=1)).isoformat()
    with pytest.raises(TimeoutError):
        first_event(DayReadyTrigger("delivery", "prescriptions", later, poll_seconds=0.1), 1)
    no_day = DayReadyTrigger("delivery", "prescriptions", "")
    assert isinstance(first_event(no_day), TaskFailedEvent)


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
    from airflow.triggers.base import TaskFailedEvent

    from yilian.steps.waits import DayReadyTrigger

    region.simulate(1)
    empty_day = START + timedelta(days=5)
    with pytest.raises(ingest.DataQualityBlocked) as blocked:
        run("hospital", empty_day)
    first = str(blocked.value).split(" | ")[0]
    assert first.startswith(f"hospital {empty_day} BLOCKED: table hospital__encounters")
    assert "the feed is empty" in first
    with pytest.raises(ingest.DataQualityBlocked, match=f"hospital {empty_day} is blocked"):
        ingest.facility_master_loaded(empty_day)  # the other sources' days fail at once
    waiting = DayReadyTrigger("facility_master", "imaging", empty_day.isoformat())
    assert isinstance(first_event(waiting), TaskFailedEvent)  # their waits too


def test_an_empty_imaging_batch_gets_its_check_columns(region: Region) -> None:
    from yilian.privacy import pseudonymise
    from yilian.quality.checks import with_checks
    from yilian.sources.frames import empty
    from yilian.warehouse import raw

    imaging = SOURCES["imaging"]
    specs = {spec.table: spec for spec in imaging.tables}
    frames = {
        name: pseudonymise(empty(spec, "imaging test"), spec, b"k" * 32, START)
        for name, spec in specs.items()
    }
    with raw.reader(paths().warehouse) as warehouse:
        checked = with_checks(frames, specs, warehouse, START)
    assert "_study_read_requested_at" in checked["reports"] and checked["reports"].empty


# --- the failures real source systems produce (issue 11) ----------------------------------


def test_a_looping_next_link_fails_at_once_naming_the_url(module_imaging_api, loaded) -> None:
    """The server keeps answering with `link[next]` = the page itself: the extractor stops
    before fetching it again (one request, not thousands) and nothing is staged or loaded."""
    store = module_imaging_api.store
    before = len(store.fault_hits())
    module_imaging_api.inject_fault("looping_next_link", 1000)
    try:
        with pytest.raises(PaginationError) as failed:
            ingest.extract("imaging", DAY2, retry_backoff=0.01)
    finally:
        store.disarm_faults()
    message = str(failed.value)
    assert message.startswith(f"imaging {DAY2}: the ImagingStudy search loops: link[next]")
    assert "/fhir/ImagingStudy?" in message and "already fetched" in message
    assert len(store.fault_hits()) - before == 1
    assert not (paths().data_dir / "staging" / "imaging" / DAY2.isoformat()).exists()
    assert_same(loaded, snapshot())


def test_a_garbled_file_is_reported_as_not_the_manifests_file(
    module_region: Region, loaded
) -> None:
    with (
        fault_on_day2(module_region, FaultSpec("garbled_file", day=DAY2, rate=1.0)),
        pytest.raises(ExtractError) as failed,
    ):
        run("prescriptions", DAY2)
    message = str(failed.value)
    assert f"prescriptions_{DAY2}.csv is not the file the manifest lists" in message
    assert "GB18030" not in message  # checked before any decoding
    assert_same(loaded, snapshot())


def test_utf8_with_a_bom_that_the_manifest_declares_loads_the_same_rows(
    module_region: Region, loaded
) -> None:
    with fault_on_day2(module_region, FaultSpec("utf8_bom", day=DAY2)):
        run("prescriptions", DAY2)
        assert_same(loaded, snapshot())


def test_a_file_in_another_encoding_than_declared_is_blocked_naming_both(
    module_region: Region, loaded
) -> None:
    with (
        fault_on_day2(module_region, FaultSpec("mislabelled_encoding", day=DAY2)),
        pytest.raises(ExtractError) as failed,
    ):
        run("prescriptions", DAY2)
    message = str(failed.value)
    assert (
        "is UTF-8 (it starts with a UTF-8 byte-order mark) but the manifest declares GB18030"
        in message
    )
    assert "\u951f" not in message and "锘" not in message  # no mojibake column name
    assert_same(loaded, snapshot())


def test_implausible_resident_ids_are_quarantined_with_their_reason(
    module_region: Region, loaded
) -> None:
    implausible = FaultSpec("implausible_resident_ids", day=DAY2, rate=0.02)
    with fault_on_day2(module_region, implausible):
        touched = module_region.simulate([DAY2]).faults.keys(
            "hospital", "his_encounter", "implausible_resident_ids"
        )
        run("hospital", DAY2, max_bad_row_share=0.3)
        rows = query(
            "select record_key, reason from quarantine.rejected_rows where ds = ? "
            "and table_name = 'encounters' and rule = 'resident_id_plausible'",
            [DAY2],
        )
        assert touched and set(rows.record_key) == touched
        assert rows.reason.str.contains("passes GB 11643 but fails plausibility").all()
        audit = reconciled(DAY2)
        assert (audit.rows_extracted == audit.rows_loaded + audit.rows_quarantined).all()
        assert (audit.rows_loaded == audit.raw_rows).all()
    run("hospital", DAY2)  # the corrected source, reloaded
    assert_same(loaded, snapshot())


def test_redelivered_rows_are_counted_in_the_audit_and_the_quality_view(
    module_region: Region, loaded
) -> None:
    from fastapi.testclient import TestClient

    from yilian.operator_ui import create_app, day_summary, read_snapshot

    with fault_on_day2(module_region, FaultSpec("redelivered_rows", day=DAY2, rate=0.1)):
        again = module_region.simulate([DAY2]).faults.keys(
            "prescriptions", "prescriptions", "redelivered_rows"
        )
        result = run("prescriptions", DAY2)
        on_day1 = query(
            "select prescription_id from raw.prescriptions__prescriptions where ds = ?", [START]
        )
        expected = len(again & set(on_day1.prescription_id))
        assert expected > 0
        assert result["tables"]["prescriptions"]["redelivered"] == expected
        assert result["tables"]["dispenses"]["redelivered"] == 0
        audit = reconciled(DAY2).set_index(["source", "table_name"])
        assert audit.loc[("prescriptions", "prescriptions"), "rows_redelivered"] == expected
        assert (audit.rows_extracted == audit.rows_loaded + audit.rows_quarantined).all()
        snap = read_snapshot()
        (day,) = [
            d
            for d in day_summary(snap["load_runs"], snap["rejected_summary"])
            if (d["source"], d["ds"]) == ("prescriptions", DAY2)
        ]
        assert day["rows_redelivered"] == expected
        page = TestClient(create_app()).get("/quality").text
        assert f'<td class="n redelivered">{expected}</td>' in page
    run("prescriptions", DAY2)  # the platform's corrected day: nothing delivered again
    assert (reconciled(DAY2).rows_redelivered == 0).all()
    assert_same(loaded, snapshot())


def test_a_changed_pseudonym_key_fails_before_anything_is_written(
    monkeypatch: pytest.MonkeyPatch, loaded
) -> None:
    import secrets
    import shutil

    from yilian.warehouse.raw import quality_dir

    new_key = secrets.token_hex(32)
    monkeypatch.setenv("YILIAN_PSEUDONYM_KEY", new_key)
    with pytest.raises(ingest.PseudonymKeyChanged) as failed:
        run("hospital", DAY2)
    message = str(failed.value)
    assert message.startswith(f"hospital {DAY2}: the pseudonym key of this run (fingerprint")
    assert "is not the key the warehouse was built with" in message and "yilian rekey" in message
    assert new_key not in message and os.environ.get("YILIAN_PSEUDONYM_KEY") == new_key
    assert not (paths().data_dir / "staging" / "hospital" / DAY2.isoformat()).exists()
    # without the snapshot to check against, the load still refuses, in its transaction
    kept = quality_dir().with_name("quality-kept")
    shutil.copytree(quality_dir(), kept)
    (quality_dir() / "pseudonym_key.parquet").unlink()
    try:
        with pytest.raises(ingest.PseudonymKeyChanged, match="Nothing was written"):
            run("hospital", DAY2)
    finally:
        shutil.rmtree(quality_dir())
        kept.rename(quality_dir())
    assert_same(loaded, snapshot())


def test_the_page_bound_follows_the_bundle_total_and_the_served_page_length() -> None:
    from yilian.sources.imaging import _page_bound

    assert _page_bound(19, 19, 500) == 2  # one page, plus one for updates while paging
    assert _page_bound(19, 5, 5) == 5
    assert _page_bound(1000, 100, 500) == 11  # the server capped _count at 100
    assert _page_bound(0, 0, 500) == 1
    assert _page_bound(None, 5, 5) is None  # no total: only a repeated page stops the loop


@pytest.mark.parametrize(
    ("data", "declared", "outcome"),
    [
        ("处方编号,药品\r\n".encode("gb18030"), "GB18030", "处方编号,药品\r\n"),
        (b"\x84\x31\x95\x33" + "处方".encode("gb18030"), "GB18030", "处方"),  # its own BOM
        (codecs.BOM_UTF8 + "处方".encode(), "utf-8", "处方"),
        ("处方编号".encode(), "GB18030", "is UTF-8 (its bytes decode as UTF-8 text)"),
        (codecs.BOM_UTF16_LE + "处方".encode("utf-16-le"), "UTF-8", "is UTF-16 (it starts"),
        (b"ab\xff\xfe\x81", "GB18030", "is not valid GB18030 (byte 0xff at offset 2)"),
        (b"abc", "EBCDIC-9", "declares an unknown encoding 'EBCDIC-9'"),
    ],
)
def test_a_drop_file_is_decoded_in_its_declared_encoding_or_refused_naming_both(
    data: bytes, declared: str, outcome: str
) -> None:
    from yilian.sources.prescriptions import _decode

    if outcome.startswith(("is ", "declares")):
        with pytest.raises(ExtractError, match=re.escape(outcome)) as failed:
            _decode("prescriptions 2026-11-02: f.csv", data, declared)
        assert declared in str(failed.value)  # the encoding expected is always named
    else:
        assert _decode("prescriptions 2026-11-02: f.csv", data, declared) == outcome


def test_a_drop_file_is_read_cell_by_cell_as_text() -> None:
    """Every cell text as delivered (leading zeros, spaces), empty or "" as null, a quoted
    cell over two lines one cell: what `frames.typed` then casts."""
    from yilian.sources.prescriptions import _read_csv

    frame = _read_csv('id,count,note\n007,1,"two\nlines"\n008,,""\n009, 2 ,x\n')
    assert frame.to_dict("list") == {
        "id": ["007", "008", "009"],
        "count": ["1", None, " 2 "],
        "note": ["two\nlines", None, "x"],
    }
    assert all(str(dtype) == "string" for dtype in frame.dtypes)
