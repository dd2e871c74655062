"""The dbt project end to end on a tiny hand-built raw schema (see dbt_raw_fixture.py).

Three dbt invocations, shared by every test of the module:
1. raw days D1 and D2 loaded, `dbt build` (seeds, models, unit tests, contracts, data tests);
2. day D3 loaded, `dbt build` with ds = D3 (the nightly incremental run);
3. `dbt build --full-refresh`, which must give exactly the tables of run 2.
Expected values are computed by hand from the fixture rows.
"""

from __future__ import annotations

import math
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

# tests/dbt has no __init__.py (a package named `dbt` would shadow dbt-core): pytest puts
# this folder on sys.path, so the fixture module imports by its own name.
from dbt_raw_fixture import D1, D2, D3, GC, LS, XF, ZY, load_days

from tests.marts_shape import DIRECTIONS_X_REGION, dense_shapes, mart_days
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
        self.first_shapes: dict[str, tuple[int, int]] = {}
        self.incremental_shapes: dict[str, tuple[int, int]] = {}
        self.first_days: dict[str, set[date]] = {}
        self.warehouse: Path | None = None
        self.target: Path | None = None
        self.incremental_days: dict[str, set[date]] = {}


def shapes(warehouse: Path, days: list[date]) -> tuple[dict, dict]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return dense_shapes(con, days), mart_days(con)
    finally:
        con.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    base = tmp_path_factory.mktemp("dbt")
    warehouse = base / "warehouse.duckdb"
    kwargs = {
        "warehouse": warehouse,
        "target_path": base / "target",
    }
    out = Runs()
    out.warehouse, out.target = warehouse, kwargs["target_path"]

    load_days(warehouse, [D1, D2])
    out.results.append(build(**kwargs))
    out.first = dump(warehouse)
    out.first_shapes, out.first_days = shapes(warehouse, [D1, D2])

    # Prove the D3 run is incremental: an untouched day keeps a value only a rebuild would fix.
    con = duckdb.connect(str(warehouse))
    con.execute(
        "update marts.mart_referrals_daily set green_channel_referrals = ? "
        "where date = ? and county_code = ? and direction = 'down' and not is_out_of_region",
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
        "where date = ? and county_code = ? and direction = 'down' and not is_out_of_region",
        [D1, XF],
    ).fetchone()
    out.tamper_survived = value == TAMPERED
    con.execute(
        "update marts.mart_referrals_daily set green_channel_referrals = 0 "
        "where date = ? and county_code = ? and direction = 'down' and not is_out_of_region",
        [D1, XF],
    )
    con.close()
    out.incremental = dump(warehouse)
    out.incremental_shapes, out.incremental_days = shapes(warehouse, [D1, D2, D3])

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
        "R5": "up", "R6": "up", "R7": "down",
    }  # fmt: skip
    # R5: a tier-2 hospital to a tier-3 hospital outside the region is still 上转
    assert [r["referral_id"] for r in runs.first["fct_referrals"] if r["is_out_of_region"]] == [
        "R5"
    ]


def test_mart_referrals_daily(runs: Runs) -> None:
    got = {
        (r["date"], r["alliance_id"], r["county_code"], r["direction"], r["is_out_of_region"]): (
            r["referrals"],
            r["accepted"],
            r["median_hours_to_accept"],
        )
        for r in runs.first["mart_referrals_daily"]
        if r["referrals"]
    }
    assert got == {
        (D1, "A1", XF, "down", False): (1, 1, 4.0),
        (D1, "A2", LS, "up", False): (2, 2, 12.75),
        (D1, None, ZY, "lateral", False): (1, 1, 3.0),
        (D2, "A2", LS, "down", False): (1, 1, 6.0),
        (D2, "A2", LS, "up", True): (1, 0, None),
        (D2, None, ZY, "up", False): (1, 0, None),
    }
    zero = one(runs.first, "mart_referrals_daily", date=D2, county_code=XF, direction="up",
               is_out_of_region=True)  # fmt: skip
    assert (zero["referrals"], zero["acceptance_rate"]) == (0, None)


