"""The DuckDB warehouse's ingestion side: `raw`, `quarantine` and `audit` (CONTRACTS §4).

DuckDB allows one writer per file, so every function opens the file, does its work, and closes
it before returning; writers run in the Airflow pool `yilian_duckdb` (one slot). A day's load
replaces exactly that (source, ds) in one transaction — good rows, quarantined rows and audit
rows together — so a rerun, or a day re-run after later days, leaves the same tables. The load
counts the records a source delivered again (a key already loaded for another day, in a version
no newer than the one there: `rows_redelivered`), and refuses pseudonyms made with another key
than the one the warehouse records (`audit.pseudonym_key`, a fingerprint, never the key).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import pyarrow as pa

from yilian.landing import write_atomic
from yilian.settings import LOCAL_TZ, paths
from yilian.sources import all_tables, source
from yilian.sources.base import DUCKDB_TYPES, Lookup, TableSpec

QUARANTINE_DDL = """
create table if not exists quarantine.rejected_rows (
    source varchar not null, table_name varchar not null, ds date not null,
    rule varchar not null, reason varchar not null, record_key varchar,
    record varchar not null, run_id varchar not null
)"""
AUDIT_DDL = """
create table if not exists audit.load_runs (
    source varchar not null, ds date not null, table_name varchar not null,
    rows_extracted bigint not null, rows_loaded bigint not null, rows_quarantined bigint not null,
    outcome varchar not null, rule_failures varchar, data_docs_path varchar,
    run_id varchar not null, finished_at timestamp not null,
    rows_redelivered bigint not null default 0
)"""
#: Columns added to audit.load_runs after its first release, for warehouses made before.
AUDIT_ADDED = {"rows_redelivered": "bigint not null default 0"}
KEY_DDL = """
create table if not exists audit.pseudonym_key (
    fingerprint varchar not null, recorded_at timestamp not null, run_id varchar not null
)"""
MART_BUILDS_DDL = """
create table if not exists audit.mart_builds (
    ds date not null, loads_through timestamp not null, run_id varchar not null,
    built_at timestamp not null
)"""
LOCK_WAIT_SECONDS = 120.0
#: The quality snapshot (CONTRACTS §4): what the operator's data-quality page reads, so that no
#: web request ever opens the warehouse (a reader holding the file makes the writers fail).
SNAPSHOT_QUERIES = {
    "load_runs": "select * from audit.load_runs order by source, ds, table_name, finished_at",
    "rejected_summary": """
        select source, ds, table_name, rule, count(*) as rows, min(reason) as example_reason
        from quarantine.rejected_rows group by source, ds, table_name, rule
        order by source, ds, table_name, rows desc, rule""",
    "pseudonym_key": "select * from audit.pseudonym_key order by recorded_at",
}


class PseudonymKeyMismatch(RuntimeError):
    """The pseudonym key of this run is not the one the warehouse was built with."""


@dataclass(frozen=True)
class AuditRow:
    source: str
    ds: date
    table_name: str
    rows_extracted: int
    rows_loaded: int
    rows_quarantined: int
    outcome: str  # loaded | blocked
    rule_failures: str
    data_docs_path: str | None
    run_id: str
    rows_redelivered: int = 0


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse, waiting (bounded) for another process's lock; always close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    try:
        yield con
    finally:
        con.close()


def other_holder(path: Path, wait_seconds: float) -> str | None:
    """Who else holds the warehouse file, if anyone still does after `wait_seconds`: DuckDB's
    own words for it (the process and its PID); None when a writer can open it."""
    if not path.exists():
        return None
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            duckdb.connect(str(path)).close()
            return None
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() > deadline:
                found = re.search(r"held in (.*?) \(PID (\d+)\)", str(exc))
                return f"PID {found[2]} ({found[1]})" if found else str(exc)
            time.sleep(0.5)


def raw_columns_ddl(spec: TableSpec) -> str:
    """The columns of `raw.<source>__<table>`: the landing columns and the business day."""
    cols = ", ".join(f"{c.name} {DUCKDB_TYPES[c.type]}" for c in spec.columns)
    return f"{cols}, ds date not null"


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ingestion schemas and tables if missing, and add the columns a newer contract
    added to tables of an older warehouse (idempotent)."""
    for schema in ("raw", "quarantine", "audit"):
        con.execute(f"create schema if not exists {schema}")
    for spec in all_tables():
        con.execute(f"create table if not exists raw.{spec.raw_name} ({raw_columns_ddl(spec)})")
    con.execute(QUARANTINE_DDL)
    con.execute(AUDIT_DDL)
    con.execute(KEY_DDL)
    present = set(
        con.execute(
            "select table_schema || '.' || table_name || '.' || column_name "
            "from information_schema.columns where table_schema in ('raw', 'audit')"
        ).fetchall()
    )
    wanted = [
        (f"raw.{spec.raw_name}", c.name, DUCKDB_TYPES[c.type])
        for spec in all_tables()
        for c in spec.columns
    ] + [("audit.load_runs", name, ddl) for name, ddl in AUDIT_ADDED.items()]
    for table, column, ddl in wanted:
        if (f"{table}.{column}",) not in present:
            con.execute(f"alter table {table} add column {column} {ddl}")
    con.execute(MART_BUILDS_DDL)


