"""A GX suite's expectations evaluated by DuckDB over the landed Parquet.

GX's own SQL path does not work on DuckDB (DESIGN.md), and its pandas path spends most of a
validation in its own machinery (seconds per source, a hundred times what DuckDB needs for the
same rules). So each expectation of a suite file is read with GX's meaning and evaluated here:
a column-map rule becomes one SQL predicate, true where the row breaks it (nulls are not judged,
but by the not-null rule), and all of a table's predicates run in one query over the landed
partition joined row by row with the check columns (`_duplicate`, …) computed just before. The
table-level rules (column set, types, row count) are read off the batch itself. The outcomes go
back to GX as its validation results (yilian.quality.suites), so GX keeps the suites, the
results and Data Docs. The benchmark's validate floor runs the same query (yilian.dev).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

ROW = "file_row_number"  # the row's position in its landed partition (read_parquet's own)
ROW_RULES = (
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_be_between",
    "expect_column_pair_values_a_to_be_greater_than_b",
)
TABLE_RULES = (
    "expect_table_columns_to_match_set",
    "expect_column_values_to_be_of_type",
    "expect_table_row_count_to_be_between",
)
# what each rule may say; anything else in a suite file is refused, not silently ignored
KWARGS = {
    "expect_column_values_to_not_be_null": {"column"},
    "expect_column_values_to_be_in_set": {"column", "value_set"},
    "expect_column_values_to_match_regex": {"column", "regex"},
    "expect_column_values_to_be_between": {
        "column",
        "min_value",
        "max_value",
        "strict_min",
        "strict_max",
    },
    "expect_column_pair_values_a_to_be_greater_than_b": {
        "column_A",
        "column_B",
        "or_equal",
        "ignore_row_if",
    },
    "expect_table_columns_to_match_set": {"column_set", "exact_match"},
    "expect_column_values_to_be_of_type": {"column", "type_"},
    "expect_table_row_count_to_be_between": {"min_value", "max_value"},
}


@dataclass
class Outcome:
    """What one expectation found in one batch."""

    kind: str
    kwargs: dict[str, Any]  # parameters ($PARAMETER) resolved
    meta: dict[str, Any]
    success: bool = True
    rows: np.ndarray | None = None  # the failing rows' positions, for a row rule
    observed: Any = None  # what a table-level rule saw
    missing: int = 0  # nulls in the column, for a row rule
    error: str | None = None  # why the rule could not be evaluated


def check_supported(expectation: dict[str, Any]) -> None:
    """Refuse an expectation this evaluator does not give GX's meaning to."""
    kind, kwargs = expectation["type"], expectation.get("kwargs", {})
    if kind not in KWARGS:
        raise ValueError(f"expectation {kind} is not evaluated by yilian.quality.rules")
    unknown = set(kwargs) - KWARGS[kind]
    if unknown:
        raise ValueError(f"{kind}: arguments {sorted(unknown)} are not evaluated")
    pair = kind == "expect_column_pair_values_a_to_be_greater_than_b"
    if pair and kwargs.get("ignore_row_if") != "either_value_is_missing":  # GX's default differs
        raise ValueError(f"{kind}: only ignore_row_if=either_value_is_missing is evaluated")


