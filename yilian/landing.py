"""Landing: one Parquet file per (source, table, ds), written atomically, no personal data.

`<landing>/source=<s>/table=<t>/ds=<YYYY-MM-DD>/part-0.parquet` (CONTRACTS §3). A partition is
written to a temporary file in the same directory and renamed over the old one, so a reader (or
a crashed rerun) sees the previous partition or the new one, never half of either.
"""

from __future__ import annotations

import os
import tempfile
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from yilian.sources.base import TableSpec

ARROW_TYPES = {
    "string": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
}


def partition_path(landing: Path, spec: TableSpec, ds: date) -> Path:
    return (
        landing
        / f"source={spec.source}"
        / f"table={spec.table}"
        / f"ds={ds.isoformat()}"
        / "part-0.parquet"
    )


def arrow_table(frame: pd.DataFrame, spec: TableSpec) -> pa.Table:
    """The frame in the contract's Arrow types (only the contract columns it has)."""
    fields = [
        pa.field(c.name, ARROW_TYPES[c.type]) for c in spec.columns if c.name in frame.columns
    ]
    arrays = []
    for f in fields:
        values = frame[f.name]
        if pa.types.is_date32(f.type):
            arrays.append(pa.array(values.dt.date, type=f.type, from_pandas=True))
        else:
            arrays.append(pa.array(values, type=f.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def write_atomic(table: pa.Table, path: Path) -> None:
    """Write `table` to `path` via a temporary file and rename (replacing the old partition)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.chmod(tmp, 0o644)  # mkstemp makes it private; landing holds no personal data
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def land(frame: pd.DataFrame, spec: TableSpec, ds: date, landing: Path) -> Path:
    path = partition_path(landing, spec, ds)
    write_atomic(arrow_table(frame, spec), path)
    return path


def read_landed(spec: TableSpec, ds: date, landing: Path) -> pd.DataFrame:
    """A landed partition as pandas with nullable types (ints stay ints next to nulls)."""
    return pq.read_table(partition_path(landing, spec, ds)).to_pandas(
        types_mapper={
            pa.string(): pd.StringDtype(),
            pa.int64(): pd.Int64Dtype(),
            pa.float64(): pd.Float64Dtype(),
            pa.bool_(): pd.BooleanDtype(),
        }.get,
        date_as_object=False,
    )
