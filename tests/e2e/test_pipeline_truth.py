"""End to end: simulated days with faults -> every DAG through Airflow -> marts == the truth.

The pipeline runs once for the module (the main job's `run_pipeline`: simulator, the three
source DAGs per day, then the marts DAG with cosmos/dbt and the publish step); the tests read
what it left. The truth is computed from the simulator's own events with exactly the records
the faults corrupted (and validation quarantined) set aside, never by loosening a comparison.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import datetime, time, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from yilian_sim.config import FaultSpec, SimulationConfig
from yilian_sim.layout import Layout

from tests.region import START, Region
from yilian.settings import paths

pytestmark = pytest.mark.e2e

SCALE = 0.05
# A seed whose small region has, within DAYS, referrals of the facility promoted on start+2 both
# before and after its promotion, and a referral of the first day left open (accepted, never
# completed) for late_status_update to complete on the last day. (The default seed has neither
# at this scale; a larger scale has both but costs minutes through Airflow.)
SEED = 20260361
DAYS = [START + timedelta(days=i) for i in range(4)]  # the tier change of start+2 falls inside
FAULTS = (
    FaultSpec("api_errors", day=DAYS[0], count=3),  # the extractor retries through a 503 burst
    FaultSpec("invalid_resident_ids", day=DAYS[1], rate=0.03),
    FaultSpec("unknown_facility_codes", day=DAYS[2], rate=0.02),
    FaultSpec("duplicate_rows", day=DAYS[2], rate=0.02),
    FaultSpec("late_status_update", day=DAYS[3], count=2),
    FaultSpec("invalid_resident_ids", day=DAYS[3], rate=0.02),
)
# Faults whose records validation quarantines and the marts therefore never see. (A duplicate
# is an extra copy of a record that also arrives intact; a late update and an API burst lose
# nothing.)
EXCLUDING_FAULTS = ("invalid_resident_ids", "unknown_facility_codes")
# Fault-log table -> (raw/quarantine table name, key column, the event list and its id field)
FAULT_TABLES = {
    ("hospital", "his_encounter"): ("encounters", "encounter_id", "encounters", "encounter_id"),
    ("imaging", "ImagingStudy"): ("studies", "study_id", "remote_reads", "study_id"),
    ("prescriptions", "prescriptions"): (
        "prescriptions",
        "prescription_id",
        "prescriptions",
        "prescription_id",
    ),
}
MARTS = {  # truth attribute -> (mart, key columns)
    "referrals_daily": (
        "mart_referrals_daily",
        ["date", "alliance_id", "county_code", "direction", "is_out_of_region"],
    ),
    "remote_diagnosis_daily": (
        "mart_remote_diagnosis_daily",
        ["date", "modality", "reading_facility_code"],
    ),
    "interoperability_daily": ("mart_interoperability_daily", ["date", "county_code"]),
    "alliance_kpis_monthly": ("mart_alliance_kpis_monthly", ["month", "county_code"]),
}
QUANTILE_TOLERANCE = 1e-6  # minutes / hours
RATE_TOLERANCE = 1e-9


@dataclasses.dataclass
class Run:
    config: SimulationConfig
    result: object  # yilian.dev.main_job.PipelineResult
    faults: object  # FaultLog
    warehouse: Path
    published: Path


def _query(db: Path, sql: str, params: list | None = None) -> pd.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).df()
    finally:
        con.close()


@pytest.fixture(scope="module")
def run(module_region: Region) -> Run:
    from yilian_sim.run import read_fault_log

    from yilian.dev.main_job import run_pipeline
    from yilian.warehouse.dbt import release_duckdb

    config = SimulationConfig(seed=SEED, scale=SCALE, start=START, faults=FAULTS)
    result = run_pipeline(DAYS, config, progress=lambda line: print(line, file=sys.stderr))
    release_duckdb()
    data = paths()
    return Run(
        config,
        result,
        read_fault_log(Layout(data.sim_dir)),
        data.warehouse,
        data.publish_dir / "yilian_marts.duckdb",
    )


def _excluded(run: Run) -> dict[str, set[str]]:
    """Ids of the records the excluding faults corrupted, by event list."""
    out: dict[str, set[str]] = {}
    for (source, table), (_, _, events, _) in FAULT_TABLES.items():
        out[events] = set().union(
            *(run.faults.keys(source, table, fault) for fault in EXCLUDING_FAULTS)
        )
    return out


@pytest.fixture(scope="module")
def truth(run: Run):
    return expected_truth(run)


def expected_truth(run: Run):
    """The simulator's truth for DAYS, without the records the excluding faults corrupted."""
    from yilian_sim.activity import generate_day
    from yilian_sim.region import build_region
    from yilian_sim.truth import truth_from_events

    region = build_region(run.config)
    excluded = _excluded(run)
    events = []
    for day in DAYS:
        ev = generate_day(run.config, region, day)
        kept = {
            events_name: [
                e
                for e in getattr(ev, events_name)
                if getattr(e, id_field) not in excluded[events_name]
            ]
            for _, _, events_name, id_field in FAULT_TABLES.values()
        }
        events.append(dataclasses.replace(ev, **kept))
    truth = truth_from_events(run.config, events)
    _add_mart_extras(run, region, events, truth)
    return truth


