"""The semantic layer: any indicator at any grain, through MetricFlow, on the published marts.

The metrics are defined once in the dbt project (`models/marts/*/_*__metrics.yml`, semantic
models beside them); dbt writes them to `semantic_manifest.json` on every parse or build.
MetricFlow plans the query from that manifest and renders DuckDB SQL, which runs read-only on
the published copy (what BI sees), so ratios are recomputed from their numerator and
denominator at the grain asked for.

MetricFlow's own `mf` CLI asks PyPI for a newer version on every call (`update_checker`, with no
switch to turn it off); yilian calls MetricFlow's engine instead, which sends nothing anywhere.

    from yilian.warehouse.semantic import query_metrics
    query_metrics(["in_county_visit_rate"], ["metric_time__month", "county"])
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from yilian.settings import paths

#: A `where` that keeps the region's counties (dim_region): without it a region-wide figure also
#: counts what the platform sees outside the region (visits at provincial hospitals, visitors).
IN_REGION = "{{ Dimension('county__prefecture_code') }} is not null"


class _DuckDbDialect:
    """What MetricFlow needs to plan and render a query for DuckDB (it never executes here)."""

    @property
    def sql_engine_type(self):
        from metricflow.protocols.sql_client import SqlEngine

        return SqlEngine.DUCKDB

    @property
    def sql_plan_renderer(self):
        from metricflow.sql.render.duckdb_renderer import DuckDbSqlPlanRenderer

        return DuckDbSqlPlanRenderer()


def semantic_manifest_path(target_path: Path | str | None = None) -> Path:
    """The manifest of the last dbt invocation in `target_path`; by default the dbt docs the
    marts DAG generates (reports/dbt_docs), which always match the project."""
    return Path(target_path or paths().reports_dir / "dbt_docs") / "semantic_manifest.json"


def indicators(target_path: Path | str | None = None) -> list[dict[str, Any]]:
    """The metrics that are national indicators: name, label and `meta.indicator`."""
    manifest = semantic_manifest_path(target_path)
    document = json.loads(manifest.read_text(encoding="utf-8"))
    return [
        {"name": m["name"], "label": m["label"], **m["config"]["meta"]["indicator"]}
        for m in document["metrics"]
        if "indicator" in (m.get("config") or {}).get("meta", {})
    ]


def format_value(metric_name: str, value: float | None) -> str:
    """A stored value as people read it: rates and shares as percentages."""
    if value is None or value != value:
        return "—"
    if metric_name.endswith(("_rate", "_share")):
        return f"{value:.1%}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.3g}"


def _engine(manifest: Path):
    from metricflow.engine.metricflow_engine import MetricFlowEngine
    from metricflow_semantics.model.dbt_manifest_parser import (
        parse_manifest_from_dbt_generated_manifest,
    )
    from metricflow_semantics.model.semantic_manifest_lookup import SemanticManifestLookup

    if not manifest.exists():
        raise FileNotFoundError(
            f"{manifest}: no semantic manifest (the marts DAG's dbt docs step writes it)"
        )
    document = json.loads(manifest.read_text(encoding="utf-8"))
    # Relations without the database: the SQL then runs on whichever DuckDB file is open (the
    # published copy is named differently from the warehouse dbt built).
    relations = [s["node_relation"] for s in document["semantic_models"]]
    relations += [t["node_relation"] for t in document["project_configuration"]["time_spines"]]
    for relation in relations:
        relation["database"] = None
        relation["relation_name"] = f'"{relation["schema_name"]}"."{relation["alias"]}"'
    lookup = SemanticManifestLookup(
        parse_manifest_from_dbt_generated_manifest(manifest_json_string=json.dumps(document))
    )
    return MetricFlowEngine(semantic_manifest_lookup=lookup, sql_client=_DuckDbDialect())


def metrics_sql(
    metrics: Sequence[str],
    group_by: Sequence[str],
    *,
    where: Sequence[str] = (),
    target_path: Path | str | None = None,
) -> str:
    """The DuckDB SQL MetricFlow plans for `metrics` by `group_by` (e.g. `metric_time__month`,
    `county`, `facility_version__tier`, `modality`)."""
    from metricflow.engine.metricflow_engine import MetricFlowQueryRequest

    request = MetricFlowQueryRequest.create(
        metric_names=list(metrics),
        group_by_names=list(group_by),
        where_constraints=list(where) or None,
    )
    statement = _engine(semantic_manifest_path(target_path)).explain(request).sql_statement
    return statement.sql


def query_metrics(
    metrics: Sequence[str],
    group_by: Sequence[str],
    *,
    where: Sequence[str] = (),
    database: Path | str | None = None,
    target_path: Path | str | None = None,
) -> pd.DataFrame:
    """`metrics` by `group_by`, read-only from `database` (default: the published marts)."""
    import duckdb

    sql = metrics_sql(metrics, group_by, where=where, target_path=target_path)
    db = Path(database) if database else paths().publish_dir / "yilian_marts.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).df()