def test_mart_remote_diagnosis_daily(runs: Runs) -> None:
    t = runs.first
    dx = one(t, "mart_remote_diagnosis_daily", date=D1, modality="DX", reading_facility_code="H2L")
    assert (dx["reads"], dx["reads_reported"], dx["within_target"]) == (4, 4, 2)
    assert close(dx["median_turnaround_minutes"], 25.0)
    assert close(dx["p90_turnaround_minutes"], 37.0)  # 30 + 0.7 × (40 − 30)
    assert close(dx["within_target_share"], 0.5)
    sm = one(t, "mart_remote_diagnosis_daily", date=D1, modality="SM", reading_facility_code="H3")
    assert close(sm["median_turnaround_minutes"], 1440.0) and sm["within_target"] == 1
    pending = one(
        t, "mart_remote_diagnosis_daily", date=D2, modality="DX", reading_facility_code=None
    )
    assert (pending["reads"], pending["reads_reported"], pending["reads_pending"]) == (2, 0, 2)
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
    # visits (诊疗人次) = outpatient and emergency: E5 and E6 are admissions, not visits
    assert (ls["visits"], ls["primary_care_visits"]) == (4, 3)
    assert close(ls["primary_care_visit_share"], 0.75)
    assert (ls["resident_visits"], ls["resident_visits_in_county"]) == (5, 4)
    assert close(ls["in_county_visit_rate"], 4 / 5)
    assert (ls["resident_admissions"], ls["resident_admissions_in_county"]) == (2, 1)
    assert close(ls["in_county_inpatient_share"], 0.5)
    # R5 (H2L, tier 2 → EXT, tier 3 outside the region) is upward
    assert (ls["upward_referrals"], ls["downward_referrals"]) == (3, 1)
    assert close(ls["down_up_ratio"], 1 / 3)
    assert (ls["remote_reads"], ls["resident_population"]) == (4, 160_000)  # SM not counted
    assert close(ls["remote_reads_per_10k"], 0.25)
    xf = one(t, "mart_alliance_kpis_monthly", month=month, county_code=XF)
    assert (xf["visits"], xf["primary_care_visits"], xf["downward_referrals"]) == (4, 1, 1)
    assert (xf["remote_reads"], xf["remote_reads_pending"]) == (0, 1)  # S8 not yet reported
    assert xf["down_up_ratio"] is None and xf["in_county_inpatient_share"] is None
    zy = one(t, "mart_alliance_kpis_monthly", month=month, county_code=ZY)
    assert close(zy["in_county_visit_rate"], 0.5)
    # S4 signed; S7 pending (signed only in D3): a pending read is not a diagnosis
    assert (zy["remote_reads"], zy["remote_reads_pending"]) == (1, 1)
    assert close(zy["remote_reads_per_10k"], 1 * 10_000 / 75_000)
    gc = one(t, "mart_alliance_kpis_monthly", month=month, county_code=GC)
    assert gc["visits"] == 0 and gc["primary_care_visit_share"] is None


def test_incremental_run_reprocesses_only_the_touched_days(runs: Runs) -> None:
    assert runs.tamper_survived, "the D3 run rebuilt an untouched day"
    t = runs.incremental
    # R3 (sent D2) accepted in D3, and T1Z joined A2 on D2 (recorded in D3): D2 re-derived
    r3 = one(t, "mart_referrals_daily", date=D2, county_code=ZY, direction="up",
             is_out_of_region=False)  # fmt: skip
    assert (r3["alliance_id"], r3["direction"], r3["referrals"], r3["accepted"]) == (
        "A2", "up", 1, 1,
    )  # fmt: skip
    assert close(r3["median_hours_to_accept"], 24.0)
    d1 = one(t, "mart_referrals_daily", date=D1, county_code=ZY, direction="lateral",
             is_out_of_region=False)  # fmt: skip
    assert d1["alliance_id"] is None and d1["referrals"] == 1
    d3 = one(t, "mart_referrals_daily", date=D3, county_code=XF, direction="down",
             is_out_of_region=False)  # fmt: skip
    assert d3["referrals"] == 1
    # S7's late report moves it from "unreported" to H2L on D2
    s7 = one(t, "mart_remote_diagnosis_daily", date=D2, modality="DX", reading_facility_code="H2L")
    assert (s7["reads"], s7["within_target"]) == (1, 0)
    assert close(s7["median_turnaround_minutes"], 890.0)
    s8 = one(t, "mart_remote_diagnosis_daily", date=D2, modality="DX", reading_facility_code=None)
    assert (s8["reads"], s8["reads_pending"]) == (1, 1)
    # T1Z's late upload for D2 and P5's late dispense
    zy2 = one(t, "mart_interoperability_daily", date=D2, county_code=ZY)
    assert close(zy2["connectivity_rate"], 1.0)
    xf2 = one(t, "mart_interoperability_daily", date=D2, county_code=XF)
    assert close(xf2["prescription_fill_rate"], 1.0)
    ls = one(t, "mart_alliance_kpis_monthly", month=date(2026, 11, 1), county_code=LS)
    assert (ls["visits"], ls["resident_visits"], ls["resident_visits_in_county"]) == (5, 6, 5)
    assert ls["remote_reads"] == 5
    zy = one(t, "mart_alliance_kpis_monthly", month=date(2026, 11, 1), county_code=ZY)
    assert (zy["remote_reads"], zy["remote_reads_pending"]) == (2, 0)  # S7 signed in D3


