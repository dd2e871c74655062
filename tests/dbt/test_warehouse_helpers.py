"""yilian.warehouse's small helpers (no dbt run)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from yilian.warehouse.dbt import DBT_PROJECT_DIR, dbt_days, dbt_env


def test_dbt_days_accepts_a_day_a_string_or_several_days() -> None:
    assert dbt_days(date(2026, 11, 5)) == "2026-11-05"
    assert dbt_days("2026-11-05") == "2026-11-05"
    assert dbt_days([date(2026, 11, 4), "2026-11-05"]) == "2026-11-04,2026-11-05"
    assert dbt_days() == ""


def test_dbt_env_points_at_the_warehouse_and_switches_telemetry_off(tmp_path: Path) -> None:
    env = dbt_env(tmp_path / "w.duckdb")
    assert env["YILIAN_WAREHOUSE"] == str(tmp_path / "w.duckdb")
    assert env["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "False"
    assert "send_anonymous_usage_stats: false" in (DBT_PROJECT_DIR / "dbt_project.yml").read_text()
