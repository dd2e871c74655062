"""Publish the marts for BI: a read-only DuckDB file and one Parquet file per mart.

BI tools must never open the warehouse itself: DuckDB lets one process write a file, and a
reader holding it would block the next night's load. So each publish writes a fresh copy beside
the old one and swaps it in with an atomic rename; a reader that has the old copy open keeps
reading it undisturbed.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

MARTS_SCHEMA = "marts"


@dataclass(frozen=True)
class Published:
    duckdb_file: Path
    parquet_dir: Path
    tables: dict[str, int]  # table name -> rows


def publish_marts(warehouse: Path, publish_dir: Path) -> Published:
    """Copy every table of the `marts` schema into publish_dir, swapping it in atomically."""
    publish_dir.mkdir(parents=True, exist_ok=True)
    target_db = publish_dir / "yilian_marts.duckdb"
    target_parquet = publish_dir / "parquet"
    staging_db = publish_dir / "yilian_marts.next.duckdb"
    staging_parquet = publish_dir / ".parquet.tmp"
    staging_db.unlink(missing_ok=True)
    shutil.rmtree(staging_parquet, ignore_errors=True)
    staging_parquet.mkdir()

    tables: dict[str, int] = {}
    with duckdb.connect(str(staging_db)) as con:
        con.execute(f"attach '{warehouse}' as warehouse (read_only)")
        names = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables where table_catalog = "
                "'warehouse' and table_schema = ? and table_type = 'BASE TABLE' order by 1",
                [MARTS_SCHEMA],
            ).fetchall()
        ]
        if not names:
            raise RuntimeError(
                f"publish: the warehouse {warehouse} has no tables in schema '{MARTS_SCHEMA}'; "
                "run the marts DAG (dbt build) before publishing"
            )
        con.execute(f"create schema {MARTS_SCHEMA}")
        for name in names:
            con.execute(
                f"create table {MARTS_SCHEMA}.{name} as "
                f"select * from warehouse.{MARTS_SCHEMA}.{name}"
            )
            con.execute(
                f"copy {MARTS_SCHEMA}.{name} to '{staging_parquet / (name + '.parquet')}' "
                "(format parquet)"
            )
            tables[name] = con.execute(f"select count(*) from {MARTS_SCHEMA}.{name}").fetchone()[0]
        con.execute("detach warehouse")

    os.replace(staging_db, target_db)
    if target_parquet.exists():
        retired = publish_dir / ".parquet.old"
        shutil.rmtree(retired, ignore_errors=True)
        os.replace(target_parquet, retired)
        os.replace(staging_parquet, target_parquet)
        shutil.rmtree(retired)
    else:
        os.replace(staging_parquet, target_parquet)
    return Published(target_db, target_parquet, tables)
