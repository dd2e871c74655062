"""Casting what a source delivered to the contract's types (yilian.sources.frames)."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from yilian.sources import source
from yilian.sources.base import ExtractError
from yilian.sources.frames import _boolean, _by_arrow, _by_pandas, _cast, typed

SPELLINGS: dict[str, list[object]] = {
    "int": [
        7,
        7.0,
        7.5,
        "7",
        "007",
        "-3",
        "+5",
        " 5",
        "1.0",
        "1e3",
        "x",
        "",
    ],
    "float": [
        2.5,
        12,
        float("nan"),
        "2.5",
        "-0.125",
        "1e3",
        "inf",
        "nan",
        " 2.5",
        "1,5",
        "12",
        "x",
    ],
    "timestamp": [
        "2026-11-01 08:05:30",
        "2026-11-01T08:05:30.5",
        "2026-11-01T08:05:30.123456",
        "2026-11-01",
        "2026-11-01 08",
        "2026-11-01 8:05:30",
        "20261101",
        "2026-11-01T08:05:30+08:00",
        "2026-11-01T00:05:30Z",
        "2026-02-30 00:00:00",
        "not a time",
    ],
}


def _outcome(cast, values: pd.Series, kind: str) -> object:
    try:
        return cast(values, kind)
    except (ValueError, TypeError) as exc:
        return type(exc)


@pytest.mark.parametrize("dtype", ["string", "object"])  # text from a file; a driver's values
@pytest.mark.parametrize("kind", sorted(SPELLINGS))
def test_arrow_reads_what_pandas_reads_as_pandas_does(kind: str, dtype: str) -> None:
    """Arrow's parsers take a column only when they read each value as pandas does; anything
    they refuse goes to pandas, which reads it or fails as before."""
    taken = 0
    for spelling in SPELLINGS[kind]:
        if dtype == "string" and not isinstance(spelling, str):
            continue
        values = pd.Series([spelling, None], dtype=dtype)
        taken += _by_arrow(values, kind) is not None
        got, expected = _outcome(_cast, values, kind), _outcome(_by_pandas, values, kind)
        if isinstance(expected, pd.Series):
            assert isinstance(got, pd.Series), spelling
            pd.testing.assert_series_equal(got, expected, check_index_type=False, obj=spelling)
        else:
            assert got is expected, spelling
    assert taken >= 3  # the fast path is taken for the common spellings


def test_arrow_reads_the_largest_int_exactly() -> None:
    """Where the two differ, Arrow is right: pandas reads a column of text with a null in it
    through float64 and refuses int64's largest value; Arrow reads it exactly."""
    values = pd.Series(["9223372036854775807", None], dtype=object)
    assert _cast(values, "int").tolist() == [9223372036854775807, pd.NA]
    with pytest.raises((ValueError, TypeError)), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pandas' own, on the way to failing
        _by_pandas(values, "int")


def test_flags_in_the_spellings_sources_use() -> None:
    values = pd.Series([" Yes", "0", None, "T", "false", "1", "NO"], dtype="string")
    assert _boolean(values).tolist() == [True, False, pd.NA, True, False, True, False]
    assert _boolean(pd.Series([1, 0, None], dtype="Int64")).tolist() == [True, False, pd.NA]
    with pytest.raises(ValueError, match="'maybe'"):
        _boolean(pd.Series(["1", "maybe"], dtype="string"))


def test_a_value_no_parser_reads_fails_the_extract_naming_table_column_and_value() -> None:
    spec = source("prescriptions").table("dispenses")
    frame = pd.DataFrame(
        {
            "dispense_id": ["D1", "D2"],
            "prescription_id": ["P1", "P2"],
            "pharmacy_credit_code": ["91110000MA00000000", None],
            "dispensed_at": ["2026-11-01 08:00:00", "yesterday"],
            "updated_at": ["2026-11-01 08:00:00", "2026-11-01 09:00:00"],
        },
        dtype="string",
    )
    with pytest.raises(ExtractError, match="prescriptions__dispenses, column dispensed_at"):
        typed(frame, spec, "prescriptions 2026-11-01")
    frame.loc[1, "dispensed_at"] = "2026-11-01 09:30:00"
    out = typed(frame, spec, "prescriptions 2026-11-01")
    assert str(out["dispensed_at"].dtype) == "datetime64[us]"
    assert out["dispensed_at"].tolist() == [
        pd.Timestamp("2026-11-01 08:00:00"),
        pd.Timestamp("2026-11-01 09:30:00"),
    ]