def _direction(sender, receiver) -> str:
    """CONTRACTS §5: from the tiers of sender and receiver (versions as of the referral day),
    wherever the receiver is."""
    if receiver.tier == sender.tier:
        return "lateral"
    return "up" if receiver.tier > sender.tier else "down"


def _add_mart_extras(run: Run, region, events, truth) -> None:
    """The marts' indicators beyond the truth module's tables, from the same events:
    acceptance rate, completed / rejected / green-channel referrals (a late_status_update
    completes a referral the simulator left open), and each modality's turnaround target."""
    from yilian_sim.reference import TURNAROUND_TARGET_MINUTES

    as_of = datetime.combine(DAYS[-1], time.max)
    late = run.faults.keys("hospital", "his_referral", "late_status_update")
    rows = []
    for ev in events:
        for r in ev.referrals:
            if r.sent_at > as_of:
                continue
            on_day = region.facilities_on(r.sent_at.date())
            sender, receiver = on_day[r.from_facility_code], on_day[r.to_facility_code]
            rows.append(
                (
                    r.sent_at.date(),
                    sender.alliance_id,
                    sender.county_code,
                    _direction(sender, receiver),
                    receiver.prefecture_code != region.prefecture_code,
                    r.referral_id in late
                    or (r.completed_at is not None and r.completed_at <= as_of),
                    r.rejected_at is not None and r.rejected_at <= as_of,
                    r.is_green_channel,
                )
            )
    keys = MARTS["referrals_daily"][1]
    extras = (
        pd.DataFrame(rows, columns=[*keys, "completed", "rejected", "green_channel_referrals"])
        .groupby(keys, dropna=False)
        .sum()
        .astype(int)
        .reset_index()
    )
    referrals = truth.referrals_daily.merge(extras, on=keys, how="left", validate="1:1")
    assert len(referrals) == len(truth.referrals_daily)
    assert referrals["completed"].sum() == extras["completed"].sum()  # no sent key outside
    counts = ["completed", "rejected", "green_channel_referrals"]
    referrals[counts] = referrals[counts].fillna(0).astype(int)
    referrals["acceptance_rate"] = referrals["accepted"] / referrals["referrals"].where(
        referrals["referrals"] > 0
    )
    truth.referrals_daily = referrals
    reads = truth.remote_diagnosis_daily
    reads["turnaround_target_minutes"] = reads["modality"].map(TURNAROUND_TARGET_MINUTES)


# --- the run itself ---------------------------------------------------------------------------


def test_every_dag_run_succeeded(run: Run) -> None:
    assert run.result.runs, "no DAG ran"
    assert not run.result.failed, [
        (r.dag_id, str(r.business_day), r.state) for r in run.result.failed
    ]
    ran = {(r.dag_id, r.business_day) for r in run.result.runs}
    for day in DAYS:
        for dag_id in ("yilian_hospital", "yilian_imaging", "yilian_prescriptions"):
            assert (dag_id, day) in ran
    # the partitioned Assets started a marts run that built each day, by themselves
    built = {r.business_day for r in run.result.runs if r.dag_id == "yilian_marts" and r.built}
    assert built == set(DAYS)


def test_the_faults_hit_records(run: Run) -> None:
    """Otherwise this test would prove nothing about exclusion (raise a rate if this fails)."""
    excluded = _excluded(run)
    assert excluded["encounters"] and excluded["remote_reads"] and excluded["prescriptions"]
    assert run.faults.keys("hospital", "his_encounter", "duplicate_rows")
    assert run.faults.keys("prescriptions", "prescriptions", "duplicate_rows")
    assert any(h.fault == "api_errors" for h in run.faults.hits)


