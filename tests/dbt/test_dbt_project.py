"""The dbt project end to end on a tiny hand-built raw schema (see dbt_raw_fixture.py).

Three dbt invocations, shared by every test of the module:
1. raw days D1 and D2 loaded, `dbt build` (seeds, models, unit tests, contracts, data tests);
2. day D3 loaded, `dbt build` with ds = D3 (the nightly incremental run);
3. `dbt build --full-refresh`, which must give exactly the tables of run 2.
Expected values are computed by hand from the fixture rows.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import duckdb
import pytest

# tests/dbt has no __init__.py (a package named `dbt` would shadow dbt-core): pytest puts
# this folder on sys.path, so the fixture module imports by its own name.
from dbt_raw_fixture import D1, D2, D3, GC, LS, XF, ZY, load_days

from yilian.warehouse.dbt import MART_TABLES, DbtResult, build

TAMPERED = 7  # green_channel_referrals written into an untouched D1 row before the D3 run

Tables = dict[str, list[dict]]


def dump(warehouse: Path) -> Tables:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        # marts by bare name; the incremental staging tables as "staging.<name>"
        names = [
            name if schema == "marts" else f"{schema}.{name}"
            for (schema, name) in con.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_schema in ('marts', 'staging') and table_type = 'BASE TABLE' "
                "order by 1, 2"
            ).fetchall()
        ]
        out: Tables = {}
        for name in names:
            relation = name if "." in name else f"marts.{name}"
            cursor = con.execute(f"select * from {relation} order by all")
            columns = [d[0] for d in cursor.description]
            out[name] = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        return out
    finally:
        con.close()


def rows(tables: Tables, name: str, **where) -> list[dict]:
    return [r for r in tables[name] if all(r[k] == v for k, v in where.items())]


def one(tables: Tables, name: str, **where) -> dict:
    found = rows(tables, name, **where)
    assert len(found) == 1, f"{name} {where}: {len(found)} rows"
    return found[0]


def close(actual: float | None, expected: float | None) -> bool:
    if expected is None:
        return actual is None
    return actual is not None and math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12)


class Runs:
    def __init__(self) -> None:
        self.first: Tables = {}
        self.incremental: Tables = {}
        self.full_refresh: Tables = {}
        self.results: list[DbtResult] = []
        self.tamper_survived: bool | None = None
        self.incremental_log = ""  # dbt.log of run 2


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    base = tmp_path_factory.mktemp("dbt")
    warehouse = base / "warehouse.duckdb"
    kwargs = {
        "warehouse": warehouse,
        "target_path": base / "target",
    }
    out = Runs()

    load_days(warehouse, [D1, D2])
    out.results.append(build(**kwargs))
    out.first = dump(warehouse)

    # Prove the D3 run is incremental: an untouched day keeps a value only a rebuild would fix.
    con = duckdb.connect(str(warehouse))
    con.execute(
        "update marts.mart_referrals_daily set green_channel_referrals = ? "
        "where date = ? and county_code = ? and direction = 'down'",
        [TAMPERED, D1, XF],
    )
    con.close()

    load_days(warehouse, [D3])
    log = base / "target" / "logs" / "dbt.log"
    seen = log.stat().st_size
    out.results.append(build(ds=D3, **kwargs))
    with log.open(encoding="utf-8") as f:
        f.seek(seen)
        out.incremental_log = f.read()
    con = duckdb.connect(str(warehouse))
    (value,) = con.execute(
        "select green_channel_referrals from marts.mart_referrals_daily "
        "where date = ? and county_code = ? and direction = 'down'",
        [D1, XF],
    ).fetchone()
    out.tamper_survived = value == TAMPERED
    con.execute(
        "update marts.mart_referrals_daily set green_channel_referrals = 0 "
        "where date = ? and county_code = ? and direction = 'down'",
        [D1, XF],
    )
    con.close()
    out.incremental = dump(warehouse)

    out.results.append(build(full_refresh=True, **kwargs))
    out.full_refresh = dump(warehouse)
    return out


def test_a_new_day_keeps_the_partial_parse(runs: Runs) -> None:
    """The day is not part of what dbt parses, so the nightly run does not parse the project
    again (it did while the day was a `--vars` entry)."""
    assert "Unable to do partial parsing" not in runs.incremental_log
    assert "Partial parsing enabled" in runs.incremental_log


def test_every_build_passes_models_unit_tests_contracts_and_data_tests(runs: Runs) -> None:
    for result in runs.results:
        assert result.success, result.summary()
        kinds = {n.unique_id.split(".")[0] for n in result.nodes}
        assert {"model", "seed", "test", "unit_test"} <= kinds
        assert sum(n.unique_id.startswith("unit_test.") for n in result.nodes) >= 5
        assert not result.failures
        print(result.summary())


def test_the_bi_contract_tables_exist(runs: Runs) -> None:
    expected = {
        "dim_date", "dim_facility", "dim_alliance", "dim_region", "dim_modality",
        "dim_diagnosis", "fct_encounters", "fct_referrals", "fct_remote_reads",
        "fct_prescriptions", "fct_result_recognitions", "fct_feed_deliveries", *MART_TABLES,
    }  # fmt: skip
    assert expected <= set(runs.first)


def test_dim_facility_is_scd2_over_the_version_log(runs: Runs) -> None:
    t = runs.first
    c1x = sorted(rows(t, "dim_facility", facility_code="C1X"), key=lambda r: r["version_no"])
    assert [(r["tier"], r["valid_from"], r["valid_to"], r["is_current"]) for r in c1x] == [
        (1, date(2020, 1, 1), D2, False),
        (2, D2, None, True),
    ]
    merged = one(t, "dim_facility", facility_code="T2L", is_current=True)
    assert (merged["status"], merged["merged_into"]) == ("merged", "T1L")
    assert merged["is_in_connectivity_scope"] is False
    assert one(t, "dim_facility", facility_code="P1")["is_in_connectivity_scope"] is False
    assert one(t, "dim_facility", facility_code="EXT")["is_in_region"] is False


def test_dim_region_population_is_what_the_hospital_platform_publishes(runs: Runs) -> None:
    pop = {r["county_code"]: r["resident_population"] for r in runs.first["dim_region"]}
    assert pop == {XF: 170_000, LS: 160_000, ZY: 75_000, GC: 115_000}
    assert {r["population_source"] for r in runs.first["dim_region"]} == {
        "hospital platform org_region_population, 2025"
    }


def test_staging_keeps_latest_version(runs: Runs) -> None:
    t = runs.first
    assert len(t["fct_encounters"]) == 11  # E1–E11: E3 twice in raw
    assert one(t, "fct_encounters", encounter_id="E3")["department"] == "全科"
    r1 = one(t, "fct_referrals", referral_id="R1")
    assert (r1["status"], r1["hours_to_accept"]) == ("accepted", 24.0)


def test_referral_direction_uses_tiers_as_of_the_sent_day(runs: Runs) -> None:
    direction = {r["referral_id"]: r["direction"] for r in runs.first["fct_referrals"]}
    assert direction == {
        "R1": "up", "R2": "lateral", "R3": "up", "R4": "down",
        "R5": "out_of_region", "R6": "up", "R7": "down",
    }  # fmt: skip


def test_mart_referrals_daily(runs: Runs) -> None:
    got = {
        (r["date"], r["alliance_id"], r["county_code"], r["direction"]): (
            r["referrals"],
            r["accepted"],
            r["median_hours_to_accept"],
        )
        for r in runs.first["mart_referrals_daily"]
    }
    assert got == {
        (D1, "A1", XF, "down"): (1, 1, 4.0),
        (D1, "A2", LS, "up"): (2, 2, 12.75),
        (D1, None, ZY, "lateral"): (1, 1, 3.0),
        (D2, "A2", LS, "down"): (1, 1, 6.0),
        (D2, "A2", LS, "out_of_region"): (1, 0, None),
        (D2, None, ZY, "up"): (1, 0, None),
    }


def test_mart_remote_diagnosis_daily(runs: Runs) -> None:
    t = runs.first
    dx = one(t, "mart_remote_diagnosis_daily", date=D1, modality="DX", reading_facility_code="H2L")
    assert (dx["reads"], dx["reads_reported"], dx["within_target"]) == (4, 4, 2)
    assert close(dx["median_turnaround_minutes"], 25.0)
    assert close(dx["p90_turnaround_minutes"], 37.0)  # 30 + 0.7 × (40 − 30)
    assert close(dx["within_target_share"], 0.5)
    sm = one(t, "mart_remote_diagnosis_daily", date=D1, modality="SM")
    assert close(sm["median_turnaround_minutes"], 1440.0) and sm["within_target"] == 1
    pending = one(t, "mart_remote_diagnosis_daily", date=D2, modality="DX")
    assert pending["reading_facility_code"] is None
    assert (pending["reads"], pending["reads_reported"]) == (2, 0)
    assert pending["within_target_share"] is None


def test_mart_interoperability_daily(runs: Runs) -> None:
    t = runs.first
    assert len(t["mart_interoperability_daily"]) == 8  # 2 days × 4 counties
    ls1 = one(t, "mart_interoperability_daily", date=D1, county_code=LS)
    assert (ls1["facilities_in_scope"], ls1["facilities_delivering"]) == (4, 3)
    assert close(ls1["connectivity_rate"], 0.75)
    assert (ls1["results_presented"], ls1["results_recognised"]) == (2, 1)
    assert close(ls1["result_recognition_rate"], 0.5)
    assert (ls1["prescriptions"], ls1["prescriptions_flowed_out"]) == (3, 2)
    assert close(ls1["prescription_outflow_rate"], 2 / 3)
    assert close(ls1["prescription_fill_rate"], 0.5)
    ls2 = one(t, "mart_interoperability_daily", date=D2, county_code=LS)
    assert (ls2["facilities_in_scope"], ls2["facilities_delivering"]) == (3, 3)  # T2L merged
    zy2 = one(t, "mart_interoperability_daily", date=D2, county_code=ZY)
    assert close(zy2["connectivity_rate"], 0.0)
    gc1 = one(t, "mart_interoperability_daily", date=D1, county_code=GC)
    assert gc1["facilities_in_scope"] == 0 and gc1["connectivity_rate"] is None
    xf2 = one(t, "mart_interoperability_daily", date=D2, county_code=XF)
    assert close(xf2["prescription_fill_rate"], 0.0)


def test_mart_alliance_kpis_monthly(runs: Runs) -> None:
    t = runs.first
    month = date(2026, 11, 1)
    ls = one(t, "mart_alliance_kpis_monthly", month=month, county_code=LS)
    # visits = every encounter type (var visit_encounter_types, as the simulator truth counts)
    assert (ls["visits"], ls["primary_care_visits"]) == (5, 3)
    assert close(ls["primary_care_visit_share"], 0.6)
    assert (ls["resident_visits"], ls["resident_visits_in_county"]) == (7, 5)
    assert close(ls["in_county_visit_rate"], 5 / 7)
    assert (ls["resident_admissions"], ls["resident_admissions_in_county"]) == (2, 1)
    assert close(ls["in_county_inpatient_share"], 0.5)
    assert (ls["upward_referrals"], ls["downward_referrals"]) == (2, 1)
    assert close(ls["down_up_ratio"], 0.5)
    assert (ls["remote_reads"], ls["resident_population"]) == (4, 160_000)  # SM not counted
    assert close(ls["remote_reads_per_10k"], 0.25)
    xf = one(t, "mart_alliance_kpis_monthly", month=month, county_code=XF)
    assert (xf["visits"], xf["primary_care_visits"], xf["downward_referrals"]) == (5, 1, 1)
    assert xf["down_up_ratio"] is None and xf["in_county_inpatient_share"] is None
    zy = one(t, "mart_alliance_kpis_monthly", month=month, county_code=ZY)
    assert close(zy["in_county_visit_rate"], 0.5)
    assert close(zy["remote_reads_per_10k"], 2 * 10_000 / 75_000)
    gc = one(t, "mart_alliance_kpis_monthly", month=month, county_code=GC)
    assert gc["visits"] == 0 and gc["primary_care_visit_share"] is None


def test_incremental_run_reprocesses_only_the_touched_days(runs: Runs) -> None:
    assert runs.tamper_survived, "the D3 run rebuilt an untouched day"
    t = runs.incremental
    # R3 (sent D2) accepted in D3, and T1Z joined A2 on D2 (recorded in D3): D2 re-derived
    r3 = one(t, "mart_referrals_daily", date=D2, county_code=ZY)
    assert (r3["alliance_id"], r3["direction"], r3["referrals"], r3["accepted"]) == (
        "A2", "up", 1, 1,
    )  # fmt: skip
    assert close(r3["median_hours_to_accept"], 24.0)
    assert one(t, "mart_referrals_daily", date=D1, county_code=ZY)["alliance_id"] is None
    assert one(t, "mart_referrals_daily", date=D3, county_code=XF)["direction"] == "down"
    # S7's late report moves it from "unreported" to H2L on D2
    s7 = one(t, "mart_remote_diagnosis_daily", date=D2, modality="DX", reading_facility_code="H2L")
    assert (s7["reads"], s7["within_target"]) == (1, 0)
    assert close(s7["median_turnaround_minutes"], 890.0)
    assert one(t, "mart_remote_diagnosis_daily", date=D2, reading_facility_code=None)["reads"] == 1
    # T1Z's late upload for D2 and P5's late dispense
    zy2 = one(t, "mart_interoperability_daily", date=D2, county_code=ZY)
    assert close(zy2["connectivity_rate"], 1.0)
    xf2 = one(t, "mart_interoperability_daily", date=D2, county_code=XF)
    assert close(xf2["prescription_fill_rate"], 1.0)
    ls = one(t, "mart_alliance_kpis_monthly", month=date(2026, 11, 1), county_code=LS)
    assert (ls["visits"], ls["resident_visits"], ls["resident_visits_in_county"]) == (6, 8, 6)
    assert ls["remote_reads"] == 5


def test_full_refresh_gives_identical_tables(runs: Runs) -> None:
    assert len([name for name in runs.full_refresh if name.startswith("staging.")]) == 11
    assert set(runs.full_refresh) == set(runs.incremental)
    for name, table in runs.full_refresh.items():
        assert table == runs.incremental[name], f"{name} differs after --full-refresh"