def test_full_refresh_gives_identical_tables(runs: Runs) -> None:
    assert len([name for name in runs.full_refresh if name.startswith("staging.")]) == 11
    assert set(runs.full_refresh) == set(runs.incremental)
    for name, table in runs.full_refresh.items():
        assert table == runs.incremental[name], f"{name} differs after --full-refresh"


def test_every_kpi_mart_is_dense(runs: Runs) -> None:
    """Every business day × county (× direction × in/out of region, × modality × reader) has a
    row: after the first build, the nightly run (and so the full refresh, equal to it)."""
    for shapes, days in ((runs.first_shapes, [D1, D2]), (runs.incremental_shapes, [D1, D2, D3])):
        assert {mart: rows for mart, (rows, _) in shapes.items()} == {
            mart: expected for mart, (_, expected) in shapes.items()
        }, days
    # by hand, the first build: 3 sender pairs (A1 × XF, A2 × LS, none × ZY) on each of 2 days;
    # readers H2L, H3 and the pending
    assert runs.first_shapes["mart_referrals_daily"][0] == 2 * 3 * DIRECTIONS_X_REGION
    assert runs.first_shapes["mart_remote_diagnosis_daily"][0] == 2 * 6 * 3
    assert all(days == {D1, D2} for days in runs.first_days.values())
    assert all(days == {D1, D2, D3} for days in runs.incremental_days.values())


# --- the semantic layer (MetricFlow) agrees with the marts ---------------------------------------

MONTHLY = {  # metric -> (numerator, denominator) columns of mart_alliance_kpis_monthly
    "primary_care_visit_share": ("primary_care_visits", "visits"),
    "in_county_visit_rate": ("resident_visits_in_county", "resident_visits"),
    "in_county_inpatient_share": ("resident_admissions_in_county", "resident_admissions"),
    "down_up_ratio": ("downward_referrals", "upward_referrals"),
    "upward_referrals": ("upward_referrals", None),
    "downward_referrals": ("downward_referrals", None),
    "remote_imaging_diagnoses_per_10k": ("remote_reads", "resident_population"),
}
DAILY = {  # metric -> (numerator, denominator) columns of mart_interoperability_daily
    "connectivity_rate": ("facilities_delivering", "facilities_in_scope"),
    "result_recognition_rate": ("results_recognised", "results_presented"),
    "prescription_outflow_rate": ("prescriptions_flowed_out", "prescriptions"),
    "prescription_fill_rate": ("prescriptions_dispensed", "prescriptions_flowed_out"),
}


def _mart_ratio(rows: list[dict], keys: list[str], numerator: str, denominator: str | None):
    """The mart re-aggregated to `keys`: sum of numerators over sum of denominators."""
    sums: dict[tuple, list[float]] = {}
    for row in rows:
        acc = sums.setdefault(tuple(row[k] for k in keys), [0.0, 0.0])
        acc[0] += row[numerator]
        acc[1] += row[denominator] if denominator else 1
    scale = 10_000 if numerator == "remote_reads" else 1
    return {
        key: (num * scale / den if den else None) if denominator else num
        for key, (num, den) in sums.items()
    }


