"""The ingestion steps of one source and day: extract → pseudonymise+land → validate → load,
and validate → data_docs.

Steps hand each other small JSON summaries (XCom) and files: the extract's staging copy
(encrypted: it still holds personal data), the landed Parquet, validation's decisions and
results. Nothing here knows a particular source: what differs lives in `yilian.sources`.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from yilian.settings import paths
from yilian.sources import source
from yilian.sources.base import MAX_AGE_YEARS

log = logging.getLogger(__name__)
DEFAULT_MAX_BAD_ROW_SHARE = 0.05


class DataQualityBlocked(AirflowFailException):
    """A blocking rule failed; the day was not loaded and the warehouse is unchanged.

    Fails the task without retries: the same data would fail the same way.
    """


class PseudonymKeyChanged(AirflowFailException):
    """The run's pseudonym key is not the warehouse's: no retry can help, nothing was written."""


def check_pseudonym_key(key: bytes, where: str) -> None:
    """Fail if the key's fingerprint differs from the one the warehouse recorded, as the quality
    snapshot shows it (no warehouse open outside the writer pool); load re-checks in its
    transaction against the warehouse itself."""
    from yilian.privacy import key_fingerprint
    from yilian.warehouse import raw

    recorded, given = raw.snapshot_key_fingerprint(), key_fingerprint(key)
    if recorded is not None and recorded != given:
        message = f"{where}: {raw.key_mismatch_message(recorded, given)}"
        log.error("%s", message)
        raise PseudonymKeyChanged(message)


class MasterNotReady(RuntimeError):
    """The facility master has no rows for the day yet; retrying later is the fix."""


def delivered(source_name: str, ds: date) -> bool:
    """Has the source finished delivering the day (always, for sources that do not say)?"""
    return source(source_name).delivered(ds)


def facility_master_loaded(ds: date) -> bool:
    """Has the source holding the facility master loaded `ds` (the master these checks use)?

    A blocked master day fails at once: waiting would not help until someone fixes it.
    """
    from yilian.warehouse import raw

    master = raw.facility_master().source
    found = raw.outcome(paths().warehouse, master, ds)
    if found == "blocked":
        raise DataQualityBlocked(
            f"{master} {ds} is blocked, and this day is checked against its facility master; "
            f"fix and rerun {master} {ds}, then rerun this day"
        )
    return found == "loaded"


def extract(source_name: str, ds: date, **options: Any) -> dict[str, Any]:
    """Pull the day from the source over its protocol; stage it (encrypted) for pseudonymisation.

    The key is checked first: with no key, or another key than the warehouse's, the run stops
    here, before the source is read or anything (even the staging copy) is written.
    """
    from yilian.privacy import pseudonym_key, stage

    key = pseudonym_key()
    check_pseudonym_key(key, f"{source_name} {ds}")
    frames = source(source_name).extract(ds, **options)
    stage(frames, source_name, ds, key)
    rows = {name: len(frame) for name, frame in frames.items()}
    log.info("extracted %s %s: %s", source_name, ds, rows)
    return {"source": source_name, "ds": ds.isoformat(), "rows": rows}


def pseudonymise_and_land(
    source_name: str, ds: date, extracted: dict[str, Any], max_age_years: int = MAX_AGE_YEARS
) -> dict[str, Any]:
    """Replace personal data, keep only contract columns, write the landing partitions."""
    from yilian.landing import land
    from yilian.privacy import (
        discard_staging,
        pseudonym_key,
        pseudonymise,
        unknown_columns,
        unstage,
    )

    key = pseudonym_key()
    system = source(source_name)
    staged = unstage(source_name, ds, key)
    unstaged = sorted(set(extracted["rows"]) - set(staged))
    if unstaged:  # e.g. deleted, or staged by a version that wrote another format
        raise RuntimeError(
            f"{source_name} {ds}: {', '.join(unstaged)} extracted but not staged; rerun the extract"
        )
    tables: dict[str, Any] = {}
    for name, frame in staged.items():
        spec = system.table(name)
        if len(frame) != extracted["rows"][name]:
            raise RuntimeError(
                f"{source_name} {ds}: {name} staged {len(frame)} rows, extracted "
                f"{extracted['rows'][name]}; rerun the extract"
            )
        landed = pseudonymise(frame, spec, key, ds, max_age_years)
        path = land(landed, spec, ds, paths().landing_dir)
        tables[name] = {
            "rows": len(frame),
            "path": str(path),
            "unknown_columns": unknown_columns(frame, spec),
        }
    discard_staging(source_name, ds)
    return {"source": source_name, "ds": ds.isoformat(), "tables": tables}


def _decisions_path(source_name: str, ds: date) -> Path:
    return paths().reports_dir / "validation" / source_name / ds.isoformat() / "rejected.parquet"


def _results_path(source_name: str, ds: date) -> Path:
    return _decisions_path(source_name, ds).with_name("results.json")


def validate(
    source_name: str,
    ds: date,
    run_id: str,
    landed: dict[str, Any],
    max_bad_row_share: float = DEFAULT_MAX_BAD_ROW_SHARE,
) -> dict[str, Any]:
    """Evaluate the GX suites, write the quarantine decisions and the validation results (for
    `data_docs`); on a blocking rule audit and raise."""
    import json

    from yilian.landing import partition_path, read_landed, write_atomic
    from yilian.quality import checks, quarantine
    from yilian.quality.suites import results_record, validate_tables
    from yilian.warehouse import raw

    db = paths().warehouse
    system = source(source_name)
    specs = {name: system.table(name) for name in landed["tables"]}
    frames = {name: read_landed(spec, ds, paths().landing_dir) for name, spec in specs.items()}
    with raw.reader(db) as warehouse:
        known = checks.known_facilities(frames, specs, warehouse, ds)
        if not known:
            raise MasterNotReady(
                f"{source_name} {ds}: the facility master (raw."
                f"{raw.facility_master().raw_name}) is empty up to {ds}; load its source for "
                "this day first (this task retries on its own)"
            )
        batches = checks.with_checks(frames, specs, warehouse, ds)
        parameters = checks.parameters(specs, ds, known, warehouse)
    verdicts, evaluated = validate_tables(
        batches,
        {name: partition_path(paths().landing_dir, spec, ds) for name, spec in specs.items()},
        specs,
        parameters,
        max_bad_row_share,
    )
    record = results_record(
        source_name, ds, run_id, batches, specs, evaluated, paths().data_docs_dir
    )
    for name, verdict in verdicts.items():
        verdict.data_docs_path = record["tables"][name]["page"]
    results = _results_path(source_name, ds)
    results.parent.mkdir(parents=True, exist_ok=True)
    partial = results.with_suffix(".tmp")
    partial.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    partial.replace(results)
    for name, verdict in verdicts.items():
        log.info(
            "validated %s %s %s: %d rows, %d quarantined, failures: %s; data docs %s",
            source_name,
            ds,
            name,
            verdict.rows,
            len(verdict.rejected),
            verdict.summary() or "none",
            verdict.data_docs_path,
        )
    write_atomic(
        quarantine.decisions(source_name, ds, run_id, frames, specs, verdicts),
        _decisions_path(source_name, ds),
    )
    blocked = {name: v for name, v in verdicts.items() if v.blocked}
    if blocked:
        raw.record_blocked(
            db,
            [
                raw.AuditRow(
                    source_name,
                    ds,
                    name,
                    v.rows,
                    0,
                    0,
                    "blocked",
                    v.summary(),
                    v.data_docs_path,
                    run_id,
                )
                for name, v in verdicts.items()
            ],
        )
        unknown = {name: info["unknown_columns"] for name, info in landed["tables"].items()}
        message = quarantine.blocked_message(
            source_name, ds, blocked, unknown, str(paths().data_docs_dir)
        )
        log.error("%s", message)  # the reason first, before Airflow's traceback
        raise DataQualityBlocked(message)
    return {
        "source": source_name,
        "ds": ds.isoformat(),
        "tables": {
            name: {
                "rows": v.rows,
                "quarantined": len(v.rejected),
                "failures": v.summary(),
                "data_docs_path": v.data_docs_path,
            }
            for name, v in verdicts.items()
        },
        "decisions": str(_decisions_path(source_name, ds)),
    }


def data_docs(source_name: str, ds: date) -> dict[str, str]:
    """Keep the day's last validation results in GX's store and render their Data Docs pages
    (also of a blocked day: the page a person reads first). Apart from validate, so rendering
    never holds the writer pool; one renderer at a time, since every render rewrites the index.
    """
    import fcntl
    import json

    from yilian.quality.suites import render_data_docs

    results = _results_path(source_name, ds)
    if not results.exists():
        log.warning(
            "%s %s: no validation results to render (validate did not finish)", source_name, ds
        )
        return {}
    docs_dir = paths().data_docs_dir
    docs_dir.mkdir(parents=True, exist_ok=True)
    with open(docs_dir.parent / ".data_docs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pages = render_data_docs(json.loads(results.read_text(encoding="utf-8")), docs_dir)
    log.info("data docs %s %s: %s", source_name, ds, pages)
    return pages


def load(source_name: str, ds: date, run_id: str, validated: dict[str, Any]) -> dict[str, Any]:
    """Replace the day's rows in raw + quarantine and audit it; counts must reconcile."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from yilian.landing import partition_path
    from yilian.privacy import key_fingerprint, pseudonym_key
    from yilian.warehouse import raw

    system = source(source_name)
    decisions = pq.read_table(validated["decisions"])
    good: dict[str, pa.Table] = {}
    audit: list[raw.AuditRow] = []
    for name, info in validated["tables"].items():
        spec = system.table(name)
        landed = pq.read_table(partition_path(paths().landing_dir, spec, ds))
        mine = decisions.filter(pc.equal(decisions["table_name"], name))
        keep = pc.invert(
            pc.is_in(pa.array(range(landed.num_rows), pa.int64()), value_set=mine["row"])
        )
        good[name] = landed.filter(keep)
        loaded, quarantined = good[name].num_rows, mine.num_rows
        if landed.num_rows != info["rows"] or landed.num_rows != loaded + quarantined:
            raise RuntimeError(
                f"{source_name} {ds} {name}: counts do not reconcile: extracted {info['rows']}, "
                f"landed {landed.num_rows}, loaded {loaded} + quarantined {quarantined}"
            )
        audit.append(
            raw.AuditRow(
                source_name,
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
    try:
        audit = raw.load_day(
            paths().warehouse,
            source_name,
            ds,
            good,
            decisions.drop_columns(["row"]),
            audit,
            key_fingerprint(pseudonym_key()),
        )
    except raw.PseudonymKeyMismatch as mismatch:
        message = f"{source_name} {ds}: {mismatch}"
        log.error("%s", message)
        raise PseudonymKeyChanged(message) from mismatch
    counts = {
        a.table_name: {
            "extracted": a.rows_extracted,
            "loaded": a.rows_loaded,
            "quarantined": a.rows_quarantined,
            "redelivered": a.rows_redelivered,
        }
        for a in audit
    }
    for a in audit:
        if a.rows_redelivered:
            log.warning(
                "%s %s %s: %d of %d loaded rows were delivered again (their key is already "
                "loaded for another day, in the same or a newer version); the latest version "
                "by updated_at wins in the marts",
                source_name,
                ds,
                a.table_name,
                a.rows_redelivered,
                a.rows_loaded,
            )
    log.info("loaded %s %s: %s", source_name, ds, counts)
    return {"source": source_name, "ds": ds.isoformat(), "tables": counts}


def run_day(
    source_name: str,
    ds: date,
    run_id: str,
    max_bad_row_share: float = DEFAULT_MAX_BAD_ROW_SHARE,
    max_age_years: int = MAX_AGE_YEARS,
    **options: Any,
) -> dict[str, Any]:
    """All the steps in-process (benchmark, quick tests); the DAGs run them as separate tasks
    (Data Docs, as there, rendered whether validation passed or blocked)."""
    extracted = extract(source_name, ds, **options)
    landed = pseudonymise_and_land(source_name, ds, extracted, max_age_years)
    try:
        validated = validate(source_name, ds, run_id, landed, max_bad_row_share)
    finally:
        data_docs(source_name, ds)
    return load(source_name, ds, run_id, validated)
