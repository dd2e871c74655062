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
import pyarrow as pa
import pyarrow.compute as pc

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
    """0/1 flags in any of the spellings sources use; nulls kept, anything else refused."""
    text = pc.utf8_lower(pc.utf8_trim_whitespace(pa.array(values.astype("string"))))
    unknown = pc.and_(
        pc.is_valid(text), pc.invert(pc.is_in(text, pa.array(sorted(_TRUE | _FALSE))))
    )
    if pc.any(unknown).as_py():
        raise ValueError(f"not a 0/1 flag: {pc.filter(text, unknown)[0].as_py()!r}")
    flags = pc.if_else(pc.is_valid(text), pc.is_in(text, pa.array(sorted(_TRUE))), None)
    return flags.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get)


#: contract types Arrow's own parsers read, from which delivered types, into which pandas type
_TEXT = {pa.string(), pa.large_string()}
_ARROW_READS = {
    "int": (pa.int64(), _TEXT | {pa.int64()}, pd.Int64Dtype()),
    "float": (pa.float64(), _TEXT | {pa.int64(), pa.float64()}, pd.Float64Dtype()),
    "timestamp": (pa.timestamp("us"), _TEXT, None),
}


def _by_arrow(values: pd.Series, kind: str) -> pd.Series | None:
    """The column cast by Arrow's parsers when every value reads there (text from a CSV or a
    database's driver, numbers as the driver gives them): a tenth of pandas' cost per column,
    which was most of a small delivery's extract. None sends the column on to pandas, which
    also reads what Arrow refuses (an offset, "1.0" as an int, " 5", "20261101", mixed types)
    and names the value nobody can read. What Arrow accepts it reads as pandas does (a test
    holds the two paths to the same values), but for NaN, which pandas' Float64 makes a null.
    """
    if kind not in _ARROW_READS or not (
        values.dtype == object or isinstance(values.dtype, pd.StringDtype)
    ):
        return None
    arrow_type, delivered, dtype = _ARROW_READS[kind]
    try:
        array = pa.array(values, from_pandas=True)
        if array.type not in delivered:
            return None
        cast = pc.cast(array, arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    if kind == "float" and pc.any(pc.is_nan(cast)).as_py():
        return None
    return cast.to_pandas(types_mapper={arrow_type: dtype}.get if dtype else None)


def _by_pandas(values: pd.Series, kind: str) -> pd.Series:
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


def _cast(values: pd.Series, kind: str) -> pd.Series:
    by_arrow = _by_arrow(values, kind)
    return by_arrow if by_arrow is not None else _by_pandas(values, kind)


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
