"""The prescription-sharing platform (处方信息共享平台): daily GB18030 CSV files in a drop folder.

Connection `yilian_prescriptions_drop` (extra `{"path": ...}`); without it, the simulated
region's drop folder. The platform writes the day's CSV files, then the manifest last; the
manifest is therefore the signal that the day is complete, and its row counts and SHA-256 are
the proof that what we read is what was sent. Nothing is used before every file checks out: a
missing, truncated or altered file fails with the file named and expected vs actual, so half a
file never loads. The bytes are checked (size, SHA-256) before anything decodes them, so a wrong
file is reported as such and not as a decoding error; then they are decoded in the encoding the
manifest declares (GB18030 when it declares none). A byte-order mark is the file saying its own
encoding: the declared encoding's own mark is dropped, any other blocks the file, naming the
encoding found and the one expected, as does UTF-8 text declared as GB18030.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yilian.settings import paths
from yilian.sources.base import ExtractError, Source, TableSpec, columns
from yilian.sources.connections import connection

if TYPE_CHECKING:
    import pandas as pd

CONN_ID = "yilian_prescriptions_drop"
ENCODING = "GB18030"
UPDATED_AT = ("updated_at", "timestamp", "When the platform last changed the record.")


def drop_folder() -> Path:
    conn = connection(CONN_ID)
    if conn is not None and conn.extra_dejson.get("path"):
        return Path(conn.extra_dejson["path"])
    return paths().sim_dir / "drop"


def manifest_path(drop: Path, ds: date) -> Path:
    return drop / ds.isoformat() / f"manifest_{ds.isoformat()}.json"


#: Byte-order marks, longest first (the UTF-32 LE mark begins with the UTF-16 LE one).
BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF8, "UTF-8"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
    (b"\x84\x31\x95\x33", "GB18030"),
)


#: How much of a file is looked at to tell UTF-8 text declared as another encoding.
UTF8_SNIFF_BYTES = 1 << 16


def _codec(encoding: str) -> str | None:
    """The codec's canonical name (utf_8, gb18030, ...), so aliases of one encoding compare."""
    try:
        return codecs.lookup(encoding).name.replace("-", "_").removesuffix("_sig")
    except LookupError:
        return None


def _decode(where: str, data: bytes, encoding: str) -> str:
    """The file's text in the manifest's `encoding`; its own BOM dropped, any other refused."""
    declared = _codec(encoding)
    if declared is None:
        raise ExtractError(f"{where}: the manifest declares an unknown encoding {encoding!r}")
    found = next((name for bom, name in BOMS if data.startswith(bom)), None)
    advice = (
        f"ask the platform to export it in {encoding}, or to declare the file's real encoding "
        'in the manifest ("encoding"); nothing was read'
    )
    if found is not None and _codec(found) != declared:
        raise ExtractError(
            f"{where} is {found} (it starts with a {found} byte-order mark) but the manifest "
            f"declares {encoding}: {advice}"
        )
    head = data[:UTF8_SNIFF_BYTES]
    if declared != "utf_8" and not head.isascii():
        try:  # GB18030 text with Chinese in it is practically never valid UTF-8
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError:
            pass
        else:
            raise ExtractError(
                f"{where} is UTF-8 (its bytes decode as UTF-8 text) but the manifest declares "
                f"{encoding}: {advice}"
            )
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ExtractError(
            f"{where} matches its manifest but is not valid {encoding} (byte "
            f"0x{data[exc.start]:02x} at offset {exc.start}): {advice}"
        ) from exc
    return text.removeprefix("\ufeff")