def _now() -> datetime:
    return datetime.now(ZoneInfo(LOCAL_TZ)).replace(tzinfo=None)


def _insert_audit(con: duckdb.DuckDBPyConnection, rows: list[AuditRow]) -> None:
    con.executemany(
        """insert into audit.load_runs (source, ds, table_name, rows_extracted, rows_loaded,
               rows_quarantined, outcome, rule_failures, data_docs_path, run_id, finished_at,
               rows_redelivered)
           values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            (
                r.source,
                r.ds,
                r.table_name,
                r.rows_extracted,
                r.rows_loaded,
                r.rows_quarantined,
                r.outcome,
                r.rule_failures,
                r.data_docs_path,
                r.run_id,
                _now(),
                r.rows_redelivered,
            )
            for r in rows
        ],
    )


def _exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    rows = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchall()
    return bool(rows[0][0])


def facility_master() -> TableSpec:
    """The table whose facility codes every source is checked against."""
    (master,) = (spec for spec in all_tables() if spec.facility_master)
    return master


#: A `reader`'s look into the warehouse: None while there is no warehouse yet.
Reader = duckdb.DuckDBPyConnection | None


@contextmanager
def reader(path: Path) -> Iterator[Reader]:
    """One read-only look into the warehouse for several questions (each open of its file
    costs tens of milliseconds); None while there is no warehouse yet."""
    if not path.exists():
        yield None
        return
    with connect(path, read_only=True) as con:
        yield con


def master_facilities(con: Reader, ds: date) -> set[str]:
    """Facility codes of the facility master as the day `ds` delivered it (a snapshot).

    Exactly that day, so a day checks against the same master whether it is loaded first,
    last or again after later days.
    """
    master = facility_master()
    if con is None or not _exists(con, "raw", master.raw_name):
        return set()
    rows = con.execute(
        f"select distinct facility_code from raw.{master.raw_name} where ds = ?", [ds]
    ).fetchall()
    return {r[0] for r in rows}


def outcome(path: Path, source_name: str, ds: date) -> str | None:
    """The latest audited outcome of the source's day: `loaded`, `blocked`, or None (not run)."""
    if not path.exists():
        return None
    with connect(path, read_only=True) as con:
        if not _exists(con, "audit", "load_runs"):
            return None
        rows = con.execute(
            """select arg_max(outcome, finished_at) from audit.load_runs
               where source = ? and ds = ?""",
            [source_name, ds],
        ).fetchall()
    return rows[0][0] if rows else None


def loaded(path: Path, source_name: str, ds: date) -> bool:
    return outcome(path, source_name, ds) == "loaded"


def last_load(path: Path, ds: date) -> datetime | None:
    """When the latest load of any source's `ds` finished (None: nothing loaded)."""
    with connect(path, read_only=True) as con:
        if not _exists(con, "audit", "load_runs"):
            return None
        return con.execute(
            "select max(finished_at) from audit.load_runs where ds = ? and outcome = 'loaded'",
            [ds],
        ).fetchone()[0]


def built_through(path: Path, ds: date) -> datetime | None:
    """The latest load the marts of `ds` were last built and published from (None: never)."""
    with connect(path, read_only=True) as con:
        if not _exists(con, "audit", "mart_builds"):
            return None
        return con.execute(
            "select max(loads_through) from audit.mart_builds where ds = ?", [ds]
        ).fetchone()[0]


def record_mart_build(path: Path, loads_through: dict[date, datetime], run_id: str) -> None:
    """Audit that the marts of these days were built and published from their loads up to
    `loads_through[ds]`."""
    with connect(path) as con:
        ensure_schema(con)
        con.executemany(
            "insert into audit.mart_builds values (?, ?, ?, ?)",
            [(ds, through, run_id, _now()) for ds, through in loads_through.items()],
        )


def trailing_volumes(
    con: Reader, raw_names: list[str], ds: date, days: int = 7
) -> dict[str, list[int]]:
    """Rows extracted for each of `raw_names` on each loaded day of the `days` before `ds`
    (one query for all of a source's tables)."""
    volumes: dict[str, list[int]] = {name: [] for name in raw_names}
    if con is None or not _exists(con, "audit", "load_runs"):
        return volumes
    rows = con.execute(
        """select source || '__' || table_name, arg_max(rows_extracted, finished_at)
           from audit.load_runs
           where source || '__' || table_name in (select unnest(?)) and outcome = 'loaded'
             and ds >= ? and ds < ? group by source, table_name, ds""",
        [raw_names, ds - timedelta(days=days), ds],
    ).fetchall()
    for name, extracted in rows:
        volumes[name].append(int(extracted))
    return volumes


def latest_values(
    con: Reader,
    spec: TableSpec,
    lookup: Lookup,
    keys: list[str],
    ds: date,
) -> pd.DataFrame:
    """`lookup.value` of already-loaded rows of the looked-up table whose key is in `keys`
    (their latest version up to `ds`), as columns (key, value)."""
    target = source(spec.source).table(lookup.table)
    (key,) = target.key
    watermark = "updated_at" if "updated_at" in target.column_names else "last_updated"
    empty = pd.DataFrame(
        {key: pd.Series(dtype="string"), lookup.value: pd.Series(dtype="datetime64[us]")}
    )
    if con is None or not keys or not _exists(con, "raw", target.raw_name):
        return empty
    con.register("wanted", pa.table({key: pa.array(keys, pa.string())}))
    try:
        return con.execute(
            f"""select t.{key}, arg_max(t.{lookup.value}, t.{watermark}) as {lookup.value}
                from raw.{target.raw_name} t join wanted using ({key})
                where t.ds <= ? group by t.{key}""",
            [ds],
        ).df()
    finally:
        con.unregister("wanted")


def quality_dir() -> Path:
    return paths().reports_dir / "quality"


def export_quality_snapshot(con: duckdb.DuckDBPyConnection, out: Path | None = None) -> None:
    """Write the quality snapshot from the writer's own connection, after its commit: one
    Parquet file per query, written atomically (landing.write_atomic), so a reader sees the
    previous snapshot or the new one, never half a file."""
    out = out or quality_dir()
    for name, sql in SNAPSHOT_QUERIES.items():
        write_atomic(con.sql(sql).to_arrow_table(), out / f"{name}.parquet")


def record_blocked(path: Path, rows: list[AuditRow]) -> None:
    """Audit a blocked day; raw and quarantine stay exactly as they were."""
    with connect(path) as con:
        ensure_schema(con)
        con.execute("begin")
        _insert_audit(con, rows)
        con.execute("commit")
        export_quality_snapshot(con)


def recorded_key(con: duckdb.DuckDBPyConnection) -> str | None:
    """The fingerprint of the key the warehouse's pseudonyms are made with (None: no load yet)."""
    rows = con.execute(
        "select arg_max(fingerprint, recorded_at) from audit.pseudonym_key"
    ).fetchall()
    return rows[0][0] if rows else None


def key_mismatch_message(recorded: str, given: str) -> str:
    return (
        f"the pseudonym key of this run (fingerprint {given[:12]}…) is not the key the "
        f"warehouse was built with (fingerprint {recorded[:12]}…): its pseudonyms would not "
        "link to any patient already loaded. Nothing was written. Restore the previous key "
        "(Airflow connection yilian_pseudonym_key or YILIAN_PSEUDONYM_KEY), or rotate it on "
        "purpose with `yilian rekey` (README: Rotating the pseudonym key)."
    )


def record_key(con: duckdb.DuckDBPyConnection, fingerprint: str, run_id: str) -> None:
    """From now on the warehouse's pseudonyms are made with the key of this fingerprint."""
    con.execute("insert into audit.pseudonym_key values (?, ?, ?)", [fingerprint, _now(), run_id])


def check_key(con: duckdb.DuckDBPyConnection, fingerprint: str, run_id: str) -> None:
    """Record the key's fingerprint on the first load; afterwards refuse any other."""
    recorded = recorded_key(con)
    if recorded is None:
        record_key(con, fingerprint, run_id)
    elif recorded != fingerprint:
        raise PseudonymKeyMismatch(key_mismatch_message(recorded, fingerprint))


def snapshot_key_fingerprint(directory: Path | None = None) -> str | None:
    """The key fingerprint of the quality snapshot (the writers export it after each commit):
    what a task outside the writer pool may check against without opening the warehouse."""
    import pyarrow.parquet as pq

    snapshot = (directory or quality_dir()) / "pseudonym_key.parquet"
    if not snapshot.exists():
        return None
    table = pq.read_table(snapshot)
    return table["fingerprint"][-1].as_py() if table.num_rows else None


def _redelivered(con: duckdb.DuckDBPyConnection, spec: TableSpec, ds: date) -> int:
    """Rows of the registered `batch` whose key is loaded for another day in a version at least
    as new: the source sent the record again (tables updated in place carry a newer version,
    snapshot tables are sent whole every day on purpose). Only raw rows at least as new as the
    batch's oldest version can match: that bound lets DuckDB skip the older days' row groups, so
    the check does not read the whole history's keys."""
    watermark = next((c for c in ("updated_at", "last_updated") if c in spec.column_names), None)
    if spec.snapshot or watermark is None:
        return 0
    join = " and ".join(f"b.{k} = r.{k}" for k in spec.key)
    return con.execute(
        f"""select count(*) from batch b where exists (
                select 1 from raw.{spec.raw_name} r
                where {join} and r.ds <> ? and r.{watermark} >= b.{watermark}
                    and r.{watermark} >= (select min({watermark}) from batch))""",
        [ds],
    ).fetchall()[0][0]


def load_day(
    path: Path,
    source_name: str,
    ds: date,
    good: dict[str, pa.Table],
    rejected: pa.Table,
    audit: list[AuditRow],
    key_fingerprint: str,
) -> list[AuditRow]:
    """Replace (source, ds) in raw and quarantine and append the audit rows, atomically.

    Returns the audit rows as written, with each table's `rows_redelivered`; raises
    PseudonymKeyMismatch, before changing anything, when the key is not the warehouse's.
    """
    redelivered: dict[str, int] = {}
    with connect(path) as con:
        # An Arrow batch of several chunks inserted in order by two threads leaves partial row
        # groups, which this load's checkpoint rewrites and the next two writers' checkpoints
        # then merge, whatever they wrote themselves (0.4–0.6 s each after a scale-50 hospital
        # day, most of a small source's load). Unordered, every insert fills whole row groups
        # but its last two; order within a day means nothing to raw (rows carry ds and key).
        con.execute("set preserve_insertion_order = false")
        ensure_schema(con)
        con.execute("begin")
        try:
            check_key(con, key_fingerprint, audit[0].run_id)
            for spec in source(source_name).tables:
                con.execute(f"delete from raw.{spec.raw_name} where ds = ?", [ds])
                batch = good[spec.table]
                if batch.num_rows:
                    con.register("batch", batch)
                    redelivered[spec.table] = _redelivered(con, spec, ds)
                    con.execute(
                        f"insert into raw.{spec.raw_name} by name "
                        "select *, ?::date as ds from batch",
                        [ds],
                    )
                    con.unregister("batch")
            con.execute(
                "delete from quarantine.rejected_rows where source = ? and ds = ?",
                [source_name, ds],
            )
            if rejected.num_rows:
                con.register("rejected", rejected)
                con.execute("insert into quarantine.rejected_rows by name select * from rejected")
                con.unregister("rejected")
            audit = [replace(a, rows_redelivered=redelivered.get(a.table_name, 0)) for a in audit]
            _insert_audit(con, audit)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        export_quality_snapshot(con)
    return audit
