"""The true indicators: their semantics (CONTRACTS.md §5) and the region's calibration.

Assertions check aggregates only; no personal data is ever compared or printed.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta

import numpy as np
import pandas as pd
import pytest
from yilian_sim.activity import generate_day
from yilian_sim.config import SimulationConfig
from yilian_sim.model import MODALITIES, DayEvents, Encounter, Referral, RemoteRead
from yilian_sim.population import person
from yilian_sim.reference import TURNAROUND_TARGET_MINUTES
from yilian_sim.region import build_region, default_facility_changes
from yilian_sim.truth import compute_truth, summary, truth_from_events

SMALL = SimulationConfig(seed=3, scale=0.1)


def test_every_modality_has_a_target_and_dx_is_the_seeds() -> None:
    assert set(TURNAROUND_TARGET_MINUTES) == set(MODALITIES)
    assert TURNAROUND_TARGET_MINUTES["DX"] == 25


def test_tables_have_the_marts_columns() -> None:
    truth = compute_truth(SMALL, [SMALL.start, SMALL.start + timedelta(days=1)])
    assert list(truth.referrals_daily.columns) == [
        "date",
        "alliance_id",
        "county_code",
        "direction",
        "is_out_of_region",
        "referrals",
        "accepted",
        "median_hours_to_accept",
    ]
    assert list(truth.remote_diagnosis_daily.columns) == [
        "date",
        "modality",
        "reading_facility_code",
        "reads",
        "reads_reported",
        "reads_pending",
        "median_turnaround_minutes",
        "p90_turnaround_minutes",
        "within_target",
        "within_target_share",
    ]
    assert len(truth.interoperability_daily) == 2 * 4  # days × counties
    assert len(truth.alliance_kpis_monthly) == 4
    assert set(summary(truth)) >= {
        "primary_care_visit_share",
        "in_county_visit_rate",
        "down_up_ratio",
        "connectivity_rate",
        "prescription_outflow_rate",
    }


def test_direction_uses_the_tiers_of_the_referral_day() -> None:
    """沿山镇卫生院 (QN2101) becomes tier 2 on start+2: its referral to the county hospital is
    `up` before that day and `lateral` from it on."""
    promotion = default_facility_changes(SMALL.start)[0]
    patient = person("522723", 1, SMALL.seed)

    def day_with_referral(day) -> DayEvents:
        sent = datetime.combine(day, time(10))
        referral = Referral(
            f"RF{day:%Y%m%d}X",
            patient,
            promotion.facility_code,
            "QN2001",
            "I10.x00x002",
            False,
            sent,
            sent + timedelta(hours=2),
            None,
            None,
        )
        return DayEvents(day=day, referrals=[referral])

    before = promotion.day - timedelta(days=1)
    truth = truth_from_events(SMALL, [day_with_referral(before), day_with_referral(promotion.day)])
    sent = truth.referrals_daily[truth.referrals_daily["referrals"] > 0]
    directions = dict(zip(sent["date"], sent["direction"], strict=True))
    assert directions == {before: "up", promotion.day: "lateral"}
    assert sent["median_hours_to_accept"].tolist() == [2.0, 2.0]


def test_the_national_definitions_on_a_hand_made_day() -> None:
    """诊疗人次 leaves admissions out; a county hospital's referral to a provincial tier-3
    hospital is 上转 (and out of region); an unread study is pending, not a diagnosis."""
    day = SMALL.start
    at = datetime.combine(day, time(9))
    resident = person("522723", 1, SMALL.seed)

    def encounter(eid: str, kind: str) -> Encounter:
        return Encounter(eid, "QN2101", resident, kind, at, None, "I10.x00x002", "内科")

    def read(sid: str, reported: datetime | None) -> RemoteRead:
        return RemoteRead(sid, resident, "QN2101", "QN1001", "DX", 1, at, at, at, sid, reported, "")

    events = DayEvents(
        day=day,
        encounters=[
            encounter("O", "outpatient"),
            encounter("E", "emergency"),
            encounter("I", "inpatient"),
        ],
        referrals=[
            Referral("R", resident, "QN2001", "QN9001", "I63.900", True, at, None, None, None)
        ],
        remote_reads=[read("S1", at + timedelta(minutes=20)), read("S2", None)],
    )
    truth = truth_from_events(SMALL, [events])
    kpis = truth.alliance_kpis_monthly.set_index("county_code").loc["522723"]
    assert (kpis["visits"], kpis["primary_care_visits"], kpis["resident_visits"]) == (2, 2, 2)
    assert (kpis["resident_admissions"], kpis["upward_referrals"]) == (1, 1)
    assert (kpis["remote_reads"], kpis["remote_reads_pending"]) == (1, 1)
    sent = truth.referrals_daily.query("referrals > 0")
    assert sent[["direction", "is_out_of_region"]].values.tolist() == [["up", True]]
    dx = truth.remote_diagnosis_daily.query("modality == 'DX' and reads > 0")
    assert dx[["reading_facility_code", "reads_reported", "reads_pending"]].values.tolist() == [
        ["QN1001", 1, 0],
        [None, 0, 1],
    ]


def test_the_daily_tables_are_dense() -> None:
    days = [SMALL.start, SMALL.start + timedelta(days=1)]
    truth = compute_truth(SMALL, days)
    reads = truth.remote_diagnosis_daily
    readers = reads["reading_facility_code"].nunique(dropna=False)
    assert len(reads) == len(days) * len(MODALITIES) * readers
    referrals = truth.referrals_daily
    pairs = referrals[["date", "alliance_id", "county_code"]].drop_duplicates()
    assert len(referrals) == len(pairs) * 3 * 2
    assert (referrals["referrals"] == 0).any() and (reads["reads"] == 0).any()


def test_as_of_cuts_timelines() -> None:
    day = SMALL.start
    events = [generate_day(SMALL, build_region(SMALL), day)]
    at_midnight = truth_from_events(SMALL, events)
    later = truth_from_events(
        SMALL, events, as_of=datetime.combine(day, time()) + timedelta(days=10)
    )
    at_noon = truth_from_events(SMALL, events, as_of=datetime.combine(day, time(12)))
    accepted = [t.referrals_daily["accepted"].sum() for t in (at_noon, at_midnight, later)]
    reported = [
        t.remote_diagnosis_daily["reads_reported"].sum() for t in (at_noon, at_midnight, later)
    ]
    visits = [t.alliance_kpis_monthly["visits"].sum() for t in (at_noon, at_midnight, later)]
    assert accepted[0] <= accepted[1] <= accepted[2]
    assert reported[0] < reported[1] <= reported[2]
    assert visits[0] < visits[1] == visits[2]
    end_of_day = datetime.combine(day, time.max)
    expected = sum(
        p.dispensed_at is not None and p.dispensed_at <= end_of_day for p in events[0].prescriptions
    )
    assert at_midnight.interoperability_daily["prescriptions_dispensed"].sum() == expected
    delivering = at_noon.interoperability_daily["facilities_delivering"].sum()
    assert delivering == 0  # feeds arrive from 22:00


def test_quantiles_are_linear_interpolation() -> None:
    days = [SMALL.start + timedelta(days=i) for i in range(2)]
    events = [generate_day(SMALL, build_region(SMALL), d) for d in days]
    truth = truth_from_events(SMALL, events)
    dx = [
        (r.reported_at - r.read_requested_at).total_seconds() / 60
        for r in events[0].remote_reads
        if r.modality == "DX" and r.reported_at is not None
    ]
    row = truth.remote_diagnosis_daily.query("modality == 'DX' and date == @days[0]").iloc[0]
    assert row["median_turnaround_minutes"] == pytest.approx(np.quantile(dx, 0.5, method="linear"))
    assert row["p90_turnaround_minutes"] == pytest.approx(np.quantile(dx, 0.9, method="linear"))
    assert row["within_target"] == sum(m <= 25 for m in dx)


def test_down_up_ratio_follows_the_config() -> None:
    days = [SMALL.start + timedelta(days=i) for i in range(3)]
    ratios = {}
    for wanted in (0.2, 1.5):
        config = replace(SMALL, scale=1.0, down_up_ratio=wanted)
        ratios[wanted] = summary(compute_truth(config, days))["down_up_ratio"]
    assert 0.1 < ratios[0.2] < 0.35
    assert 1.1 < ratios[1.5] < 2.0


@pytest.fixture(scope="module")
def month() -> tuple[list[DayEvents], pd.DataFrame, dict[str, float]]:
    config = SimulationConfig(seed=20260101, scale=1.0)
    region = build_region(config)
    events = [generate_day(config, region, config.start + timedelta(days=i)) for i in range(30)]
    truth = truth_from_events(config, events)
    return events, truth, summary(truth)


@pytest.mark.slow  # ~12 s on an idle machine, over 20 s under load
def test_calibration_at_scale_one_over_a_month(month) -> None:
    events, truth, headline = month
    visits = sum(len(ev.encounters) for ev in events)
    assert 16_500 < visits / 30 < 19_500
    kinds = pd.Series([e.encounter_type for ev in events for e in ev.encounters])
    shares = kinds.value_counts(normalize=True)
    assert 0.91 < shares["outpatient"] < 0.95
    assert 0.03 < shares["emergency"] < 0.05
    assert 0.02 < shares["inpatient"] < 0.045

    assert 0.45 <= headline["primary_care_visit_share"] <= 0.65
    assert 0.80 <= headline["in_county_visit_rate"] <= 0.93
    kpis = truth.alliance_kpis_monthly
    assert kpis["in_county_visit_rate"].between(0.80, 0.93).all()
    assert 0.6 <= headline["down_up_ratio"] / 0.8 <= 1.4
    assert 0.90 <= headline["connectivity_rate"] <= 0.97
    assert 0.70 <= headline["result_recognition_rate"] <= 0.90
    assert 0.01 <= headline["prescription_outflow_rate"] <= 0.05
    assert 0.80 <= headline["prescription_fill_rate"] <= 0.95

    referrals = truth.referrals_daily
    assert 0.003 <= referrals["referrals"].sum() / visits <= 0.005
    assert 0.85 <= referrals["accepted"].sum() / referrals["referrals"].sum() <= 0.92
    assert set(referrals["direction"]) == {"up", "down", "lateral"}
    out = referrals[referrals["is_out_of_region"]].groupby("direction")["referrals"].sum()
    assert out["up"] > 0  # county hospitals refer up to provincial ones
    green = sum(r.is_green_channel for ev in events for r in ev.referrals)
    assert 0 < green < 0.1 * referrals["referrals"].sum()

    reads = truth.remote_diagnosis_daily
    per_day = reads.groupby("date")["reads"].sum()
    assert per_day.between(150, 600).all()
    assert set(reads["modality"]) == set(MODALITIES)
    by_modality = reads.groupby("modality")[["within_target", "reads_reported", "reads"]].sum()
    dx = by_modality.loc["DX"]
    assert dx["within_target"] / dx["reads_reported"] > 0.85
    assert 0.95 < by_modality["reads_reported"].sum() / by_modality["reads"].sum() < 1.0
    medians = reads.groupby("modality")["median_turnaround_minutes"].median()
    assert medians["ECG"] < medians["DX"] < medians["CT"] < medians["MR"] < medians["SM"]
    assert 60 < medians["SM"] < 3 * 1440
    presented = sum(len(ev.result_recognitions) for ev in events)
    assert 0.01 < presented / visits < 0.03
