"""Run a source's GX suites on its landed batches and turn the results into decisions.

The suites are GX expectation suites kept as files; their rules are evaluated by DuckDB over
the landed partition, the exact thing that will be loaded (yilian.quality.rules: GX's SQL
datasource fails on DuckDB, DESIGN.md, and its pandas engine costs a hundred times DuckDB's
time), and the outcomes are kept as GX validation results, from which GX renders Data Docs
into settings.paths().data_docs_dir. Each expectation's `meta.action` says what a failure
means: `block` stops the whole source for the day (nothing loads), `quarantine` moves the
failing rows to quarantine. A quarantine rule that cannot be evaluated (its column is missing)
blocks, and so does a table whose bad rows exceed the allowed share: past that point the batch
is broken, not a few bad rows.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from yilian.settings import PROJECT_ROOT
from yilian.sources.base import TableSpec

SUITES_DIR = PROJECT_ROOT / "expectations"
SITE = "yilian"
MIN_BAD_ROWS_TO_BLOCK = 10
EXAMPLES = 5
PARTIAL = 20  # unexpected values a result keeps, as GX's SUMMARY format does
log = logging.getLogger(__name__)


@dataclass
class RuleResult:
    rule: str
    action: str
    rows: int
    examples: list[str]
    detail: str


@dataclass
class TableVerdict:
    """What validation decided for one table of one day."""

    table: str
    rows: int
    rejected: dict[int, list[tuple[str, str]]] = field(default_factory=dict)  # row -> (rule, why)
    blocks: list[RuleResult] = field(default_factory=list)
    failures: list[RuleResult] = field(default_factory=list)
    data_docs_path: str | None = None

    @property
    def blocked(self) -> bool:
        return bool(self.blocks)

    def summary(self) -> str:
        """`rule=rows` for every failed rule, for audit.load_runs.rule_failures."""
        return "; ".join(f"{f.rule}={f.rows}" for f in self.failures)


def suite_path(spec: TableSpec) -> Path:
    return SUITES_DIR / f"{spec.raw_name}.json"


def load_suite(spec: TableSpec) -> dict[str, Any]:
    return json.loads(suite_path(spec).read_text(encoding="utf-8"))


def validations_dir(docs_dir: Path) -> Path:
    """Where validation results are kept: beside the Data Docs (reports/gx/validations)."""
    return docs_dir.parent / "gx" / "validations"


def _context(docs_dir: Path) -> Any:
    """A GX context that never phones home and writes Data Docs to `docs_dir`.

    Suites and validation definitions live in memory (nothing but the suite files is
    configuration), but validation results are kept on the filesystem: the Data Docs index
    lists every validation ever run, and an earlier validation's page is never removed (GX
    drops the pages of results its store no longer has).
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    defaults = InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    defaults.stores[defaults.validation_results_store_name]["store_backend"] = {
        "class_name": "TupleFilesystemStoreBackend",
        "base_directory": str(validations_dir(docs_dir)),
    }
    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            analytics_enabled=False,  # health data: no usage events, whatever the environment
            store_backend_defaults=defaults,
            data_docs_sites={},
        ),
    )
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.add_data_docs_site(
        site_name=SITE,
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return context


def record_keys(frame: pd.DataFrame, spec: TableSpec, rows: list[int]) -> list[str]:
    """The key of each row (`a|b` for a compound key), in one pass over the rows' key columns."""
    present = [k for k in spec.key if k in frame.columns]
    if not present:
        return [f"row {r}" for r in rows]
    keys = frame.iloc[rows][present].itertuples(index=False, name=None)
    return ["|".join("" if pd.isna(v) else str(v) for v in key) for key in keys]


def _reason(
    kind: str, kwargs: dict[str, Any], meta: dict[str, Any], frame: pd.DataFrame, row: int
) -> str:
    """A one-line reason for one row: the suite's own wording (`meta.reason`, with {column} and
    {value}) where it has one, else what the expectation asks, with the row's values."""

    def val(col: str) -> str:
        v = frame.at[row, col] if col in frame.columns else None
        return "null" if pd.isna(v) else str(v)

    col = kwargs.get("column", "")
    if "reason" in meta:
        return meta["reason"].format(column=col, value=val(col) if col else "")
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = kwargs["column_A"], kwargs["column_B"]
        return f"{a}={val(a)} is before {b.lstrip('_')}={val(b)}"
    if kind == "expect_column_values_to_not_be_null":
        return f"{col} is null"
    if kind == "expect_column_values_to_match_regex":
        return f"{col}={val(col)} does not match {kwargs['regex']}"
    if kind == "expect_column_values_to_be_between":
        return f"{col}={val(col)} outside [{kwargs.get('min_value')}, {kwargs.get('max_value')})"
    return f"{col}={val(col)} not in {kwargs.get('value_set')}"


def _table_detail(kind: str, kwargs: dict[str, Any], observed: Any) -> str:
    """What a failed table-level expectation saw, in the reader's terms."""
    if kind == "expect_table_columns_to_match_set":
        missing = [c for c in kwargs["column_set"] if c not in observed and not c.startswith("_")]
        return f"missing columns {missing}"
    if kind == "expect_table_row_count_to_be_between" and observed == 0:
        return "the feed is empty: the source delivered no rows for the day"
    column = kwargs.get("column")
    expected = {k: v for k, v in kwargs.items() if k not in ("column", "batch_id")}
    return f"{column + ': ' if column else ''}expected {expected}, observed {observed}"


def _run_name(source: str, ds: date, run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{source}__{ds.isoformat()}__{run_id}")


def validate_tables(
    frames: dict[str, pd.DataFrame],
    landed: dict[str, Path],
    specs: dict[str, TableSpec],
    params: dict[str, dict[str, Any]],
    max_bad_row_share: float,
) -> tuple[dict[str, TableVerdict], dict[str, list[Any]]]:
    """Evaluate every table's suite on its batch (yilian.quality.rules): the decisions, and
    each expectation's outcome (for `results_record`).

    `frames` are the landed partitions (`landed`) with their check columns.
    """
    import duckdb
    import pyarrow as pa

    from yilian.quality import rules

    verdicts: dict[str, TableVerdict] = {}
    evaluated: dict[str, list[rules.Outcome]] = {}
    con = duckdb.connect()
    for name, frame in frames.items():
        spec = specs[name]
        frame = frame.reset_index(drop=True)
        checks = [c for c in frame.columns if c.startswith("_")]
        evaluated[name] = rules.evaluate(
            con,
            load_suite(spec),
            params[name],
            landed[name],
            pa.Table.from_pandas(frame[checks], preserve_index=False) if checks else None,
            {c: str(t) for c, t in frame.dtypes.items()},
            len(frame),
        )
        verdicts[name] = _decide(spec, frame, evaluated[name], max_bad_row_share)
    con.close()
    return verdicts, evaluated


def _json(value: Any) -> Any:
    """A value as a JSON document holds it (GX's results are JSON)."""
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if value is None or (not isinstance(value, (str, bool, int, float)) and pd.isna(value)):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value.item() if hasattr(value, "item") else value


def _result(outcome: Any, frame: pd.DataFrame, batch_id: str) -> dict[str, Any]:
    """One expectation's outcome in the shape of GX's ExpectationValidationResult (the SUMMARY
    result format: counts and the first unexpected values)."""
    from yilian.quality.rules import columns_of

    config = {
        "type": outcome.kind,
        "kwargs": {k: _json(v) for k, v in outcome.kwargs.items()} | {"batch_id": batch_id},
        "meta": outcome.meta,
    }
    if outcome.error:
        return {
            "success": False,
            "expectation_config": config,
            "result": {},
            "exception_info": {
                "raised_exception": True,
                "exception_message": outcome.error,
                "exception_traceback": outcome.error,  # the renderer shows it; no Python error
            },
        }
    if outcome.rows is None:
        result = {"observed_value": _json(outcome.observed)}
    else:
        total, unexpected = len(frame), len(outcome.rows)
        judged = total - outcome.missing
        shown = outcome.rows[:PARTIAL].tolist()
        cols = columns_of(outcome.kind, outcome.kwargs)
        values = [_json(frame[cols].iloc[r].tolist()) for r in shown]
        values = [v if len(cols) > 1 else v[0] for v in values]
        counts: dict[str, int] = {}
        for v in values:
            counts[json.dumps(v)] = counts.get(json.dumps(v), 0) + 1
        result = {
            "element_count": total,
            "missing_count": outcome.missing,
            "missing_percent": 100 * outcome.missing / total if total else None,
            "unexpected_count": unexpected,
            "unexpected_percent": 100 * unexpected / judged if judged else None,
            "unexpected_percent_total": 100 * unexpected / total if total else None,
            "unexpected_percent_nonmissing": 100 * unexpected / judged if judged else None,
            "partial_unexpected_list": values,
            "partial_unexpected_index_list": shown,
            "partial_unexpected_counts": [
                {"value": json.loads(v), "count": n} for v, n in counts.items()
            ],
        }
    return {"success": outcome.success, "expectation_config": config, "result": result}


def _run_time(moment: datetime) -> str:
    """A run time as GX names it in its store keys and Data Docs paths."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def page_path(docs_dir: Path, suite_name: str, run_name: str, run_time: str, batch_id: str) -> Path:
    """Where GX's site builder puts the Data Docs page of one validation result."""
    return docs_dir / "validations" / suite_name / run_name / run_time / f"{batch_id}.html"


def results_record(
    source: str,
    ds: date,
    run_id: str,
    frames: dict[str, pd.DataFrame],
    specs: dict[str, TableSpec],
    evaluated: dict[str, list[Any]],
    docs_dir: Path,
) -> dict[str, Any]:
    """The validation's outcomes as GX suite validation results (plain JSON, for
    `render_data_docs`), each with the path its Data Docs page will have."""
    moment = datetime.now(UTC)
    run_name = _run_name(source, ds, run_id)
    tables = {}
    for name, outcomes in evaluated.items():
        spec = specs[name]
        batch_id = f"{source}-{spec.raw_name}"
        frame = frames[name].reset_index(drop=True)
        results = [_result(o, frame, batch_id) for o in outcomes]
        passed = sum(r["success"] for r in results)
        tables[name] = {
            "page": str(page_path(docs_dir, spec.raw_name, run_name, _run_time(moment), batch_id)),
            "result": {
                "success": passed == len(results),
                "results": results,
                "suite_name": spec.raw_name,
                "statistics": {
                    "evaluated_expectations": len(results),
                    "successful_expectations": passed,
                    "unsuccessful_expectations": len(results) - passed,
                    "success_percent": 100 * passed / len(results) if results else None,
                },
                "meta": {
                    "active_batch_definition": {
                        "datasource_name": source,
                        "data_connector_name": "fluent",
                        "data_asset_name": spec.raw_name,
                        "batch_identifiers": {"ds": ds.isoformat()},
                    },
                    "batch_spec": {
                        "data_asset_name": spec.raw_name,
                        "evaluated_by": "duckdb",
                        "rows": len(frame),
                    },
                },
                "batch_id": batch_id,
            },
        }
    return {"run_name": run_name, "run_time": moment.isoformat(), "tables": tables}


def render_data_docs(record: dict[str, Any], docs_dir: Path) -> dict[str, str]:
    """Keep a validation's results in GX's store and render their Data Docs pages (only this
    run's; the index lists every validation in the store). The page of each table."""
    # GX logs hundreds of INFO lines from its import on; the task log keeps our own decisions
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.core import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    context = _context(docs_dir)
    run_time = datetime.fromisoformat(record["run_time"])
    run = RunIdentifier(run_name=record["run_name"], run_time=run_time)
    identifiers = {}
    for name, table in record["tables"].items():
        kept = dict(table["result"])
        kept["results"] = [
            ExpectationValidationResult(
                **(r | {"expectation_config": ExpectationConfiguration(**r["expectation_config"])})
            )
            for r in kept["results"]
        ]
        kept["meta"] = kept["meta"] | {
            "great_expectations_version": gx.__version__,
            "run_id": run,
            "validation_time": run_time,
        }
        identifiers[name] = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=kept["suite_name"]),
            run_id=run,
            batch_identifier=kept["batch_id"],
        )
        context.validation_results_store.set(
            identifiers[name], ExpectationSuiteValidationResult(**kept)
        )
    context.build_data_docs(site_names=[SITE], resource_identifiers=list(identifiers.values()))
    pages = {}
    for name, identifier in identifiers.items():
        [url] = context.get_docs_sites_urls(resource_identifier=identifier, site_names=[SITE])
        pages[name] = url["site_url"].removeprefix("file://")
        if pages[name] != record["tables"][name]["page"]:  # the audit already names the page
            raise RuntimeError(f"GX rendered {pages[name]}, not {record['tables'][name]['page']}")
    return pages


