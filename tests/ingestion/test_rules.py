"""The suites' rules evaluated in DuckDB (yilian.quality.rules) mean what GX means by them.

The same expectations, on the same small batch full of edge cases (nulls, values on a bound,
a pair with one side missing, a non-matching code), are run by GX's own pandas engine and by
the DuckDB evaluator: both must find exactly the same failing rows. And every expectation in
every suite file is one the evaluator gives GX's meaning to.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from yilian.quality import rules
from yilian.quality.suites import SUITES_DIR

END_OF_DAY = pd.Timestamp("2026-11-02")
EXPECTATIONS = [
    ("expect_column_values_to_not_be_null", {"column": "code"}),
    ("expect_column_values_to_be_in_set", {"column": "code", "value_set": ["A1", "B2"]}),
    ("expect_column_values_to_be_in_set", {"column": "_flag", "value_set": [True]}),
    ("expect_column_values_to_be_in_set", {"column": "code", "value_set": {"$PARAMETER": "k"}}),
    ("expect_column_values_to_match_regex", {"column": "code", "regex": r"^[A-Z][0-9]$"}),
    ("expect_column_values_to_be_between", {"column": "n", "min_value": 1}),
    ("expect_column_values_to_be_between", {"column": "amount", "min_value": 0}),
    (
        "expect_column_values_to_be_between",
        {"column": "at", "max_value": {"$PARAMETER": "end"}, "strict_max": True},
    ),
    (
        "expect_column_pair_values_a_to_be_greater_than_b",
        {
            "column_A": "done_at",
            "column_B": "at",
            "or_equal": True,
            "ignore_row_if": "either_value_is_missing",
        },
    ),
    (
        "expect_column_pair_values_a_to_be_greater_than_b",
        {
            "column_A": "done_at",
            "column_B": "at",
            "or_equal": False,
            "ignore_row_if": "either_value_is_missing",
        },
    ),
]
PARAMS = {"k": ["A1", "zz"], "end": END_OF_DAY}


def _batch() -> pd.DataFrame:
    t = pd.Timestamp
    return pd.DataFrame(
        {
            "code": pd.array(["A1", "B2", None, "a1", "C33", "zz", "A1"], dtype="string"),
            "n": pd.array([1, 0, None, 5, -1, 1, 2], dtype="Int64"),
            "amount": pd.array([0.0, -0.01, None, 2.5, 0.0, 1.0, -3.0], dtype="Float64"),
            "at": pd.Series(
                [
                    t("2026-11-01 08:00"),
                    END_OF_DAY,
                    None,
                    t("2026-11-03"),
                    t("2026-11-01"),
                    t("2026-11-01 23:59:59"),
                    t("2026-11-01 10:00"),
                ],
                dtype="datetime64[us]",
            ),
            "done_at": pd.Series(
                [
                    t("2026-11-01 08:00"),
                    t("2026-11-01"),
                    t("2026-11-01"),
                    None,
                    t("2026-11-02"),
                    t("2026-11-02"),
                    t("2026-11-01 09:00"),
                ],
                dtype="datetime64[us]",
            ),
            "_flag": pd.array([True, False, None, True, True, False, True], dtype="boolean"),
        }
    )


def _gx_failing_rows(frame: pd.DataFrame) -> list[list[int]]:
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("t")
        .add_dataframe_asset("t")
        .add_batch_definition_whole_dataframe("all")
    )
    suite = context.suites.add(
        gx.ExpectationSuite(
            name="t",
            expectations=[
                {"type": k, "kwargs": kw, "meta": {"i": i}}
                for i, (k, kw) in enumerate(EXPECTATIONS)
            ],
        )
    )
    ns = frame.assign(
        at=frame["at"].astype("datetime64[ns]"), done_at=frame["done_at"].astype("datetime64[ns]")
    )
    result = gx.ValidationDefinition(name="t", data=batch, suite=suite).run(
        batch_parameters={"dataframe": ns},
        expectation_parameters=PARAMS,
        result_format={"result_format": "COMPLETE"},
    )
    found = {}
    for res in result.results:
        assert not res.exception_info.get("raised_exception"), res.exception_info
        found[res.expectation_config.meta["i"]] = sorted(res.result["unexpected_index_list"])
    return [found[i] for i in range(len(EXPECTATIONS))]


def test_duckdb_finds_the_rows_gx_finds(tmp_path: Path) -> None:
    frame = _batch()
    landed = tmp_path / "part-0.parquet"
    pq.write_table(pa.Table.from_pandas(frame.drop(columns="_flag"), preserve_index=False), landed)
    outcomes = rules.evaluate(
        duckdb.connect(),
        {"expectations": [{"type": k, "kwargs": kw} for k, kw in EXPECTATIONS]},
        PARAMS,
        landed,
        pa.Table.from_pandas(frame[["_flag"]], preserve_index=False),
        {c: str(t) for c, t in frame.dtypes.items()},
        len(frame),
    )
    ours = [o.rows.tolist() for o in outcomes]
    assert ours == _gx_failing_rows(frame)
    assert all(ours), "every rule finds at least one failing row in the batch"


def test_a_rule_on_a_missing_column_cannot_be_evaluated(tmp_path: Path) -> None:
    landed = tmp_path / "part-0.parquet"
    pq.write_table(pa.table({"a": [1]}), landed)
    [outcome] = rules.evaluate(
        duckdb.connect(),
        {
            "expectations": [
                {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "b"}}
            ]
        },
        {},
        landed,
        None,
        {"a": "int64"},
        1,
    )
    assert not outcome.success and "['b']" in outcome.error


@pytest.mark.parametrize("path", sorted(SUITES_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_every_suite_expectation_is_evaluated_with_gx_meaning(path: Path) -> None:
    for expectation in json.loads(path.read_text(encoding="utf-8"))["expectations"]:
        rules.check_supported(expectation)


def test_an_expectation_the_evaluator_does_not_know_is_refused() -> None:
    with pytest.raises(ValueError, match="mostly"):
        rules.check_supported(
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "a", "mostly": 0.9},
            }
        )
