"""One schema definition per source table (yilian.sources): everything else must agree with it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.dbt.dbt_raw_fixture import COLUMNS
from yilian import contracts
from yilian.sources import SOURCES, all_tables


def test_suites_dbt_sources_and_contracts_doc_match_the_definition() -> None:
    assert contracts.drift() == []


def test_the_dbt_fixture_fills_exactly_the_defined_columns() -> None:
    assert set(COLUMNS) == {spec.raw_name for spec in all_tables()}
    for spec in all_tables():
        assert sorted(COLUMNS[spec.raw_name]) == sorted([*spec.column_names, "ds"]), spec.raw_name


def test_drift_in_any_generated_place_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suites = shutil.copytree(contracts.SUITES_DIR, tmp_path / "expectations")
    staging = shutil.copytree(contracts.DBT_STAGING, tmp_path / "staging")
    doc = tmp_path / "CONTRACTS.md"
    shutil.copy(contracts.CONTRACTS_MD, doc)
    monkeypatch.setattr(contracts, "SUITES_DIR", suites)
    monkeypatch.setattr(contracts, "suite_path", lambda spec: suites / f"{spec.raw_name}.json")
    monkeypatch.setattr(contracts, "DBT_STAGING", staging)
    monkeypatch.setattr(contracts, "CONTRACTS_MD", doc)
    assert contracts.drift() == []

    suite_file = suites / "imaging__studies.json"
    suite = json.loads(suite_file.read_text(encoding="utf-8"))
    suite["expectations"][0]["kwargs"]["column_set"].remove("modality")
    suite_file.write_text(json.dumps(suite, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    sources_file = staging / "hospital" / "_hospital__sources.yml"
    sources_file.write_text(sources_file.read_text().replace("Alliance name.", "Name."))
    doc.write_text(doc.read_text().replace("| `dispense_id` | string |", "| `dispense_id` | int |"))
    (suites / "lab__results.json").write_text("{}")

    found = {(item.path.name, item.what) for item in contracts.drift()}
    assert found == {
        ("imaging__studies.json", contracts.FROM_SOURCES),
        ("_hospital__sources.yml", contracts.FROM_SOURCES),
        ("CONTRACTS.md", contracts.FROM_SOURCES),
        ("lab__results.json", "a suite for a table no source defines"),
    }
    (suites / "lab__results.json").unlink()
    contracts.write()
    assert contracts.drift() == []
    assert (
        "modality" in json.loads(suite_file.read_text())["expectations"][0]["kwargs"]["column_set"]
    )


def test_every_source_table_has_a_described_column_list() -> None:
    for system in SOURCES.values():
        assert system.tables, system.name
        for spec in system.tables:
            assert spec.description and all(c.description for c in spec.columns), spec.raw_name
            assert set(spec.key) <= set(spec.column_names), spec.raw_name


def test_the_indicator_catalogue_is_generated_from_the_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalogue = tmp_path / "INDICATORS.md"
    shutil.copy(contracts.INDICATORS_MD, catalogue)
    monkeypatch.setattr(contracts, "INDICATORS_MD", catalogue)
    assert contracts.drift() == []
    text = catalogue.read_text(encoding="utf-8")
    for metric in contracts.indicator_metrics():  # every indicator, with its mart column
        meta = metric["config"]["meta"]["indicator"]
        assert f"`{metric['name']}`" in text and f"`{meta['mart']}.{meta['column']}`" in text
    assert "≥ 90.0% (景洪 2021)" in text and "≥ 65.0% (景洪 2021)" in text
    assert "| DX | 数字X线摄影(DR) | 25 |" in text
    catalogue.write_text(text.replace("县域内就诊率", "就诊率"), encoding="utf-8")
    assert [(d.path, d.what) for d in contracts.drift()] == [(catalogue, contracts.FROM_METRICS)]
    contracts.write()
    assert catalogue.read_text(encoding="utf-8") == text