def _decide(
    spec: TableSpec, frame: pd.DataFrame, outcomes: list[Any], max_bad_row_share: float
) -> TableVerdict:
    verdict = TableVerdict(spec.table, len(frame))
    for outcome in outcomes:
        kind, kwargs, meta = outcome.kind, outcome.kwargs, outcome.meta
        rule, action = meta.get("rule", kind), meta.get("action", "block")
        if outcome.success:
            continue
        rows = [] if outcome.rows is None else outcome.rows.tolist()
        if outcome.error:
            detail = f"could not be evaluated: {outcome.error[:200]}"
            failure = RuleResult(rule, "block", len(frame), [], detail)
        elif rows:
            failure = RuleResult(
                rule,
                action,
                len(rows),
                record_keys(frame, spec, rows[:EXAMPLES]),
                _reason(kind, kwargs, meta, frame, rows[0]),
            )
        else:
            detail = _table_detail(kind, kwargs, outcome.observed)
            failure = RuleResult(
                rule, "block" if action == "quarantine" else action, len(frame), [], detail
            )
        verdict.failures.append(failure)
        if failure.action == "block":
            verdict.blocks.append(failure)
            continue
        for r in rows:
            verdict.rejected.setdefault(r, []).append((rule, _reason(kind, kwargs, meta, frame, r)))
    bad = len(verdict.rejected)
    if bad >= MIN_BAD_ROWS_TO_BLOCK and bad > max_bad_row_share * len(frame):
        examples = record_keys(frame, spec, sorted(verdict.rejected)[:EXAMPLES])
        verdict.blocks.append(
            RuleResult(
                "bad_row_share",
                "block",
                bad,
                examples,
                f"{bad} of {len(frame)} rows ({bad / len(frame):.1%}) fail quarantine rules, "
                f"more than "
                f"the allowed {max_bad_row_share:.0%}: the batch is broken, not a few bad rows",
            )
        )
    return verdict
