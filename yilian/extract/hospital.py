"""Extract one business day from the hospital platform's SQL database (CONTRACTS §2.1).

The watermark is the data interval itself: rows with `updated_at` in `[ds, ds+1)`. It needs no
state, so a day can be re-extracted at any time and gives the same rows as long as the source
has not changed them again (a row changed later belongs to the later day). Tables are reflected
so the bound is compared in the column's own type (SQLAlchemy's DateTime on SQLite, a real
timestamp on PostgreSQL), and rows stream in chunks so a large day never sits twice in memory.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pandas as pd
import sqlalchemy as sa

from yilian.extract.frames import ExtractError, typed
from yilian.extract.tables import tables_of

CHUNK_ROWS = 50_000


def extract_hospital(ds: date, url: str, chunk_rows: int = CHUNK_ROWS) -> dict[str, pd.DataFrame]:
    """Every hospital table's rows updated on `ds`, typed, ordered by key, PII still inside."""
    lo = datetime.combine(ds, time())
    hi = lo + timedelta(days=1)
    engine = sa.create_engine(url)
    out: dict[str, pd.DataFrame] = {}
    try:
        with engine.connect() as conn:
            meta = sa.MetaData()
            for spec in tables_of("hospital"):
                where = f"hospital {ds}"
                try:
                    source = sa.Table(spec.source_table, meta, autoload_with=conn)
                except sa.exc.NoSuchTableError as exc:
                    raise ExtractError(
                        f"{where}: source table {spec.source_table} does not exist at "
                        f"{engine.url!r}"
                    ) from exc
                stmt = (
                    sa.select(source)
                    .where(source.c.updated_at >= lo, source.c.updated_at < hi)
                    .order_by(*(source.c[k] for k in spec.key if k in source.c))
                )
                result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(
                    stmt
                )
                columns = list(result.keys())
                chunks = [
                    pd.DataFrame.from_records(rows, columns=columns) for rows in result.partitions()
                ]
                frame = (
                    pd.concat(chunks, ignore_index=True)
                    if chunks  # an empty day keeps the columns the source has: drift shows
                    else pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
                )
                out[spec.table] = typed(frame, spec, where)
    finally:
        engine.dispose()
    return out