def test_counts_reconcile_per_source_table_and_day(run: Run) -> None:
    audit = _query(
        run.warehouse,
        """select * from audit.load_runs
           qualify row_number() over (partition by source, table_name, ds
                                      order by finished_at desc) = 1""",
    )
    assert set(audit.source) == {"hospital", "imaging", "prescriptions"}
    assert set(pd.to_datetime(audit.ds).dt.date) == set(DAYS)
    per_source_day = audit.groupby(["source", audit.ds.astype(str)]).size()
    assert len(per_source_day) == 3 * len(DAYS)
    assert (audit.outcome == "loaded").all(), audit[audit.outcome != "loaded"][["source", "ds"]]
    assert (audit.rows_extracted == audit.rows_loaded + audit.rows_quarantined).all()
    raw = {}
    for source, table in audit[["source", "table_name"]].drop_duplicates().itertuples(index=False):
        counts = _query(
            run.warehouse, f"select ds, count(*) n from raw.{source}__{table} group by ds"
        )
        for ds, n in counts.itertuples(index=False):
            raw[(source, table, pd.Timestamp(ds).date())] = n
    quarantined = _query(
        run.warehouse,
        "select source, table_name, ds, count(*) n from quarantine.rejected_rows group by all",
    )
    held = {(s, t, pd.Timestamp(d).date()): n for s, t, d, n in quarantined.itertuples(index=False)}
    for row in audit.itertuples(index=False):
        key = (row.source, row.table_name, pd.Timestamp(row.ds).date())
        assert raw.get(key, 0) == row.rows_loaded, key
        assert held.get(key, 0) == row.rows_quarantined, key
    assert audit.rows_quarantined.sum() > 0


def test_quarantine_holds_exactly_the_faulted_records(run: Run) -> None:
    quarantined = _query(
        run.warehouse,
        "select source, table_name, ds, rule, record_key from quarantine.rejected_rows",
    )
    for (source, log_table), (table, key, _, _) in FAULT_TABLES.items():
        faulted = run.faults.keys(source, log_table)
        held = quarantined[(quarantined.source == source) & (quarantined.table_name == table)]
        assert set(held.record_key) == faulted, f"{source}.{table}"
        loaded = _query(run.warehouse, f"select distinct {key} k from raw.{source}__{table}").k
        excluded = set().union(*(run.faults.keys(source, log_table, f) for f in EXCLUDING_FAULTS))
        assert not excluded & set(loaded), f"{source}.{table}: a corrupted record was loaded"
    # a prescription delivered twice is loaded once and its extra copy quarantined
    twice = run.faults.keys("prescriptions", "prescriptions", "duplicate_rows")
    counts = _query(
        run.warehouse,
        "select prescription_id k, count(*) n from raw.prescriptions__prescriptions group by 1",
    )
    assert (counts[counts.k.isin(twice)].n == 1).all() and counts.k.isin(twice).sum() == len(twice)
    # nothing else anywhere was quarantined
    other = quarantined[
        ~quarantined.set_index(["source", "table_name"]).index.isin(
            [(s, t) for (s, _), (t, _, _, _) in FAULT_TABLES.items()]
        )
    ]
    assert other.empty, other[["source", "table_name", "rule"]].value_counts()


def test_late_status_update_is_the_latest_version(run: Run) -> None:
    late = run.faults.keys("hospital", "his_referral", "late_status_update")
    assert late, "SEED should leave a referral open for late_status_update"
    rows = _query(run.warehouse, "select referral_id, status from marts.fct_referrals")
    rows = rows[rows.referral_id.isin(late)]
    assert set(rows.referral_id) == late and (rows.status == "completed").all()


# --- marts == truth ---------------------------------------------------------------------------


