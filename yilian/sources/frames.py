"""Turn what a source delivered into a typed DataFrame, the same way for every protocol.

Every source speaks text or driver types of its own (SQLite strings, FHIR ISO strings with
offsets, GB18030 CSV cells); casting them once, here, to the contract's types means a value that
cannot be read fails at extraction with the table, column and record named, instead of turning
into a silent null later. Columns the contract does not know are kept as text so that
pseudonymisation can refuse them and validation can name them.
"""

from __future__ import annotations

import re

import pandas as pd

from yilian.settings import LOCAL_TZ
from yilian.sources.base import PII_COLUMNS, ExtractError, TableSpec

_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")
_TRUE = {"1", "true", "t", "yes"}
_FALSE = {"0", "false", "f", "no"}


def local_naive(values: pd.Series) -> pd.Series:
    """Timestamps as naive Asia/Shanghai wall time (CONTRACTS: all timestamps are local, naive).

    Values carrying an offset (FHIR `+08:00`, `Z`) are converted to Shanghai time first; naive
    values are taken as already local.
    """
    if values.empty or pd.api.types.is_datetime64_any_dtype(values):
        if getattr(values.dtype, "tz", None) is not None:
            values = values.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
        return values.astype("datetime64[us]")
    text = values.astype("string")
    has_offset = text.str.contains(_OFFSET, na=False)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    if has_offset.any():
        aware = pd.to_datetime(text[has_offset], format="ISO8601", utc=True)
        out[has_offset] = (
            aware.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None).astype("datetime64[us]")
        )
    naive = ~has_offset & text.notna()
    if naive.any():
        out[naive] = pd.to_datetime(text[naive], format="ISO8601").astype("datetime64[us]")
    return out


def _boolean(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip().str.lower()
    unknown = text.notna() & ~text.isin(_TRUE | _FALSE)
    if unknown.any():
        raise ValueError(f"not a 0/1 flag: {text[unknown].iloc[0]!r}")
    return text.isin(_TRUE).astype("boolean").mask(text.isna())  # column-wise, nulls kept


def _cast(values: pd.Series, kind: str) -> pd.Series:
    if kind == "string":
        return values.astype("string")  # str() of every value, nulls as NA, column-wise
    if kind == "int":
        return pd.to_numeric(values, errors="raise").astype("Int64")
    if kind == "float":
        return pd.to_numeric(values, errors="raise").astype("Float64")
    if kind == "bool":
        return _boolean(values)
    if kind == "timestamp":
        return local_naive(values)
    if kind == "date":
        return local_naive(values).dt.normalize()
    raise ValueError(f"unknown column type {kind!r}")


def typed(frame: pd.DataFrame, spec: TableSpec, where: str) -> pd.DataFrame:
    """Cast the source columns the contract knows to its types; keep unknown ones as text.

    `where` names the delivery (e.g. "hospital 2026-11-01") for the error message.
    """
    types = spec.types | dict.fromkeys(PII_COLUMNS, "string")
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for column in frame.columns:
        values = frame[column].reset_index(drop=True)
        kind = types.get(column, "string")
        try:
            out[column] = _cast(values, kind)
        except (ValueError, TypeError) as exc:
            raise ExtractError(
                f"{where}: table {spec.raw_name}, column {column}: cannot read as {kind} ({exc})"
            ) from exc
    return out


def empty(spec: TableSpec, where: str) -> pd.DataFrame:
    """A typed frame with the source columns and no rows (a day without changes)."""
    frame = pd.DataFrame({c: pd.Series(dtype="object") for c in spec.delivered_columns})
    return typed(frame, spec, where)