def _semantic(runs: Runs, metrics: list[str], group_by: list[str]) -> dict[str, dict]:
    """The metrics over the region's counties (as the marts list them)."""
    from yilian.warehouse.semantic import IN_REGION, query_metrics

    frame = query_metrics(
        metrics, group_by, where=[IN_REGION], database=runs.warehouse, target_path=runs.target
    )
    keys = [c for c in frame.columns if c not in metrics]
    out: dict[str, dict] = {m: {} for m in metrics}
    for record in frame.to_dict("records"):
        key = tuple(record[k].date() if hasattr(record[k], "date") else record[k] for k in keys)
        for metric in metrics:
            value = record[metric]
            out[metric][key] = None if value is None or value != value else float(value)
    return out


def _agree(semantic: dict, mart: dict, name: str) -> None:
    for key, want in mart.items():
        got = semantic.get(key)
        if want is None or (want == 0 and got is None):
            assert got is None or got == 0, (name, key, got)
        else:
            assert close(got, float(want)), (name, key, got, want)


def test_semantic_layer_equals_the_marts_at_two_grains(runs: Runs) -> None:
    """Eleven indicators through MetricFlow, by month × county and by the whole region per
    month (monthly mart), by day × county and by county over all days (daily mart): equal to
    the marts' numerators summed over their denominators."""
    marts = runs.full_refresh
    monthly, daily = marts["mart_alliance_kpis_monthly"], marts["mart_interoperability_daily"]
    counties = {r["county_code"] for r in monthly}
    for group_by, keys in (
        (["metric_time__month", "county"], ["month", "county_code"]),
        (["metric_time__month"], ["month"]),
    ):
        semantic = _semantic(runs, list(MONTHLY), group_by)
        for metric, (numerator, denominator) in MONTHLY.items():
            got = semantic[metric]
            if "county" in group_by:  # the marts list the region's counties only
                got = {k: v for k, v in got.items() if k[1] in counties}
            _agree(got, _mart_ratio(monthly, keys, numerator, denominator), metric)
    for group_by, keys in (
        (["metric_time__day", "county"], ["date", "county_code"]),
        (["county"], ["county_code"]),
    ):
        semantic = _semantic(runs, list(DAILY), group_by)
        for metric, (numerator, denominator) in DAILY.items():
            _agree(semantic[metric], _mart_ratio(daily, keys, numerator, denominator), metric)
    # MetricFlow's engine, not the `mf` CLI (which asks PyPI for a newer version on every call)
    assert "update_checker" not in sys.modules and "dbt_metricflow.cli.main" not in sys.modules
    # the re-aggregated ratio, not an average of the counties' ratios
    region = _semantic(runs, ["in_county_visit_rate"], ["metric_time__month"])
    (value,) = region["in_county_visit_rate"].values()
    assert close(
        value,
        sum(r["resident_visits_in_county"] for r in monthly)
        / sum(r["resident_visits"] for r in monthly),
    )


def test_semantic_layer_cuts_by_modality_and_tier(runs: Runs) -> None:
    marts = runs.full_refresh
    reads = _semantic(runs, ["remote_read_within_target_share"], ["metric_time__day", "modality"])
    mart = _mart_ratio(
        marts["mart_remote_diagnosis_daily"],
        ["date", "modality"],
        "within_target",
        "reads_reported",
    )
    _agree(reads["remote_read_within_target_share"], mart, "remote_read_within_target_share")
    by_tier = _semantic(runs, ["upward_referrals"], ["facility_version__tier"])["upward_referrals"]
    fct = marts["fct_referrals"]
    assert {tier: n for tier, n in by_tier.items() if n} == {
        (tier,): float(sum(r["direction"] == "up" and r["sender_tier"] == tier for r in fct))
        for tier in {r["sender_tier"] for r in fct if r["direction"] == "up"}
    }


