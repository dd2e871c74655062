"""What a batch needs before its suite can judge it: check columns and suite parameters.

Some rules need more than one column of one row: "is this a repeat of an earlier row", "is this
credit code's check character right" (GB 32100 has no GX expectation), "was the read requested
before this report was signed" (the request time lives on the study). These are computed here,
from what each table's spec declares (`duplicate_of`, `credit_code`, `lookups`), into
`_`-prefixed columns that the suite then asks about, so every decision still shows up as a GX
expectation with its own result in Data Docs. Suite parameters carry what changes per day: the
end of the business day, the facility master, the volume floor.
"""

from __future__ import annotations

import statistics
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd
from stdnum.cn import uscc

from yilian.sources.base import Lookup, TableSpec
from yilian.warehouse import raw

VOLUME_FLOOR_SHARE = 0.2
VOLUME_MIN_DAYS = 3


def with_checks(
    frames: dict[str, pd.DataFrame], specs: dict[str, TableSpec], db: raw.Reader, ds: date
) -> dict[str, pd.DataFrame]:
    """Every landed frame plus the `_` check columns its suite expects (where computable)."""
    return {name: _checked(frame, specs[name], frames, db, ds) for name, frame in frames.items()}


def _checked(
    frame: pd.DataFrame,
    spec: TableSpec,
    batch: dict[str, pd.DataFrame],
    db: raw.Reader,
    ds: date,
) -> pd.DataFrame:
    out = frame.copy()
    dedup = [c for c in spec.dedup_columns if c in out.columns]
    if len(dedup) == len(spec.dedup_columns):
        out["_duplicate"] = repeats(out, dedup)
    if spec.credit_code and spec.credit_code in out.columns:
        codes = out[spec.credit_code]
        distinct = codes.dropna().unique()  # a few hundred facilities, many rows each
        valid = pd.Series([uscc.is_valid(v) for v in distinct], index=distinct, dtype="boolean")
        out["_credit_code_valid"] = pd.Series(
            valid.reindex(codes.to_numpy()).array, index=out.index, dtype="boolean"
        )
    for lookup in spec.lookups:
        if lookup.via in out.columns:
            values = _looked_up(spec, lookup, out[lookup.via], batch.get(lookup.table), db, ds)
            found = values.reindex(out[lookup.via].to_numpy()).to_numpy()
            out[lookup.column] = pd.Series(found, index=out.index, dtype=values.dtype)
    return out


def repeats(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Each row equal to an earlier one in all of `columns` (nulls equal), as
    `frame.duplicated(subset=columns)` says, but hashing all the columns only for the rows that
    can be repeats: a repeat's value recurs in every column, so the rows are narrowed column by
    column to those whose value recurs among the rest. On a scale-50 encounters day (825,324
    rows, seven columns) `duplicated` took 0.5–0.7 s; the patient key alone leaves almost none.
    """
    candidates = np.ones(len(frame), dtype=bool)
    for column in columns:
        if not candidates.any():
            break
        candidates[candidates] = frame[column][candidates].duplicated(keep=False).to_numpy()
    repeated = np.zeros(len(frame), dtype=bool)
    repeated[candidates] = frame.loc[candidates, columns].duplicated(keep="first").to_numpy()
    return pd.Series(repeated, index=frame.index, dtype="boolean")


def _looked_up(
    spec: TableSpec,
    lookup: Lookup,
    wanted: pd.Series,
    in_batch: pd.DataFrame | None,
    db: raw.Reader,
    ds: date,
) -> pd.Series:
    """`lookup.value` by key: this batch's rows first, else the latest loaded up to `ds`."""
    cols = [lookup.via, lookup.value]
    here = in_batch[cols] if in_batch is not None and set(cols) <= set(in_batch.columns) else None
    keys = wanted.dropna().unique().tolist()
    if here is not None:
        found = set(here[lookup.via].dropna())
        keys = [k for k in keys if k not in found]
    older = raw.latest_values(db, spec, lookup, keys, ds)
    parts = [p for p in (older, here) if p is not None and len(p)]
    table = pd.concat(parts, ignore_index=True) if parts else older
    table = table.drop_duplicates(lookup.via, keep="last").set_index(lookup.via)
    return table[lookup.value].astype("datetime64[us]")


def known_facilities(
    frames: dict[str, pd.DataFrame], specs: dict[str, TableSpec], db: raw.Reader, ds: date
) -> set[str]:
    """The facility master up to `ds`, plus the facilities a master table in this batch adds."""
    known = raw.master_facilities(db, ds)
    for name, frame in frames.items():
        if specs[name].facility_master and "facility_code" in frame:
            known |= set(frame["facility_code"].dropna())
    return known


def parameters(
    specs: dict[str, TableSpec], ds: date, known_facilities: set[str], db: raw.Reader
) -> dict[str, dict[str, Any]]:
    """Suite parameters for each table on one day."""
    volumes = raw.trailing_volumes(db, [spec.raw_name for spec in specs.values()], ds)
    end_of_day = pd.Timestamp(datetime.combine(ds + timedelta(days=1), time()))
    known = sorted(known_facilities)
    params = {}
    for name, spec in specs.items():
        history = volumes[spec.raw_name]
        floor = (
            int(VOLUME_FLOOR_SHARE * statistics.median(history))
            if len(history) >= VOLUME_MIN_DAYS
            else 0
        )
        params[name] = {"end_of_day": end_of_day, "known_facilities": known, "volume_floor": floor}
    return params
