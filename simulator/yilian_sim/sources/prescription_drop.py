"""The prescription-sharing platform's daily export (CONTRACTS §2.3), written into a drop folder.

Per business day: `prescriptions_<ds>.csv` and `dispenses_<ds>.csv` in GB18030 with `\\r\\n` line
ends, then `manifest_<ds>.json` (per file: rows, bytes, SHA-256, encoding) written last. Every
file is written to a temporary name and renamed, and a rewrite removes the day's manifest first,
so a reader that
waits for the manifest never sees half a day. A dispensing lands in the file of the day it
happens, which may be days after the prescription.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from yilian_sim.faults import (
    RENAMED_COLUMNS,
    FaultContext,
    corrupt_credit_code,
    corrupt_resident_id,
    pick,
)
from yilian_sim.model import Prescription
from yilian_sim.sources import day_end, settle

SOURCE = "prescriptions"
ENCODING = "GB18030"
PRESCRIPTION_COLUMNS = (
    "prescription_id",
    "hospital_code",
    "encounter_id",
    "patient_id_no",
    "patient_name",
    "patient_phone",
    "prescribed_at",
    "main_drug_name",
    "drug_count",
    "total_amount",
    "is_outflow",
    "pharmacy_credit_code",
    "updated_at",
)
DISPENSE_COLUMNS = (
    "dispense_id",
    "prescription_id",
    "pharmacy_credit_code",
    "dispensed_at",
    "updated_at",
)

Row = dict[str, Any]


def day_dir(root: Path, day: date) -> Path:
    return root / day.isoformat()


def file_names(day: date) -> dict[str, str]:
    ds = day.isoformat()
    return {
        "prescriptions": f"prescriptions_{ds}.csv",
        "dispenses": f"dispenses_{ds}.csv",
        "manifest": f"manifest_{ds}.json",
    }


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def prescription_row(p: Prescription) -> Row:
    return {
        "prescription_id": p.prescription_id,
        "hospital_code": p.hospital_code,
        "encounter_id": p.encounter_id,
        "patient_id_no": p.patient.resident_id,
        "patient_name": p.patient.name,
        "patient_phone": p.patient.phone,
        "prescribed_at": _ts(p.prescribed_at),
        "main_drug_name": p.main_drug_name,
        "drug_count": p.drug_count,
        "total_amount": f"{p.total_amount:.2f}",
        "is_outflow": int(p.is_outflow),
        "pharmacy_credit_code": (p.pharmacy_credit_code or "") if p.is_outflow else "",
        "updated_at": _ts(settle(p.prescribed_at, p.prescription_id, 0, 10)),
    }


def dispense_row(p: Prescription) -> Row:
    assert p.dispense_id is not None and p.dispensed_at is not None
    return {
        "dispense_id": p.dispense_id,
        "prescription_id": p.prescription_id,
        "pharmacy_credit_code": p.pharmacy_credit_code or "",
        "dispensed_at": _ts(p.dispensed_at),
        "updated_at": _ts(settle(p.dispensed_at, p.dispense_id, 0, 5)),
    }


def to_csv(columns: Sequence[str], rows: Sequence[Row], encoding: str = ENCODING) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([row[c] for c in columns] for row in rows)
    return buffer.getvalue().encode(encoding)


def _export_encoding(ctx: FaultContext) -> tuple[str, str]:
    """(codec the files are written in, encoding the manifest declares) for the day."""
    if ctx.spec("utf8_bom"):
        return "utf-8-sig", "UTF-8"
    if ctx.spec("mislabelled_encoding"):
        return "utf-8-sig", ENCODING
    return ENCODING, ENCODING


def _previous_rows(root: Path, day: date) -> list[Row]:
    """The prescription rows of the day before, as its file in the drop folder holds them."""
    before = day - timedelta(days=1)
    folder = day_dir(root, before)
    manifest = folder / file_names(before)["manifest"]
    path = folder / file_names(before)["prescriptions"]
    if not (manifest.exists() and path.exists()):
        return []
    entry = json.loads(manifest.read_text(encoding="utf-8"))["files"][0]
    text = path.read_bytes().decode(entry.get("encoding", ENCODING)).removeprefix("\ufeff")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _garble(data: bytes, rate: float, rng: random.Random) -> bytes:
    """The same number of bytes, the last share `rate` of them random."""
    start = int(len(data) * (1 - rate))
    return data[:start] + rng.randbytes(len(data) - start)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _truncate(data: bytes, ids: Sequence[str], rate: float) -> tuple[bytes, list[str]]:
    """Cut mid-row about `rate` of the bytes from the end; returns kept bytes and ids lost."""
    starts = []  # offset of each data row (GB18030 never puts \r or \n inside a character)
    pos = data.index(b"\r\n") + 2
    while pos < len(data):
        starts.append(pos)
        pos = data.index(b"\r\n", pos) + 2
    rows = list(zip(starts, [*starts[1:], len(data)], ids, strict=True))
    if not rows:
        return data, []
    target = int(len(data) * (1 - rate))
    index = next((i for i, (_, end, _) in enumerate(rows) if end > target), len(rows) - 1)
    start, end, _ = rows[index]
    return data[: start + max(1, (end - start) // 2)], [row_id for _, _, row_id in rows[index:]]


def _corrupt_rows(root: Path, day: date, rows: list[Row], ctx: FaultContext) -> list[Row]:
    """Row faults on the day's prescriptions; returns the rows as exported (with duplicates
    and re-deliveries)."""
    if spec := ctx.spec("invalid_resident_ids"):
        hit = pick(rows, spec.rate, ctx.rng(spec.name, "prescriptions"))
        for i, row in enumerate(hit):
            row["patient_id_no"] = corrupt_resident_id(row["patient_id_no"], i)
        ctx.log.add(spec.name, day, SOURCE, "prescriptions", (r["prescription_id"] for r in hit))
    if spec := ctx.spec("invalid_credit_codes"):
        outflow = [r for r in rows if r["pharmacy_credit_code"]]
        hit = pick(outflow, spec.rate, ctx.rng(spec.name, "prescriptions"))
        for row in hit:
            row["pharmacy_credit_code"] = corrupt_credit_code(row["pharmacy_credit_code"])
        ctx.log.add(spec.name, day, SOURCE, "prescriptions", (r["prescription_id"] for r in hit))
    if spec := ctx.spec("duplicate_rows"):
        hit = {id(r) for r in pick(rows, spec.rate, ctx.rng(spec.name, "prescriptions"))}
        rows = [copy for r in rows for copy in ([r, r] if id(r) in hit else [r])]
        ctx.log.add(
            spec.name,
            day,
            SOURCE,
            "prescriptions",
            sorted({r["prescription_id"] for r in rows if id(r) in hit}),
        )
    if spec := ctx.spec("redelivered_rows"):
        again = pick(_previous_rows(root, day), spec.rate, ctx.rng(spec.name, "prescriptions"))
        rows = [*rows, *again]
        ctx.log.add(
            spec.name,
            day,
            SOURCE,
            "prescriptions",
            (r["prescription_id"] for r in again),
            from_day=(day - timedelta(days=1)).isoformat(),
        )
    return rows


def write_day(
    root: Path,
    day: date,
    prescriptions: Sequence[Prescription],
    dispensed: Sequence[Prescription],
    ctx: FaultContext,
) -> dict[str, int]:
    """Export the day's prescriptions and the dispensings that happened on `day`; the manifest
    goes last. Returns rows per file kind as the manifest states them."""
    folder = day_dir(root, day)
    folder.mkdir(parents=True, exist_ok=True)
    names = file_names(day)
    (folder / names["manifest"]).unlink(missing_ok=True)

    p_rows = _corrupt_rows(root, day, [prescription_row(p) for p in prescriptions], ctx)
    d_rows = [dispense_row(p) for p in dispensed]
    columns = {"prescriptions": list(PRESCRIPTION_COLUMNS), "dispenses": list(DISPENSE_COLUMNS)}
    if spec := ctx.spec("renamed_column"):
        old = spec.column or "prescribed_at"
        kind = "prescriptions" if old in PRESCRIPTION_COLUMNS else "dispenses"
        columns[kind][columns[kind].index(old)] = RENAMED_COLUMNS[old]
        ctx.log.add(spec.name, day, SOURCE, kind, (), column=old, renamed_to=RENAMED_COLUMNS[old])
        rename = {old: RENAMED_COLUMNS[old]}
        p_rows = [{rename.get(k, k): v for k, v in r.items()} for r in p_rows]
        d_rows = [{rename.get(k, k): v for k, v in r.items()} for r in d_rows]

    codec, declared = _export_encoding(ctx)
    for name in ("utf8_bom", "mislabelled_encoding"):
        if ctx.spec(name):
            ctx.log.add(name, day, SOURCE, "files", (), written_in="UTF-8", declared=declared)
    files = {
        "prescriptions": (to_csv(columns["prescriptions"], p_rows, codec), p_rows),
        "dispenses": (to_csv(columns["dispenses"], d_rows, codec), d_rows),
    }
    manifest = {
        "business_date": day.isoformat(),
        "generated_at": day_end(day).isoformat(),
        "files": [
            {
                "name": names[kind],
                "rows": len(rows),
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "encoding": declared,
            }
            for kind, (data, rows) in files.items()
        ],
    }
    for kind, (data, rows) in files.items():
        if kind == "prescriptions" and (spec := ctx.spec("truncated_file")):
            data, lost = _truncate(data, [r["prescription_id"] for r in rows], spec.rate)
            ctx.log.add(spec.name, day, SOURCE, kind, lost, file=names[kind], bytes_kept=len(data))
        if kind == "prescriptions" and (spec := ctx.spec("garbled_file")):
            data = _garble(data, spec.rate, ctx.rng(spec.name, kind))
            ctx.log.add(spec.name, day, SOURCE, kind, (), file=names[kind], rate=spec.rate)
        _atomic_write(folder / names[kind], data)
    _atomic_write(
        folder / names["manifest"],
        json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8"),
    )
    return {kind: len(rows) for kind, (_, rows) in files.items()}