def _normalise(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    out = frame.copy()
    for column in ("date", "month"):
        if column in out:
            out[column] = pd.to_datetime(out[column]).dt.date
    for column in keys:
        if column not in ("date", "month"):
            out[column] = out[column].astype(object).where(out[column].notna(), "<null>")
    return out.sort_values(keys).reset_index(drop=True)


@pytest.mark.parametrize("name", list(MARTS))
def test_mart_equals_truth(run: Run, truth, name: str) -> None:
    mart_name, keys = MARTS[name]
    expected = getattr(truth, name)
    actual = _query(run.published, f"select * from marts.{mart_name}")
    missing = [c for c in expected.columns if c not in actual.columns]
    assert not missing, f"{mart_name} lacks {missing}"
    expected = _normalise(expected, keys)
    actual = _normalise(actual[list(expected.columns)], keys)
    merged = expected.merge(
        actual, on=keys, how="outer", suffixes=("_truth", "_mart"), indicator=True
    )
    only = merged[merged._merge != "both"]
    assert only.empty, f"{mart_name}: rows on one side only:\n{only[[*keys, '_merge']]}"
    problems = []
    for column in expected.columns:
        if column in keys:
            continue
        want = pd.to_numeric(merged[f"{column}_truth"], errors="raise").astype(float)
        got = pd.to_numeric(merged[f"{column}_mart"], errors="raise").astype(float)
        if column.startswith(("median", "p90")):
            tol = QUANTILE_TOLERANCE
        elif pd.api.types.is_integer_dtype(expected[column]):
            tol = 0.0
        else:
            tol = RATE_TOLERANCE
        same = (want.isna() & got.isna()) | (np.abs(want - got) <= tol)
        if not same.all():
            bad = merged.loc[~same, [*keys, f"{column}_truth", f"{column}_mart"]]
            problems.append(f"{column} differs on {len(bad)} row(s):\n{bad.head(10)}")
    assert not problems, f"{mart_name}:\n" + "\n".join(problems)
    assert len(merged) > 0


def test_every_kpi_mart_is_dense(run: Run) -> None:
    """Every business day × county (× category) has a row, zero where nothing happened."""
    from tests.marts_shape import dense_shapes, mart_days

    con = duckdb.connect(str(run.published), read_only=True)
    try:
        shapes = dense_shapes(con, DAYS)
        days = mart_days(con)
    finally:
        con.close()
    assert {mart: rows for mart, (rows, _) in shapes.items()} == {
        mart: expected for mart, (_, expected) in shapes.items()
    }
    assert all(built == set(DAYS) for built in days.values()), days


def test_semantic_layer_equals_the_monthly_mart(run: Run) -> None:
    """Six indicators through MetricFlow on the published marts (the manifest of the marts DAG's
    dbt docs), by month × county and region-wide: the mart's numerators over denominators.
    Also the report's indicators, region-wide."""
    from yilian.warehouse.semantic import IN_REGION, query_metrics

    ratios = {
        "primary_care_visit_share": ("primary_care_visits", "visits"),
        "in_county_visit_rate": ("resident_visits_in_county", "resident_visits"),
        "in_county_inpatient_share": ("resident_admissions_in_county", "resident_admissions"),
        "down_up_ratio": ("downward_referrals", "upward_referrals"),
        "upward_referrals": ("upward_referrals", None),
        "remote_imaging_diagnoses_per_10k": ("remote_reads", "resident_population"),
    }
    mart = _query(run.published, "select * from marts.mart_alliance_kpis_monthly")
    mart["month"] = pd.to_datetime(mart["month"]).dt.date
    parts = sorted({c for pair in ratios.values() for c in pair if c})
    for group_by, keys in ((["metric_time__month", "county"], ["month", "county_code"]),
                           (["metric_time__month"], ["month"])):  # fmt: skip
        # the mart lists the region's counties: so does the semantic layer, with IN_REGION
        got = query_metrics(list(ratios), group_by, where=[IN_REGION], database=run.published)
        got = got.rename(columns={"metric_time__month": "month", "county": "county_code"})
        got["month"] = pd.to_datetime(got["month"]).dt.date
        semantic = got.set_index(keys).add_prefix("semantic_")
        merged = mart.groupby(keys)[parts].sum().join(semantic, how="left")
        for metric, (numerator, denominator) in ratios.items():
            want = merged[numerator] * (10_000 if numerator == "remote_reads" else 1)
            if denominator:
                want = want / merged[denominator].where(merged[denominator] > 0)
            have = merged[f"semantic_{metric}"]
            if not denominator:  # a count: no fact rows at all is zero
                have = have.fillna(0)
            same = (want.isna() & have.isna()) | (np.abs(want - have) <= 1e-9)
            assert same.all(), (metric, group_by, merged.loc[~same, [numerator]])
        assert len(merged) > 0
    from yilian.warehouse.report import indicator_table
    from yilian.warehouse.semantic import format_value

    shown = indicator_table(run.published).set_index("metric")["region"]
    share = mart["primary_care_visits"].sum() / mart["visits"].sum()
    assert shown["primary_care_visit_share"] == format_value("primary_care_visit_share", share)


# --- slowly changing facilities ----------------------------------------------------------------


def test_tier_change_is_two_versions_and_directions_follow_the_date(run: Run) -> None:
    from yilian_sim.activity import generate_day
    from yilian_sim.region import build_region

    region = build_region(run.config)
    promoted = [
        v
        for v in region.facility_versions
        if v.version_no > 1 and START < v.effective_date <= DAYS[-1]
    ]
    changed = {
        v.facility_code
        for v in promoted
        for old in region.facility_versions
        if old.facility_code == v.facility_code
        and old.version_no == v.version_no - 1
        and old.tier != v.tier
    }
    assert changed, "the default plan promotes a facility on start+2"
    for code in changed:
        versions = _query(
            run.published,
            "select tier, valid_from, valid_to, is_current from marts.dim_facility "
            "where facility_code = ? order by valid_from",
            [code],
        )
        assert len(versions) == 2, f"{code}: {len(versions)} version(s) in dim_facility"
        before, after = versions.iloc[0], versions.iloc[1]
        change_day = next(v.effective_date for v in promoted if v.facility_code == code)
        assert before.tier != after.tier
        assert pd.Timestamp(after.valid_from).date() == change_day
        assert pd.Timestamp(before.valid_to).date() == change_day
        assert not before.is_current and after.is_current

    refs = _query(
        run.published,
        "select referral_id, from_facility_code, to_facility_code, sent_date, direction, "
        "sender_tier, receiver_tier from marts.fct_referrals "
        "where list_contains(?, from_facility_code) or list_contains(?, to_facility_code)",
        [sorted(changed), sorted(changed)],
    )
    simulated = {
        r.referral_id: r.sent_at.date()
        for day in DAYS
        for r in generate_day(run.config, region, day).referrals
        if {r.from_facility_code, r.to_facility_code} & changed
    }
    assert set(refs.referral_id) == set(simulated)
    change_days = {v.effective_date for v in promoted if v.facility_code in changed}
    sides = {any(d >= c for c in change_days) for d in simulated.values()}
    assert sides == {False, True}, "at this scale the promoted facility must refer before and after"
    for row in refs.itertuples(index=False):
        day = pd.Timestamp(row.sent_date).date()
        on_day = region.facilities_on(day)
        sender, receiver = on_day[row.from_facility_code], on_day[row.to_facility_code]
        assert (row.sender_tier, row.receiver_tier) == (sender.tier, receiver.tier)
        assert row.direction == _direction(sender, receiver)


# --- BI reads while a writer holds the warehouse ------------------------------------------------


_READER = """
import duckdb, sys
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute("select count(*) from marts.mart_referrals_daily").fetchone()[0])
"""


def test_bi_client_reads_published_copy_while_the_warehouse_is_written(run: Run) -> None:
    writer = duckdb.connect(str(run.warehouse))  # a load holds the warehouse's write lock
    try:
        writer.execute("begin")
        writer.execute("create or replace table audit.e2e_writer_probe as select 1 as x")
        blocked = subprocess.run(
            [sys.executable, "-c", _READER, str(run.warehouse)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert blocked.returncode != 0, "the warehouse itself should be locked by the writer"
        reader = subprocess.run(
            [sys.executable, "-c", _READER, str(run.published)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert reader.returncode == 0, reader.stderr[-2000:]
        assert int(reader.stdout.strip()) > 0
        writer.execute("rollback")
    finally:
        writer.close()


# --- a full rebuild gives the incremental marts -------------------------------------------------


def _marts_snapshot(db: Path) -> dict[str, pd.DataFrame]:
    names = _query(
        db,
        "select table_name from information_schema.tables where table_schema = 'marts' "
        "and table_type = 'BASE TABLE' order by 1",
    ).table_name
    out = {}
    for name in names:
        frame = _query(db, f"select * from marts.{name}")
        out[name] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return out


def test_full_refresh_equals_incremental(run: Run) -> None:
    from yilian.warehouse.dbt import build, release_duckdb

    incremental = _marts_snapshot(run.warehouse)
    try:
        build(full_refresh=True)
    finally:
        release_duckdb()
    rebuilt = _marts_snapshot(run.warehouse)
    assert incremental.keys() == rebuilt.keys()
    for name in incremental:
        pd.testing.assert_frame_equal(incremental[name], rebuilt[name], obj=name)
