"""The check columns computed before a suite runs (yilian.quality.checks)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from yilian.quality.checks import repeats


@pytest.mark.parametrize("seed", range(20))
def test_repeats_are_the_rows_duplicated_finds(seed: int) -> None:
    """Narrowing column by column loses no repeat and adds none, nulls included: small
    alphabets make rows collide in one column, in several, and in all."""
    rng = np.random.default_rng(seed)
    rows = int(rng.integers(0, 400))
    frame = pd.DataFrame(
        {
            "code": pd.array(rng.choice(["A", "B", "C", None], rows), dtype="string"),
            "count": pd.array(rng.choice([1, 2, None], rows), dtype="Int64"),
            "at": pd.to_datetime(rng.choice(["2026-11-01 08:00", "2026-11-01 09:00", None], rows)),
            "kind": pd.array(rng.choice(list("xyz"), rows), dtype="string"),
        },
        index=pd.RangeIndex(rows) + 10,  # not from 0: positions and labels differ
    )
    columns = list(rng.permutation(frame.columns)[: int(rng.integers(1, 5))])
    got = repeats(frame, columns)
    expected = frame.duplicated(subset=columns, keep="first").astype("boolean")
    pd.testing.assert_series_equal(got, expected)


def test_a_row_is_a_repeat_only_when_every_column_matches() -> None:
    frame = pd.DataFrame({"a": ["1", "1", "1", "2"], "b": ["x", "y", "x", "x"]}, dtype="string")
    assert repeats(frame, ["a", "b"]).tolist() == [False, False, True, False]
    assert repeats(frame.iloc[:0], ["a", "b"]).tolist() == []
