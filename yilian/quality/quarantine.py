"""Validation's decisions as data: the rows that go to quarantine, and the message of a block.

The decisions are written beside the landed partition (one row per rejected record: its
position, first failing rule, every reason, its key and its pseudonymised values), so the load
step can leave exactly those rows out and put them into `quarantine.rejected_rows` in the same
transaction as the good ones.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from yilian.quality.suites import TableVerdict, record_keys
from yilian.sources.base import TableSpec

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def decisions(
    source: str,
    ds: date,
    run_id: str,
    frames: dict[str, pd.DataFrame],
    specs: dict[str, TableSpec],
    verdicts: dict[str, TableVerdict],
) -> pa.Table:
    """One quarantine row per rejected record, plus its position in its landed partition."""
    import pyarrow as pa

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


def blocked_message(
    source: str,
    ds: date,
    blocked: dict[str, TableVerdict],
    unknown_columns: dict[str, list[str]],
    data_docs: str,
) -> str:
    """What a person must know about a blocked day, first line first: table, rule, rows, keys."""
    lines = []
    for name, verdict in blocked.items():
        unknown = unknown_columns.get(name)
        schema = [b for b in verdict.blocks if b.rule == "schema_columns"]
        for b in schema or verdict.blocks:  # after schema drift, the other failures are echoes
            extra = f"; not in the contract: {unknown}" if unknown else ""
            examples = f"; e.g. keys {b.examples}" if b.examples else ""
            lines.append(
                f"table {source}__{name}, rule {b.rule}: {b.detail}{extra} "
                f"({b.rows} rows{examples})"
            )
    return (
        f"{source} {ds} BLOCKED: "
        + " | ".join(lines)
        + ". Nothing was loaded; the warehouse keeps its previous state. Data Docs: "
        f"{data_docs}. Fix the source (or the contract and suite) and rerun the day."
    )
