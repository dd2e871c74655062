"""The per-source ingestion steps the DAG tasks call: extract → pseudonymise+land → validate → load.

Each step reads and writes only its (source, ds) partition, so any step can be rerun alone and
the day can be re-run at any time. Steps hand each other small JSON summaries (XCom) and files:
the extract's staging copy (encrypted: it still holds personal data), the landed Parquet, and
validation's decisions. This module is imported by the DAG files, so it stays light at import:
the heavy libraries are imported inside the steps.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import logging
import shutil
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from yilian.settings import LOCAL_TZ, paths

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from cryptography.fernet import Fernet

    from yilian.extract.tables import TableSpec
    from yilian.validate.run import TableVerdict

log = logging.getLogger(__name__)
DEFAULT_MAX_BAD_ROW_SHARE = 0.05


class DataQualityBlocked(AirflowFailException):
    """A blocking rule failed; the day was not loaded and the warehouse is unchanged.

    Fails the task without retries: the same data would fail the same way.
    """


class MasterNotReady(RuntimeError):
    """The facility master has no rows for the day yet; retrying later is the fix."""


def business_day(context: Any) -> date:
    """The business day `ds` of a run: the Asia/Shanghai date of its logical date.

    The DAGs use a daily data-interval timetable at local midnight, so a scheduled or backfilled
    run's logical date is the start of the day it covers ([ds, ds+1), closing when the run
    starts); a manual run (`airflow dags test DAG 2026-11-01`) means the day it names. Runs
    triggered without a logical date fall back to the start of their data interval.
    """
    moment = context.get("logical_date") or context["data_interval_start"]
    return moment.in_timezone(LOCAL_TZ).date()


def on_failure(context: Any) -> None:
    """Failure callback: one concise line naming the DAG, task, business day and error."""
    ti = context.get("ti") or context.get("task_instance")
    error = context.get("exception")
    message = str(error).splitlines()[0] if error else "unknown error"
    try:
        ds = business_day(context).isoformat()
    except (KeyError, AttributeError):
        ds = "?"
    log.error(
        "yilian task failed: dag=%s task=%s ds=%s error=%s: %s",
        getattr(ti, "dag_id", "?"),
        getattr(ti, "task_id", "?"),
        ds,
        type(error).__name__ if error else "?",
        message[:300],
    )


def manifest_ready(ds: date) -> bool:
    """Has the prescription platform finished the day (its manifest, written last, exists)?"""
    from yilian.extract import connections
    from yilian.extract.prescriptions import manifest_path

    return manifest_path(connections.prescription_drop(), ds).exists()


# --- staging: the extract, before pseudonymisation -------------------------------------------


def _staging_dir(source: str, ds: date) -> Path:
    return paths().data_dir / "staging" / source / ds.isoformat()


def _fernet(key: bytes) -> Fernet:
    from cryptography.fernet import Fernet

    derived = hmac.new(key, b"yilian staging v1", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def _stage(frames: dict[str, pd.DataFrame], source: str, ds: date, key: bytes) -> None:
    """Keep the raw extract until pseudonymisation, encrypted with a key derived from the secret."""
    directory = _staging_dir(source, ds)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, mode=0o700)
    fernet = _fernet(key)
    for name, frame in frames.items():
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        path = directory / f"{name}.parquet.enc"
        path.write_bytes(fernet.encrypt(buffer.getvalue()))
        path.chmod(0o600)


def _unstage(source: str, ds: date, key: bytes) -> dict[str, pd.DataFrame]:
    import pandas as pd

    directory = _staging_dir(source, ds)
    fernet = _fernet(key)
    return {
        p.name.removesuffix(".parquet.enc"): pd.read_parquet(
            io.BytesIO(fernet.decrypt(p.read_bytes()))
        )
        for p in sorted(directory.glob("*.parquet.enc"))
    }


# --- the four steps --------------------------------------------------------------------------


def extract(
    source: str, ds: date, page_size: int = 500, retry_backoff: float = 1.0
) -> dict[str, Any]:
    """Pull the day from the source over its protocol; stage it (encrypted) for pseudonymisation.

    Prescriptions are not copied: the drop files are verified (rows, SHA-256) and pseudonymise
    reads them, re-checking the hash.
    """
    from yilian.extract import connections
    from yilian.privacy.pseudonymise import pseudonym_key

    key = pseudonym_key()  # fail before touching the source if there is no key
    if source == "prescriptions":
        from yilian.extract.prescriptions import verify

        files = verify(connections.prescription_drop(), ds)
        return {
            "source": source,
            "ds": ds.isoformat(),
            "files": [asdict(f) for f in files],
            "rows": {f.table: f.rows for f in files},
        }
    if source == "hospital":
        from yilian.extract.hospital import extract_hospital

        frames = extract_hospital(ds, connections.hospital_url())
    elif source == "imaging":
        from yilian.extract.imaging import RetryPolicy, extract_imaging

        frames = extract_imaging(
            ds,
            connections.imaging_endpoint(),
            page_size=page_size,
            policy=RetryPolicy(backoff=retry_backoff),
        )
    else:
        raise ValueError(f"unknown source {source!r}")
    _stage(frames, source, ds, key)
    rows = {name: len(frame) for name, frame in frames.items()}
    log.info("extracted %s %s: %s", source, ds, rows)
    return {"source": source, "ds": ds.isoformat(), "rows": rows}


def pseudonymise_and_land(source: str, ds: date, extracted: dict[str, Any]) -> dict[str, Any]:
    """Replace personal data, keep only contract columns, write the landing partitions."""
    from yilian.extract.tables import table
    from yilian.load.landing import land
    from yilian.privacy.pseudonymise import pseudonym_key, pseudonymise, unknown_columns

    key = pseudonym_key()
    if source == "prescriptions":
        from yilian.extract.prescriptions import VerifiedFile, read_verified

        frames = read_verified([VerifiedFile(**f) for f in extracted["files"]], ds)
    else:
        frames = _unstage(source, ds, key)
    tables: dict[str, Any] = {}
    for name, frame in frames.items():
        spec = table(source, name)
        if len(frame) != extracted["rows"][name]:
            raise RuntimeError(
                f"{source} {ds}: {name} staged {len(frame)} rows, extracted "
                f"{extracted['rows'][name]}; rerun the extract"
            )
        path = land(pseudonymise(frame, spec, key), spec, ds, paths().landing_dir)
        tables[name] = {
            "rows": len(frame),
            "path": str(path),
            "unknown_columns": unknown_columns(frame, spec),
        }
    shutil.rmtree(_staging_dir(source, ds), ignore_errors=True)
    manifest_rows = extracted["rows"] if source == "prescriptions" else {}
    return {
        "source": source,
        "ds": ds.isoformat(),
        "tables": tables,
        "manifest_rows": manifest_rows,
    }


def _decisions_path(source: str, ds: date) -> Path:
    return paths().reports_dir / "validation" / source / ds.isoformat() / "rejected.parquet"


def validate(
    source: str,
    ds: date,
    run_id: str,
    landed: dict[str, Any],
    max_bad_row_share: float = DEFAULT_MAX_BAD_ROW_SHARE,
) -> dict[str, Any]:
    """Run the GX suites, write the quarantine decisions; on a blocking rule audit and raise."""
    from yilian.extract.tables import table
    from yilian.load import warehouse
    from yilian.load.landing import read_landed, write_atomic
    from yilian.validate import prepare
    from yilian.validate.run import validate_tables

    db = paths().warehouse
    specs = {name: table(source, name) for name in landed["tables"]}
    frames = {name: read_landed(spec, ds, paths().landing_dir) for name, spec in specs.items()}
    known = warehouse.master_facilities(db, ds)
    if source == "hospital" and "facility_code" in frames["facilities"]:
        known |= set(frames["facilities"]["facility_code"].dropna())
    if not known:
        raise MasterNotReady(
            f"{source} {ds}: the facility master (raw.hospital__facilities) is empty up to {ds}; "
            "load yilian_hospital for this day first (this task retries on its own)"
        )
    studies = (
        prepare.study_times(frames["studies"], frames["reports"], db, ds)
        if source == "imaging"
        else None
    )
    checked = {
        name: prepare.with_checks(frame, specs[name], studies) for name, frame in frames.items()
    }
    params = {
        name: prepare.parameters(specs[name], ds, known, db, landed["manifest_rows"])
        for name in frames
    }
    verdicts = validate_tables(
        source, ds, run_id, checked, specs, params, paths().data_docs_dir, max_bad_row_share
    )
    for name, verdict in verdicts.items():
        log.info(
            "validated %s %s %s: %d rows, %d quarantined, failures: %s; data docs %s",
            source,
            ds,
            name,
            verdict.rows,
            len(verdict.rejected),
            verdict.summary() or "none",
            verdict.data_docs_path,
        )

    write_atomic(
        _decisions(source, ds, run_id, frames, specs, verdicts), _decisions_path(source, ds)
    )
    summary = {
        name: {
            "rows": v.rows,
            "quarantined": len(v.rejected),
            "failures": v.summary(),
            "data_docs_path": v.data_docs_path,
        }
        for name, v in verdicts.items()
    }
    blocked = {name: v for name, v in verdicts.items() if v.blocked}
    if blocked:
        warehouse.record_blocked(
            db,
            [
                warehouse.AuditRow(
                    source, ds, name, v.rows, 0, 0, "blocked", v.summary(), v.data_docs_path, run_id
                )
                for name, v in verdicts.items()
            ],
        )
        lines = []
        for name, v in blocked.items():
            unknown = landed["tables"][name]["unknown_columns"]
            schema = [b for b in v.blocks if b.rule == "schema_columns"]
            for b in schema or v.blocks:  # after schema drift, the other failures are echoes
                extra = f"; not in the contract: {unknown}" if unknown else ""
                examples = f"; e.g. keys {b.examples}" if b.examples else ""
                lines.append(
                    f"table {source}__{name}, rule {b.rule}: {b.detail}{extra} "
                    f"({b.rows} rows{examples})"
                )
        raise DataQualityBlocked(
            f"{source} {ds} BLOCKED: "
            + " | ".join(lines)
            + ". Nothing was loaded; the warehouse keeps its previous state. Data Docs: "
            f"{paths().data_docs_dir}. Fix the source (or the contract and suite) and rerun "
            "the day."
        )
    return {
        "source": source,
        "ds": ds.isoformat(),
        "tables": summary,
        "decisions": str(_decisions_path(source, ds)),
    }


def _decisions(
    source: str,
    ds: date,
    run_id: str,
    frames: dict[str, pd.DataFrame],
    specs: dict[str, TableSpec],
    verdicts: dict[str, TableVerdict],
) -> pa.Table:
    """One quarantine row per rejected record (first failing rule, every reason), plus the
    record's position in its landed partition so that load can leave it out."""
    import pyarrow as pa

    from yilian.validate.run import record_keys

    rows: list[dict[str, Any]] = []
    for name, verdict in verdicts.items():
        if not verdict.rejected:
            continue
        frame, positions = frames[name], sorted(verdict.rejected)
        records = frame.iloc[positions].to_json(
            orient="records", lines=True, date_format="iso", force_ascii=False
        )
        keys = record_keys(frame, specs[name], positions)
        for pos, key, record in zip(positions, keys, records.splitlines(), strict=True):
            failed = verdict.rejected[pos]
            rows.append(
                {
                    "row": pos,
                    "source": source,
                    "table_name": name,
                    "ds": ds,
                    "rule": failed[0][0],
                    "reason": "; ".join(r for _, r in failed),
                    "record_key": key,
                    "record": record,
                    "run_id": run_id,
                }
            )
    schema = pa.schema(
        [
            ("row", pa.int64()),
            ("source", pa.string()),
            ("table_name", pa.string()),
            ("ds", pa.date32()),
            ("rule", pa.string()),
            ("reason", pa.string()),
            ("record_key", pa.string()),
            ("record", pa.string()),
            ("run_id", pa.string()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def load(source: str, ds: date, run_id: str, validated: dict[str, Any]) -> dict[str, Any]:
    """Replace the day's rows in raw + quarantine and audit it; counts must reconcile."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from yilian.extract.tables import table
    from yilian.load import warehouse
    from yilian.load.landing import partition_path

    decisions = pq.read_table(validated["decisions"])
    good: dict[str, pa.Table] = {}
    audit: list[warehouse.AuditRow] = []
    for name, info in validated["tables"].items():
        spec = table(source, name)
        landed = pq.read_table(partition_path(paths().landing_dir, spec, ds))
        mine = decisions.filter(pc.equal(decisions["table_name"], name))
        keep = pc.invert(
            pc.is_in(pa.array(range(landed.num_rows), pa.int64()), value_set=mine["row"])
        )
        good[name] = landed.filter(keep)
        loaded, quarantined = good[name].num_rows, mine.num_rows
        if landed.num_rows != info["rows"] or landed.num_rows != loaded + quarantined:
            raise RuntimeError(
                f"{source} {ds} {name}: counts do not reconcile: extracted {info['rows']}, "
                f"landed {landed.num_rows}, loaded {loaded} + quarantined {quarantined}"
            )
        audit.append(
            warehouse.AuditRow(
                source,
                ds,
                name,
                info["rows"],
                loaded,
                quarantined,
                "loaded",
                info["failures"],
                info["data_docs_path"],
                run_id,
            )
        )
    warehouse.load_day(paths().warehouse, source, ds, good, decisions.drop_columns(["row"]), audit)
    counts = {
        a.table_name: {
            "extracted": a.rows_extracted,
            "loaded": a.rows_loaded,
            "quarantined": a.rows_quarantined,
        }
        for a in audit
    }
    log.info("loaded %s %s: %s", source, ds, counts)
    return {"source": source, "ds": ds.isoformat(), "tables": counts}


def run_day(
    source: str,
    ds: date,
    run_id: str,
    page_size: int = 500,
    max_bad_row_share: float = DEFAULT_MAX_BAD_ROW_SHARE,
    retry_backoff: float = 1.0,
) -> dict[str, Any]:
    """All four steps in-process (benchmark, quick tests); the DAGs run them as separate tasks."""
    extracted = extract(source, ds, page_size=page_size, retry_backoff=retry_backoff)
    landed = pseudonymise_and_land(source, ds, extracted)
    validated = validate(source, ds, run_id, landed, max_bad_row_share)
    return load(source, ds, run_id, validated)
