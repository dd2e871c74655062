"""Run a source's GX suites on its landed batches and turn the results into decisions.

GX validates pandas DataFrames here: its SQL datasource fails on DuckDB (DESIGN.md), and the
landed partition is the exact thing that will be loaded. Each expectation's `meta.action` says
what a failure means: `block` stops the whole source for the day (nothing loads), `quarantine`
moves the failing rows — found through `unexpected_index_list` of result_format COMPLETE — to
quarantine. A quarantine rule that cannot be evaluated (its column is missing) blocks, and so
does a table whose bad rows exceed the allowed share: past that point the batch is broken, not
a few bad rows. Data Docs are built for every validation into settings.paths().data_docs_dir.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from yilian.settings import PROJECT_ROOT
from yilian.sources.base import TableSpec

SUITES_DIR = PROJECT_ROOT / "expectations"
SITE = "yilian"
MIN_BAD_ROWS_TO_BLOCK = 10
EXAMPLES = 5
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


def _for_gx(frame: pd.DataFrame) -> pd.DataFrame:
    """The batch with its `datetime64[us]` columns as `[ns]`: GX's between-check loops per
    element on microseconds (seconds per check on a large day) and is vectorised on
    nanoseconds. A column out of the nanosecond range (before 1677, after 2262) stays as is."""
    cast = {}
    for name, dtype in frame.dtypes.items():
        if dtype == "datetime64[us]":
            with contextlib.suppress(pd.errors.OutOfBoundsDatetime):
                cast[name] = frame[name].astype("datetime64[ns]")
    return frame.assign(**cast) if cast else frame


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
    source: str,
    ds: date,
    run_id: str,
    frames: dict[str, pd.DataFrame],
    specs: dict[str, TableSpec],
    params: dict[str, dict[str, Any]],
    docs_dir: Path,
    max_bad_row_share: float,
) -> dict[str, TableVerdict]:
    """Validate every table's batch with its suite, then build one Data Docs page per table.

    Validation definitions are built here from the suite files (an ephemeral context: nothing
    but the suites is configuration). Data Docs are rendered once for the whole source rather
    than per table: rendering, not validating, is most of GX's cost on a small day.
    """
    # GX logs hundreds of INFO lines from its import on; the task log keeps our own decisions
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    context = _context(docs_dir)
    datasource = context.data_sources.add_pandas(source)
    run = RunIdentifier(run_name=_run_name(source, ds, run_id))
    verdicts: dict[str, TableVerdict] = {}
    for name, frame in frames.items():
        spec = specs[name]
        batch = datasource.add_dataframe_asset(spec.raw_name).add_batch_definition_whole_dataframe(
            "day"
        )
        suite = context.suites.add(gx.ExpectationSuite(**load_suite(spec)))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=spec.raw_name, data=batch, suite=suite)
        )
        frame = frame.reset_index(drop=True)
        result = definition.run(
            batch_parameters={"dataframe": _for_gx(frame)},
            expectation_parameters=params[name],
            result_format={"result_format": "COMPLETE"},
            run_id=run,
        )
        verdicts[name] = _decide(spec, frame, result.results, max_bad_row_share)
    # only this run's pages are rendered; the index lists every validation in the store
    identifiers = [
        key
        for key in context.validation_results_store.list_keys()
        if key.run_id.run_name == run.run_name
    ]
    context.build_data_docs(site_names=[SITE], resource_identifiers=identifiers)
    for identifier in identifiers:
        table_name = identifier.expectation_suite_identifier.name.partition("__")[2]
        urls = context.get_docs_sites_urls(resource_identifier=identifier, site_names=[SITE])
        verdicts[table_name].data_docs_path = (
            urls[0]["site_url"].removeprefix("file://") if urls else None
        )
    return verdicts


def _decide(
    spec: TableSpec, frame: pd.DataFrame, results: list[Any], max_bad_row_share: float
) -> TableVerdict:
    verdict = TableVerdict(spec.table, len(frame))
    for res in results:
        config = res.expectation_config
        meta = config.meta or {}
        rule, action = meta.get("rule", config.type), meta.get("action", "block")
        raised = bool(res.exception_info and res.exception_info.get("raised_exception"))
        if res.success and not raised:
            continue
        rows = [int(i) for i in (res.result or {}).get("unexpected_index_list") or []]
        if raised:
            detail = (
                f"could not be evaluated: {res.exception_info.get('exception_message', '')[:200]}"
            )
            failure = RuleResult(rule, "block", len(frame), [], detail)
        elif rows:
            failure = RuleResult(
                rule,
                action,
                len(rows),
                record_keys(frame, spec, rows[:EXAMPLES]),
                _reason(config.type, config.kwargs, meta, frame, rows[0]),
            )
        else:
            detail = _table_detail(
                config.type, config.kwargs, (res.result or {}).get("observed_value")
            )
            failure = RuleResult(
                rule, "block" if action == "quarantine" else action, len(frame), [], detail
            )
        verdict.failures.append(failure)
        if failure.action == "block":
            verdict.blocks.append(failure)
            continue
        for r in rows:
            verdict.rejected.setdefault(r, []).append(
                (rule, _reason(config.type, config.kwargs, meta, frame, r))
            )
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
