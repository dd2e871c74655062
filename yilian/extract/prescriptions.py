"""Extract one business day from the prescription-sharing platform's drop folder (§2.3).

The platform writes the day's CSV files, then the manifest last; the manifest is therefore the
signal that the day is complete, and its row counts and SHA-256 are the proof that what we read
is what was sent. Nothing is used before every file checks out: a missing, truncated or altered
file fails with the file named and expected vs actual, so half a file never loads.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from yilian.extract.frames import ExtractError, typed
from yilian.extract.tables import table


@dataclass(frozen=True)
class VerifiedFile:
    table: str
    path: str
    rows: int
    sha256: str


def manifest_path(drop: Path, ds: date) -> Path:
    return drop / ds.isoformat() / f"manifest_{ds.isoformat()}.json"


def read_manifest(drop: Path, ds: date) -> dict | None:
    """The day's manifest, or None while the platform has not finished writing the day."""
    path = manifest_path(drop, ds)
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _decode(path: Path, data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ExtractError(f"prescriptions: {path} is not valid {encoding}: {exc}") from exc


def _data_rows(text: str) -> int:
    return max(sum(1 for _ in csv.reader(io.StringIO(text, newline=""))) - 1, 0)


def verify(drop: Path, ds: date) -> list[VerifiedFile]:
    """Check every manifest file against its SHA-256 and row count; raise on the first mismatch."""
    manifest = read_manifest(drop, ds)
    if manifest is None:
        raise ExtractError(f"prescriptions {ds}: manifest {manifest_path(drop, ds)} is missing")
    if manifest.get("business_date") != ds.isoformat():
        raise ExtractError(
            f"prescriptions {ds}: manifest {manifest_path(drop, ds)} is for business_date "
            f"{manifest.get('business_date')!r}"
        )
    verified: list[VerifiedFile] = []
    for entry in manifest["files"]:
        name = entry["name"]
        path = drop / ds.isoformat() / name
        if not path.exists():
            raise ExtractError(f"prescriptions {ds}: file {path} named in the manifest is missing")
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        rows = _data_rows(_decode(path, data, entry.get("encoding", "GB18030")))
        if digest != entry["sha256"] or rows != entry["rows"]:
            raise ExtractError(
                f"prescriptions {ds}: file {name} does not match its manifest: expected "
                f"{entry['rows']} rows, sha256 {entry['sha256'][:12]}…; found {rows} rows, "
                f"sha256 {digest[:12]}… ({len(data)} bytes). The file is truncated or was "
                "changed after the manifest; ask the platform to re-deliver the day."
            )
        verified.append(VerifiedFile(_table_of(name, ds), str(path), rows, digest))
    missing = {"prescriptions", "dispenses"} - {v.table for v in verified}
    if missing:
        raise ExtractError(f"prescriptions {ds}: manifest lists no file for {sorted(missing)}")
    return verified


def _table_of(name: str, ds: date) -> str:
    stem = name.removesuffix(f"_{ds.isoformat()}.csv")
    if stem not in ("prescriptions", "dispenses"):
        raise ExtractError(f"prescriptions {ds}: unexpected file {name} in the manifest")
    return stem


def read_verified(files: list[VerifiedFile], ds: date) -> dict[str, pd.DataFrame]:
    """Read files `verify` accepted, re-checking the hash so what we read is what was verified."""
    out: dict[str, pd.DataFrame] = {}
    for f in files:
        path = Path(f.path)
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != f.sha256:
            raise ExtractError(f"prescriptions {ds}: {path} changed after it was verified")
        frame = pd.read_csv(
            io.StringIO(_decode(path, data, "GB18030"), newline=""),
            dtype=str,
            keep_default_na=False,
            na_values=[""],
        )
        if len(frame) != f.rows:
            raise ExtractError(
                f"prescriptions {ds}: {path.name} parsed to {len(frame)} rows, manifest {f.rows}"
            )
        out[f.table] = typed(frame, table("prescriptions", f.table), f"prescriptions {ds}")
    return out