def test_run_report_shows_indicators_beside_targets_and_data_quality(
    runs: Runs, tmp_path: Path
) -> None:
    from yilian.warehouse.report import write_report

    quality = [
        {
            "source": "hospital",
            "ds": D1,
            "outcome": "loaded",
            "rows_extracted": 12,
            "rows_loaded": 11,
            "rows_quarantined": 1,
            "reasons": [{"rule": "resident_id_valid", "rows": 1, "example": "row 3: bad check"}],
            "blocked_message": "",
        }
    ]
    report = write_report(
        runs.warehouse, tmp_path, "fixture", quality=quality, target_path=runs.target
    )
    table = report.indicators.set_index("metric")
    # the full refresh's month: in-county visit rate 9/11 over the region, below the 90 % target
    visits = table.loc["in_county_visit_rate"]
    assert (visits["region"], visits["national target"], visits["region vs target"]) == (
        "81.8%", "≥ 90.0% (景洪 2021)", "below",
    )  # fmt: skip
    assert table.loc["primary_care_visit_share", "national target"] == "≥ 65.0% (景洪 2021)"
    assert len(table) >= 12
    page = report.html_path.read_text(encoding="utf-8")
    assert "Data quality per source and business day" in page
    assert "resident_id_valid: 1 (e.g. row 3: bad check)" in page
    assert "县域内就诊率 In-county visit rate" in page


def test_a_day_reloaded_without_a_version_stages_what_a_full_refresh_stages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-load of a built day that no longer holds the version a key kept from it (E3's
    department correction, delivered on D2) takes the key's latest version from the rest of raw
    again, as a full refresh does, instead of keeping the version raw no longer has. (The facts
    re-derive the rows whose latest version is in tonight's partitions; E3's is now D1's.)"""
    import dbt_raw_fixture

    kwargs = {"warehouse": tmp_path / "warehouse.duckdb", "target_path": tmp_path / "target"}
    staging = "staging.stg_hospital__encounters"
    load_days(kwargs["warehouse"], [D1, D2])
    build(**kwargs)
    assert one(dump(kwargs["warehouse"]), staging, encounter_id="E3")["department"] == "全科"

    d2 = dict(dbt_raw_fixture.DAYS[D2])
    d2["hospital__encounters"] = [e for e in d2["hospital__encounters"] if e[0] != "E3"]
    monkeypatch.setitem(dbt_raw_fixture.DAYS, D2, d2)
    load_days(kwargs["warehouse"], [D2])
    build(ds=D2, **kwargs)
    incremental = dump(kwargs["warehouse"])
    assert one(incremental, staging, encounter_id="E3")["department"] == "内科"
    build(full_refresh=True, **kwargs)
    full_refresh = dump(kwargs["warehouse"])
    for name in (n for n in full_refresh if n.startswith("staging.")):
        assert incremental[name] == full_refresh[name], f"{name} differs from a full refresh"


def test_docs_site_documents_the_project_and_the_warehouse_catalog(
    runs: Runs, tmp_path: Path
) -> None:
    """The nightly docs step: the installation's parse plus the warehouse's catalog, in one
    static page; a second night with the project unchanged leaves it as it is."""
    import json
    import shutil

    from yilian.settings import scoped_environ
    from yilian.steps.marts import generate_docs
    from yilian.warehouse.dbt import run_dbt

    run_dbt(["parse"])  # as the installation does: the manifest the marts DAG renders from
    (tmp_path / "warehouse").mkdir()
    shutil.copyfile(runs.warehouse, tmp_path / "warehouse" / "yilian.duckdb")
    with scoped_environ({"YILIAN_DATA_DIR": str(tmp_path)}):
        index = Path(generate_docs())
        built = index.stat().st_mtime_ns
        assert Path(generate_docs()).stat().st_mtime_ns == built
    site = index.parent  # the static page embeds these two files
    assert (site / "semantic_manifest.json").exists()  # what `yilian metrics` plans from
    catalog = json.loads((site / "catalog.json").read_text(encoding="utf-8"))
    columns = catalog["nodes"]["model.yilian.mart_referrals_daily"]["columns"]
    assert {"date", "county_code", "direction", "is_out_of_region"} <= set(columns)
    manifest = json.loads((site / "manifest.json").read_text(encoding="utf-8"))
    mart = manifest["nodes"]["model.yilian.mart_referrals_daily"]
    assert mart["description"] and mart["columns"]["direction"]["description"]
