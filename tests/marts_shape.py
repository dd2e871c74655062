"""The shape dense marts must have: one row per business day × county (× category), no gaps.

Shared by the dbt fixture test and the end-to-end test; the expected counts come from the
dimensions (dim_region, dim_modality, dim_facility's versions in force), never from the marts.
"""

from __future__ import annotations

from datetime import date

import duckdb

DIRECTIONS_X_REGION = 3 * 2  # up / down / lateral × in / out of region


def dense_shapes(con: duckdb.DuckDBPyConnection, days: list[date]) -> dict[str, tuple[int, int]]:
    """Each KPI mart: (rows it has, rows dense over `days` means)."""
    counties = con.execute("select count(*) from marts.dim_region").fetchone()[0]
    modalities = con.execute("select count(*) from marts.dim_modality").fetchone()[0]
    readers = con.execute(
        "select count(distinct reading_facility_code) from marts.fct_remote_reads"
    ).fetchone()[0]
    sender_pairs = con.execute(
        """select count(*) from (
               select distinct d.day, f.alliance_id, f.county_code
               from unnest(?::date[]) as d (day)
               join marts.dim_facility as f
                 on d.day >= f.valid_from and (f.valid_to is null or d.day < f.valid_to)
               where f.is_in_connectivity_scope)""",
        [days],
    ).fetchone()[0]
    months = len({d.replace(day=1) for d in days})
    expected = {
        "mart_interoperability_daily": len(days) * counties,
        "mart_referrals_daily": sender_pairs * DIRECTIONS_X_REGION,
        "mart_remote_diagnosis_daily": len(days) * modalities * (readers + 1),  # + pending
        "mart_alliance_kpis_monthly": months * counties,
    }
    return {
        mart: (con.execute(f"select count(*) from marts.{mart}").fetchone()[0], rows)
        for mart, rows in expected.items()
    }


def mart_days(con: duckdb.DuckDBPyConnection) -> dict[str, set[date]]:
    """The business days each daily mart has rows for."""
    return {
        mart: {row[0] for row in con.execute(f"select distinct date from marts.{mart}").fetchall()}
        for mart in (
            "mart_interoperability_daily",
            "mart_referrals_daily",
            "mart_remote_diagnosis_daily",
        )
    }
