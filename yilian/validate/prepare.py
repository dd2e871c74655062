"""What a batch needs before its suite can judge it: check columns and suite parameters.

Some rules need more than one column of one row: "is this a repeat of an earlier row", "is this
credit code's check character right" (GB 32100 has no GX expectation), "was the read requested
before this report was signed" (the request time lives on the study). These are computed here
into `_`-prefixed columns that the suite then asks about, so every decision still shows up as a
GX expectation with its own result in Data Docs. Suite parameters carry what changes per day:
the end of the business day, the facility master, the manifest's row count, the volume floor.
"""

from __future__ import annotations

import statistics
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from stdnum.cn import uscc

from yilian.extract.tables import TableSpec
from yilian.load import warehouse

VOLUME_FLOOR_SHARE = 0.2
VOLUME_MIN_DAYS = 3
CREDIT_COLUMNS = {
    "facilities": "credit_code",
    "prescriptions": "pharmacy_credit_code",
    "dispenses": "pharmacy_credit_code",
}


def with_checks(frame: pd.DataFrame, spec: TableSpec, studies: pd.DataFrame | None) -> pd.DataFrame:
    """The landed frame plus the `_` check columns its suite expects (where computable)."""
    out = frame.copy()
    dedup = [c for c in spec.dedup_columns if c in out.columns]
    if len(dedup) == len(spec.dedup_columns):
        out["_duplicate"] = out.duplicated(subset=dedup, keep="first").astype("boolean")
    credit = CREDIT_COLUMNS.get(spec.table)
    if credit and credit in out.columns:
        out["_credit_code_valid"] = (
            out[credit].map(lambda v: None if pd.isna(v) else uscc.is_valid(v)).astype("boolean")
        )
    if spec.table == "reports" and studies is not None and "study_id" in out.columns:
        lookup = studies.drop_duplicates("study_id", keep="last").set_index("study_id")
        out["_study_read_requested_at"] = (
            out["study_id"].map(lookup["read_requested_at"]).astype("datetime64[us]")
        )
    return out


def study_times(
    batch_studies: pd.DataFrame, reports: pd.DataFrame, db: Path, ds: date
) -> pd.DataFrame:
    """read_requested_at for every study a report names: this batch first, else the warehouse."""
    cols = ["study_id", "read_requested_at"]
    here = batch_studies[cols] if set(cols) <= set(batch_studies.columns) else None
    wanted = reports["study_id"].dropna().unique().tolist() if "study_id" in reports else []
    if here is not None:
        in_batch = set(here["study_id"].dropna())
        wanted = [s for s in wanted if s not in in_batch]
    older = warehouse.study_request_times(db, wanted, ds)
    parts = [p for p in (older, here) if p is not None and len(p)]
    return pd.concat(parts, ignore_index=True) if parts else older


def parameters(
    spec: TableSpec, ds: date, known_facilities: set[str], db: Path, manifest_rows: dict[str, int]
) -> dict[str, Any]:
    """Suite parameters for one table on one day."""
    history = warehouse.trailing_volumes(db, spec.raw_name, ds)
    floor = (
        int(VOLUME_FLOOR_SHARE * statistics.median(history))
        if len(history) >= VOLUME_MIN_DAYS
        else 0
    )
    params: dict[str, Any] = {
        "end_of_day": pd.Timestamp(datetime.combine(ds + timedelta(days=1), time())),
        "known_facilities": sorted(known_facilities),
        "volume_floor": floor,
    }
    if spec.table in manifest_rows:
        params["manifest_rows"] = manifest_rows[spec.table]
    return params
