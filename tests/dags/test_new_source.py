"""A fourth source needs its module, its registry line, its suites and a one-line DAG file:
the generic steps, the DAG factory, raw's DDL and the generated dbt sources take it as it is."""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb
import pytest

from yilian import contracts
from yilian.sources import SOURCES
from yilian.sources.base import Option, Source, TableSpec, columns


class LabCentre(Source):
    name = "lab"
    title = "regional lab centre (区域检验中心)"
    description = "Loaded by the lab DAG."
    options = {"batch": Option(100, "integer", "Results per request.", minimum=1)}
    tables = (
        TableSpec(
            "lab",
            "results",
            "lab_result",
            "One row per reported lab result.",
            ("result_id",),
            columns(
                ("result_id", "string", "Result identifier."),
                ("facility_code", "string", "Facility that ordered the test."),
                "patient",
                ("reported_at", "timestamp", "When the result was reported."),
            ),
        ),
    )

    def extract(self, ds: date, batch: int = 100) -> dict[str, Any]:
        raise NotImplementedError


@pytest.fixture
def with_lab(monkeypatch: pytest.MonkeyPatch) -> Source:
    lab = LabCentre()
    monkeypatch.setitem(SOURCES, lab.name, lab)
    return lab


def test_the_factory_builds_its_dag_with_its_options(with_lab: Source) -> None:
    from yilian.dags import source_dag

    dag = source_dag("lab", doc_md="### yilian_lab")
    assert dag.dag_id == "yilian_lab"
    assert sorted(dag.task_ids) == sorted(
        [
            "extract",
            "pseudonymise_and_land",
            "wait_for_facility_master",
            "validate",
            "load",
            "data_docs",
        ]
    )  # it has no facility master of its own, so it waits for the hospital platform's day
    assert dag.get_task("validate").upstream_task_ids == {
        "pseudonymise_and_land",
        "wait_for_facility_master",
    }
    assert dag.params["batch"] == 100
    assert [a.uri for a in dag.get_task("load").outlets] == ["yilian://raw/lab"]


def test_raw_and_dbt_sources_come_from_its_definition(with_lab: Source, tmp_path) -> None:
    from yilian.warehouse.raw import ensure_schema

    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        ensure_schema(con)
        cols = [r[0] for r in con.execute("describe raw.lab__results").fetchall()]
    assert cols == [*with_lab.tables[0].column_names, "ds"]
    (doc,) = contracts.dbt_sources(with_lab)["sources"]
    assert doc["tables"][0]["identifier"] == "lab__results"
    assert contracts.dbt_sources_path(with_lab).name == "_lab__sources.yml"
    assert contracts.schema_block(with_lab.tables[0])[0]["kwargs"]["column_set"][-1] == "_duplicate"
