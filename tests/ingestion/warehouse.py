"""Read-side helpers for ingestion tests: query the warehouse, compare tables, scan for PII."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from yilian.settings import paths


def query(sql: str, params: list | None = None) -> pd.DataFrame:
    con = duckdb.connect(str(paths().warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).df()
    finally:
        con.close()


def snapshot() -> dict[str, pd.DataFrame]:
    """Every raw table and the quarantine (without run ids), sorted, for equality checks."""
    tables = query(
        "select table_schema, table_name from information_schema.tables "
        "where table_schema in ('raw', 'quarantine') order by all"
    )
    out = {}
    for schema, name in tables.itertuples(index=False):
        frame = query(
            f"select * exclude (run_id) from {schema}.{name}"
            if schema == "quarantine"
            else f"select * from {schema}.{name}"
        )
        out[f"{schema}.{name}"] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return out


def assert_same(left: dict[str, pd.DataFrame], right: dict[str, pd.DataFrame]) -> None:
    assert left.keys() == right.keys()
    for name in left:
        pd.testing.assert_frame_equal(left[name], right[name], obj=name)


def reconciled(ds: date) -> pd.DataFrame:
    """Latest audit row per table for `ds`, beside the rows really in raw and quarantine."""
    audit = query(
        """select * from audit.load_runs where ds = ?
                     qualify row_number() over (partition by source, table_name
                                                order by finished_at desc) = 1""",
        [ds],
    )
    for i, row in audit.iterrows():
        raw = query(
            f"select count(*) n from raw.{row.source}__{row.table_name} where ds = ?", [ds]
        ).n[0]
        quarantined = query(
            "select count(*) n from quarantine.rejected_rows where source = ? "
            "and table_name = ? and ds = ?",
            [row.source, row.table_name, ds],
        ).n[0]
        audit.loc[i, "raw_rows"] = raw
        audit.loc[i, "quarantine_rows"] = quarantined
    return audit


def pii_hits(pii: dict[str, set[str]], texts: dict[str, str]) -> dict[str, int]:
    """How many PII values of each kind occur in each text (counts only: never the values)."""
    hits: dict[str, int] = {}
    for where, text in texts.items():
        for kind, values in pii.items():
            found = sum(1 for v in values if v and v in text)
            if found:
                hits[f"{kind} in {where}"] = found
    return hits


def stored_texts() -> dict[str, str]:
    """Landing files, data docs, reports and the warehouse's tables, as text."""
    texts: dict[str, str] = {}
    for root in (paths().landing_dir, paths().reports_dir):
        for path in Path(root).rglob("*"):
            if path.suffix == ".parquet":
                texts[str(path)] = pd.read_parquet(path).to_csv(index=False)
            elif path.is_file():
                texts[str(path)] = path.read_bytes().decode("utf-8", errors="ignore")
    tables = query("select table_schema, table_name from information_schema.tables")
    for schema, name in tables.itertuples(index=False):
        texts[f"{schema}.{name}"] = query(f"select * from {schema}.{name}").to_csv(index=False)
    return texts