def _read_csv(text: str) -> pd.DataFrame:
    """Every cell as text (typing is `frames.typed`'s), an empty cell as null; Arrow's
    multi-threaded reader, 4× pandas' on a large day."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    header = next(csv.reader(io.StringIO(text, newline="")), [])
    table = pa_csv.read_csv(
        io.BytesIO(text.encode()),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),  # a quoted note may span lines
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()),
            null_values=[""],
            strings_can_be_null=True,
        ),
    )
    return table.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)


class PrescriptionPlatform(Source):
    name = "prescriptions"
    title = "prescription-sharing platform (处方信息共享平台), daily drop files"
    description = "Loaded by the prescriptions DAG; `ds` is the business day of the file."
    signals_completion = True
    tables = (
        TableSpec(
            "prescriptions",
            "prescriptions",
            "prescriptions",
            "Hospital prescriptions; `is_outflow` when it flowed out to a retail pharmacy.",
            ("prescription_id",),
            columns(
                ("prescription_id", "string", "Prescription identifier."),
                ("hospital_code", "string", "Prescribing facility."),
                ("encounter_id", "string", "Encounter the prescription was written at."),
                "patient",
                ("prescribed_at", "timestamp", "When it was prescribed."),
                ("main_drug_name", "string", "Name of the main drug."),
                ("drug_count", "int", "Number of drugs."),
                ("total_amount", "float", "Total amount (yuan)."),
                ("is_outflow", "bool", "Sent out to a retail pharmacy (处方外流)."),
                ("pharmacy_credit_code", "string", "Credit code of the pharmacy it went to."),
                UPDATED_AT,
            ),
            credit_code="pharmacy_credit_code",
            patient_event_at="prescribed_at",
        ),
        TableSpec(
            "prescriptions",
            "dispenses",
            "dispenses",
            "Dispenses of flowed-out prescriptions by retail pharmacies.",
            ("dispense_id",),
            columns(
                ("dispense_id", "string", "Dispense identifier."),
                ("prescription_id", "string", "The prescription dispensed."),
                ("pharmacy_credit_code", "string", "Credit code of the dispensing pharmacy."),
                ("dispensed_at", "timestamp", "When the pharmacy dispensed it."),
                UPDATED_AT,
            ),
            credit_code="pharmacy_credit_code",
        ),
    )

    def delivered(self, ds: date) -> bool:
        """The platform has finished the day: its manifest, written last, exists."""
        return manifest_path(drop_folder(), ds).exists()

    def _manifest(self, drop: Path, ds: date) -> dict[str, Any]:
        path = manifest_path(drop, ds)
        if not path.exists():
            raise ExtractError(f"prescriptions {ds}: manifest {path} is missing")
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest.get("business_date") != ds.isoformat():
            raise ExtractError(
                f"prescriptions {ds}: manifest {path} is for business_date "
                f"{manifest.get('business_date')!r}"
            )
        return manifest

    def extract(self, ds: date) -> dict[str, pd.DataFrame]:
        """Every manifest file checked (size, SHA-256, then rows) and read; raise on the first
        mismatch."""
        from yilian.sources.frames import typed

        drop = drop_folder()
        names = {f"{spec.table}_{ds.isoformat()}.csv": spec for spec in self.tables}
        out: dict[str, pd.DataFrame] = {}
        for entry in self._manifest(drop, ds)["files"]:
            name = entry["name"]
            spec = names.get(name)
            if spec is None:
                raise ExtractError(f"prescriptions {ds}: unexpected file {name} in the manifest")
            path = drop / ds.isoformat() / name
            if not path.exists():
                raise ExtractError(
                    f"prescriptions {ds}: file {path} named in the manifest is missing"
                )
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            size = entry.get("bytes", len(data))
            if digest != entry["sha256"] or size != len(data):
                stated = f" in {size} bytes" if "bytes" in entry else ""
                raise ExtractError(
                    f"prescriptions {ds}: {path} is not the file the manifest lists: the manifest "
                    f"lists {entry['rows']} rows{stated}, sha256 {entry['sha256'][:12]}…; "
                    f"the file has {len(data)} "
                    f"bytes, sha256 {digest[:12]}…. It is truncated, replaced or was changed "
                    "after the manifest; nothing was read. Ask the platform to re-deliver the day."
                )
            where = f"prescriptions {ds}: {path}"
            text = _decode(where, data, entry.get("encoding", ENCODING))
            frame = _read_csv(text)
            if len(frame) != entry["rows"]:
                raise ExtractError(
                    f"{where} matches its SHA-256 but holds {len(frame)} rows, the manifest "
                    f"{entry['rows']}; the platform's manifest is wrong: ask it to re-deliver."
                )
            out[spec.table] = typed(frame, spec, f"prescriptions {ds}")
        missing = sorted(spec.table for spec in self.tables if spec.table not in out)
        if missing:
            raise ExtractError(f"prescriptions {ds}: manifest lists no file for {missing}")
        return out
