"""The operator pages (yilian.operator_ui): the quality snapshot the writers export, Data Docs
that keep every validation, and the pages the plugin serves, all offline and behind login."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.ingestion.warehouse import query
from tests.region import Region
from tests.ui import quality_region
from tests.ui.quality_region import BLOCKED_DAY, LOADED_DAYS, RUNS
from yilian import operator_ui
from yilian.settings import paths

#: an asset a page loads (not a link a person may follow)
_LOADS = re.compile(r'<(?:script|link|img)\b[^>]*?\b(?:src|href)="([^"]+)"')


@pytest.fixture(scope="module")
def loaded(module_region: Region) -> Region:
    quality_region.load(module_region)
    return module_region


def test_loads_and_blocked_days_export_the_quality_snapshot(loaded) -> None:
    snapshot = operator_ui.read_snapshot()
    runs = snapshot["load_runs"]
    assert len(runs) == len(query("select * from audit.load_runs"))  # the whole audit table
    outcomes = runs.groupby(runs.ds.astype(str)).outcome.agg(set)
    assert outcomes[str(BLOCKED_DAY)] == {"blocked"}  # written by record_blocked
    assert all(outcomes[str(ds)] == {"loaded"} for ds in LOADED_DAYS)
    summary = snapshot["rejected_summary"]
    assert summary.rows.sum() == len(query("select * from quarantine.rejected_rows")) > 0
    assert set(summary.columns) == {"source", "ds", "table_name", "rule", "rows", "example_reason"}
    assert not list((paths().reports_dir / "quality").glob(".*tmp"))


def test_a_validation_three_runs_back_keeps_its_data_docs_page(loaded) -> None:
    runs = query("select ds, data_docs_path from audit.load_runs")
    three_back = runs[runs.ds == pd.Timestamp(RUNS[-4])].data_docs_path
    assert len(three_back) > 0 and all(Path(p).is_file() for p in three_back)
    index = (paths().data_docs_dir / "index.html").read_text(encoding="utf-8")
    assert all(quality_region.run_id(ds) in index for ds in RUNS)


def test_the_quality_page_shows_quarantine_and_the_blocked_day(loaded) -> None:
    snap = operator_ui.read_snapshot()
    summary = operator_ui.day_summary(snap["load_runs"], snap["rejected_summary"])
    days = {d["ds"]: d for d in summary}
    first = days[LOADED_DAYS[0]]
    expected = query(
        f"select count(*) n from quarantine.rejected_rows where ds = '{LOADED_DAYS[0]}'"
    ).n[0]
    assert first["rows_quarantined"] == expected > 0
    assert first["reasons"][0]["rule"] and first["reasons"][0]["example"]
    assert days[BLOCKED_DAY]["outcome"] == "blocked" and days[BLOCKED_DAY]["blocked_message"]
    page = TestClient(operator_ui.create_app()).get("/quality")
    assert page.status_code == 200
    assert f'data-ds="{LOADED_DAYS[0]}"' in page.text and ">blocked<" in page.text


def test_data_docs_are_served_without_the_internet(loaded) -> None:
    client = TestClient(operator_ui.create_app())
    page_path = query(
        f"select data_docs_path from audit.load_runs where ds = '{RUNS[-4]}' limit 1"
    ).data_docs_path[0]
    rel = Path(page_path).relative_to(paths().data_docs_dir).as_posix()
    for url in ("/data-docs/index.html", f"/data-docs/{rel}"):
        page = client.get(url)
        assert page.status_code == 200
        loads = _LOADS.findall(page.text)
        assert loads and [u for u in loads if re.match(r"(https?:)?//", u)] == []
        for asset in loads:
            if asset.endswith("favicon.ico"):
                continue  # GX writes validation pages' favicon one level too shallow
            assert client.get(urljoin(url, asset)).status_code == 200, asset


def test_every_page_needs_an_airflow_login() -> None:
    from airflow.api_fastapi.core_api.security import requires_authenticated
    from fastapi import Depends

    client = TestClient(operator_ui.create_app([Depends(requires_authenticated())]))
    for _, path, _ in operator_ui.PAGES:
        assert client.get(f"/{path}").status_code == 401
    assert client.get("/vendor/jquery@3.7.1/dist/jquery.min.js").status_code == 401
    browser = TestClient(
        operator_ui.create_app([Depends(requires_authenticated())], lambda n: f"/login?next={n}")
    )
    sent = browser.get("/quality", headers={"accept": "text/html"}, follow_redirects=False)
    assert (sent.status_code, sent.headers["location"]) == (303, "/login?next=/quality")
    hrefs = [v["href"] for v in operator_ui.EXTERNAL_VIEWS]
    assert all(h.startswith("yilian/") for h in hrefs)