def resolved(kwargs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The kwargs with every {"$PARAMETER": name} replaced by the day's value."""
    return {
        k: params[v["$PARAMETER"]] if isinstance(v, dict) and "$PARAMETER" in v else v
        for k, v in kwargs.items()
    }


def _q(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _bound(value: Any) -> Any:
    """A suite value as DuckDB binds it (pandas timestamps as datetimes)."""
    return value.to_pydatetime() if hasattr(value, "to_pydatetime") else value


def _type_name(dtype: str) -> str:
    """A pandas dtype by the name GX's type rule gives it: nullable and numpy types alike
    (`Int64` and `int64` are int64, `boolean` is bool), any datetime resolution datetime64."""
    name = dtype.lower()
    if name.startswith("datetime64"):
        return "datetime64"
    return {"boolean": "bool"}.get(name, name)


def columns_of(kind: str, kwargs: dict[str, Any]) -> list[str]:
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        return [kwargs["column_A"], kwargs["column_B"]]
    return [kwargs["column"]] if "column" in kwargs else []


def predicate(kind: str, kwargs: dict[str, Any]) -> tuple[str, list[Any]]:
    """SQL true where a row breaks a row rule, and the values it binds."""
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = _q(kwargs["column_A"]), _q(kwargs["column_B"])
        op = ">=" if kwargs.get("or_equal") else ">"
        return f"{a} is not null and {b} is not null and not ({a} {op} {b})", []
    c = _q(kwargs["column"])
    if kind == "expect_column_values_to_not_be_null":
        return f"{c} is null", []
    if kind == "expect_column_values_to_be_in_set":
        values = [_bound(v) for v in kwargs["value_set"]]
        if not values:
            return f"{c} is not null", []
        return f"{c} is not null and {c} not in (select unnest(?))", [values]
    if kind == "expect_column_values_to_match_regex":
        return f"{c} is not null and not regexp_matches(cast({c} as varchar), ?)", [kwargs["regex"]]
    parts, binds = [], []
    if kwargs.get("min_value") is not None:
        parts.append(f"{c} {'<=' if kwargs.get('strict_min') else '<'} ?")
        binds.append(_bound(kwargs["min_value"]))
    if kwargs.get("max_value") is not None:
        parts.append(f"{c} {'>=' if kwargs.get('strict_max') else '>'} ?")
        binds.append(_bound(kwargs["max_value"]))
    return f"{c} is not null and ({' or '.join(parts) or 'false'})", binds


def batch_relation(
    con: duckdb.DuckDBPyConnection, landed: Path, checks: pa.Table | None
) -> duckdb.DuckDBPyRelation:
    """The landed partition, each row with its position and its check columns beside it."""
    source = "read_parquet(" + "'" + str(landed).replace("'", "''") + "', file_row_number = true)"
    if checks is None or not checks.num_columns:
        return con.sql(f"select * from {source}")
    con.register("_checks", checks)
    return con.sql(f"select * from {source} positional join _checks")


def failing_rows(
    con: duckdb.DuckDBPyConnection,
    batch: duckdb.DuckDBPyRelation,
    rules: list[tuple[str, dict[str, Any]]],
) -> tuple[list[np.ndarray], list[int]]:
    """For each row rule: the positions of the rows that break it, and its column's nulls.

    One query finds the rows breaking any rule (with a flag per rule), one counts the nulls.
    """
    if not rules:
        return [], []
    preds = [predicate(kind, kwargs) for kind, kwargs in rules]
    binds = [b for _, bs in preds for b in bs]
    flags = ", ".join(f"coalesce({sql}, false) as r{i}" for i, (sql, _) in enumerate(preds))
    any_flag = " or ".join(f"r{i}" for i in range(len(preds)))
    batch.create_view("_batch")
    found = con.execute(
        f"select * from (select {ROW}, {flags} from _batch) where {any_flag} order by {ROW}",
        binds,
    ).fetchnumpy()
    rows = found[ROW].astype(np.int64)
    failing = [rows[np.asarray(found[f"r{i}"], dtype=bool)] for i in range(len(preds))]
    nulls = ", ".join(
        f"count(*) - count({_q(columns_of(kind, kwargs)[0])})" for kind, kwargs in rules
    )
    missing = [int(n) for n in con.execute(f"select {nulls} from _batch").fetchall()[0]]
    return failing, missing


def evaluate(
    con: duckdb.DuckDBPyConnection,
    suite: dict[str, Any],
    params: dict[str, Any],
    landed: Path,
    checks: pa.Table | None,
    types: dict[str, str],
    rows: int,
) -> list[Outcome]:
    """Every expectation of `suite` on one batch: the landed partition plus its check columns
    (`types` are the batch's columns with their pandas dtypes, `rows` its length)."""
    columns = list(types)
    present = set(columns)
    outcomes, row_rules = [], []
    for expectation in suite["expectations"]:
        check_supported(expectation)
        kind = expectation["type"]
        kwargs = resolved(expectation.get("kwargs", {}), params)
        outcome = Outcome(kind, kwargs, expectation.get("meta") or {})
        outcomes.append(outcome)
        absent = [c for c in columns_of(kind, kwargs) if c not in present]
        if absent:
            outcome.success, outcome.error = False, f"column(s) {absent} not in the batch"
        elif kind == "expect_table_columns_to_match_set":
            outcome.observed = sorted(columns)
            wanted = set(kwargs["column_set"])
            exact = kwargs.get("exact_match", True)
            outcome.success = wanted == present if exact else wanted <= present
        elif kind == "expect_column_values_to_be_of_type":
            outcome.observed = types[kwargs["column"]]
            outcome.success = _type_name(outcome.observed) == kwargs["type_"]
        elif kind == "expect_table_row_count_to_be_between":
            outcome.observed = rows
            low, high = kwargs.get("min_value"), kwargs.get("max_value")
            outcome.success = (low is None or rows >= low) and (high is None or rows <= high)
        else:
            row_rules.append(outcome)
    failing, missing = failing_rows(
        con, batch_relation(con, landed, checks), [(o.kind, o.kwargs) for o in row_rules]
    )
    for outcome, bad, nulls in zip(row_rules, failing, missing, strict=True):
        outcome.rows, outcome.missing, outcome.success = bad, nulls, not len(bad)
    return outcomes
