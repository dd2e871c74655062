"""A deliberate rotation of the pseudonym key: every pseudonym in the warehouse re-made with the
new key, in one transaction, or nothing at all.

A pseudonym is HMAC(key, resident ID): one-way, so no key turns an old pseudonym into a new one.
The resident IDs are in the source systems, not in the warehouse; so re-keying pulls every
loaded day from its source again (over its protocol, as the nightly extract does), pseudonymises
each ID with the old and with the new key, and replaces old by new wherever a patient_key is
stored: raw, the quarantined records and the marts (the published copy follows with the next
marts run). Landed partitions, which still hold old pseudonyms, are removed. It refuses,
changing nothing, when the old key is not the one the warehouse was built with (its fingerprint
says), when the new key is the same, when a source no longer delivers a loaded day, or when a
pseudonym in the warehouse has no resident ID behind it in what the sources deliver now
(re-keying would cut that patient off).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa

from yilian.landing import partition_path
from yilian.privacy import key_fingerprint, pseudonymise
from yilian.settings import paths
from yilian.sources import SOURCES
from yilian.sources.base import ExtractError
from yilian.warehouse import raw


class RekeyRefused(RuntimeError):
    """Re-keying cannot be done safely; the message says why. Nothing was changed."""


@dataclass(frozen=True)
class Rekeyed:
    pseudonyms: int
    rows: dict[str, int]  # table -> rows whose patient_key changed
    fingerprint: str


def _loaded_days(path: Path) -> list[tuple[str, date]]:
    with raw.connect(path, read_only=True) as con:
        rows = con.execute(
            """select source, ds from audit.load_runs group by source, ds
               having arg_max(outcome, finished_at) = 'loaded' order by source, ds"""
        ).fetchall()
    return [(source, ds) for source, ds in rows]


def _mapping(days: list[tuple[str, date]], old: bytes, new: bytes) -> dict[str, str]:
    """Old pseudonym -> new pseudonym, for every valid resident ID the sources deliver now."""
    mapping: dict[str, str] = {}
    for source_name, ds in days:
        system = SOURCES[source_name]
        try:
            frames = system.extract(ds)
        except ExtractError as error:
            raise RekeyRefused(
                f"cannot re-key: {source_name} {ds} is loaded but its source no longer delivers "
                f"it ({error}); without its resident IDs its patients could not be re-keyed. "
                "Nothing was changed."
            ) from error
        for name, frame in frames.items():
            spec = system.table(name)
            if not spec.has_patient:
                continue
            before = pseudonymise(frame, spec, old, ds)["patient_key"]
            after = pseudonymise(frame, spec, new, ds)["patient_key"]
            pairs = zip(before.dropna(), after.dropna(), strict=True)
            mapping.update(pairs)
    return mapping


def rekey(old_key: bytes, new_key: bytes, path: Path | None = None) -> Rekeyed:
    """Re-make every stored pseudonym with `new_key`; raise RekeyRefused, changing nothing,
    where that cannot be done."""
    path = path or paths().warehouse
    old_print, new_print = key_fingerprint(old_key), key_fingerprint(new_key)
    if not path.exists():
        raise RekeyRefused(f"cannot re-key: there is no warehouse at {path}")
    with raw.connect(path) as con:
        raw.ensure_schema(con)
        recorded = raw.recorded_key(con)
    if recorded is None:
        raise RekeyRefused(
            "cannot re-key: the warehouse records no pseudonym key yet (nothing was loaded "
            "with one); the next load records the key in use. Nothing was changed."
        )
    if old_print != recorded:
        raise RekeyRefused(
            f"cannot re-key: the old key given (fingerprint {old_print[:12]}…) is not the key "
            f"the warehouse was built with (fingerprint {recorded[:12]}…). Pseudonyms are "
            "one-way: without that key they cannot be matched to new ones. Nothing was changed."
        )
    if new_print == recorded:
        raise RekeyRefused(
            "cannot re-key: the configured key is already the warehouse's key; configure the "
            "new key (connection yilian_pseudonym_key or YILIAN_PSEUDONYM_KEY) and pass the old "
            "one. Nothing was changed."
        )
    days = _loaded_days(path)
    mapping = _mapping(days, old_key, new_key)
    keys = pa.table(
        {
            "old_key": pa.array(list(mapping), pa.string()),
            "new_key": pa.array(list(mapping.values()), pa.string()),
        }
    )
    changed: dict[str, int] = {}
    with raw.connect(path) as con:
        con.register("rekey_map", keys)
        tables = con.execute(
            """select table_schema || '.' || table_name from information_schema.columns
               join information_schema.tables using (table_schema, table_name)
               where column_name = 'patient_key' and table_type = 'BASE TABLE'
               order by 1"""
        ).fetchall()
        orphans = {}
        for (table,) in tables:
            n = con.execute(
                f"""select count(distinct patient_key) from {table}
                    where patient_key is not null
                      and patient_key not in (select old_key from rekey_map)"""
            ).fetchall()[0][0]
            if n:
                orphans[table] = n
        if orphans:
            raise RekeyRefused(
                f"cannot re-key: pseudonyms with no resident ID in what the sources deliver now "
                f"({', '.join(f'{t}: {n}' for t, n in orphans.items())}); re-keying would cut "
                "those patients off. Nothing was changed."
            )
        con.execute("begin")
        try:
            for (table,) in tables:
                changed[table] = con.execute(
                    f"""update {table} t set patient_key = m.new_key from rekey_map m
                        where t.patient_key = m.old_key"""
                ).fetchall()[0][0]
            changed["quarantine.rejected_rows"] = con.execute(
                """update quarantine.rejected_rows q
                   set record = replace(q.record, m.old_key, m.new_key) from rekey_map m
                   where json_extract_string(q.record, '$.patient_key') = m.old_key"""
            ).fetchall()[0][0]
            raw.record_key(con, new_print, "yilian rekey")
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        raw.export_quality_snapshot(con)
    _drop_landed(days)
    return Rekeyed(len(mapping), changed, new_print)


def _drop_landed(days: list[tuple[str, date]]) -> None:
    """Landed partitions still hold old pseudonyms: remove them, so that no rerun of a validate
    or load task can bring one back (a rerun of the day extracts it again)."""
    for source_name, ds in days:
        for spec in SOURCES[source_name].tables:
            shutil.rmtree(partition_path(paths().landing_dir, spec, ds).parent, ignore_errors=True)
