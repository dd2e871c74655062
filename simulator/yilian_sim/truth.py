"""The true value of every indicator, computed in pandas straight from the simulated events.

The marts must reproduce these tables (same keys, same column names) from what the pipeline
extracted; tests compare the two. Semantics follow the national definitions in DOMAIN.md
(docs/CONTRACTS.md §5):
- A visit (诊疗人次) is an outpatient or emergency encounter; an inpatient admission (住院人次)
  counts only in the inpatient indicators.
- A referral's direction comes from the tiers of sender and receiver on the referral day,
  wherever the receiver is (up to a provincial hospital is `up`); `is_out_of_region` is beside it.
- A remote diagnosis is a study whose report is signed by `as_of`; a read requested and not yet
  reported is pending (`reads_pending`, `remote_reads_pending`), not a diagnosis.
- Dense: every day × county (× sender alliance, direction, in/out of region; × modality, reader)
  has a row, zero where nothing happened.
And these choices:
- `as_of` cuts timelines: an acceptance, report, dispense or upload after it has not happened.
- Result recognition counts only results within the recognised-items catalogue (in_catalogue).
- Turnaround is fractional minutes; `within_target` means turnaround <= the modality's target;
  `within_target_share` and the quantiles are over reads reported by `as_of`.
- `remote_reads` per 10,000 residents counts imaging, ECG and ultrasound, not pathology (SM).
- Resident-based rates are reported for the region's counties only (visitors from other
  prefectures count in `visits` of the facility's county, not in any resident rate).
- A rate whose denominator is 0 is NaN (null in the marts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

import numpy as np
import pandas as pd

from yilian_sim.activity import IN_SCOPE_TYPES, PRIMARY_TYPES, generate_day
from yilian_sim.config import SimulationConfig
from yilian_sim.model import MODALITIES, DayEvents, Region
from yilian_sim.reference import REMOTE_IMAGING_MODALITIES, TURNAROUND_TARGET_MINUTES
from yilian_sim.region import build_region


@dataclass
class Truth:
    """One DataFrame per KPI mart, keyed and named like the mart."""

    referrals_daily: pd.DataFrame
    remote_diagnosis_daily: pd.DataFrame
    interoperability_daily: pd.DataFrame
    alliance_kpis_monthly: pd.DataFrame


def _rate(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return (numerator / denominator.where(denominator > 0)).astype(float)


def _facility_days(region: Region, days: list[date]) -> pd.DataFrame:
    """The facility master as of each day: one row per (date, facility_code)."""
    rows = [
        (
            day,
            v.facility_code,
            v.facility_type,
            v.tier,
            v.county_code,
            v.alliance_id,
            v.status,
            v.prefecture_code == region.prefecture_code,
        )
        for day in days
        for v in region.facilities_on(day).values()
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "date",
            "facility_code",
            "facility_type",
            "tier",
            "county_code",
            "alliance_id",
            "status",
            "in_region",
        ],
    )


def _frames(events: list[DayEvents]) -> dict[str, pd.DataFrame]:
    """The columns the indicators need, one frame per event kind, for all days."""
    enc = [
        (ev.day, e.facility_code, e.patient.resident_id[:6], e.encounter_type, e.visit_at)
        for ev in events
        for e in ev.encounters
    ]
    ref = [
        (ev.day, r.from_facility_code, r.to_facility_code, r.sent_at, r.accepted_at)
        for ev in events
        for r in ev.referrals
    ]
    reads = [
        (
            ev.day,
            r.requesting_facility_code,
            r.reading_facility_code,
            r.modality,
            r.read_requested_at,
            r.reported_at,
        )
        for ev in events
        for r in ev.remote_reads
    ]
    rec = [
        (ev.day, r.facility_code, r.in_catalogue, r.recognised, r.presented_at)
        for ev in events
        for r in ev.result_recognitions
    ]
    rx = [
        (ev.day, p.hospital_code, p.is_outflow, p.prescribed_at, p.dispensed_at)
        for ev in events
        for p in ev.prescriptions
    ]
    up = [(ev.day, u.facility_code, u.received_at) for ev in events for u in ev.uploads]
    return {
        "encounters": pd.DataFrame(
            enc, columns=["date", "facility_code", "patient_county", "encounter_type", "visit_at"]
        ),
        "referrals": pd.DataFrame(
            ref,
            columns=["date", "from_facility_code", "to_facility_code", "sent_at", "accepted_at"],
        ),
        "reads": pd.DataFrame(
            reads,
            columns=[
                "date",
                "facility_code",
                "reading_facility_code",
                "modality",
                "read_requested_at",
                "reported_at",
            ],
        ),
        "recognitions": pd.DataFrame(
            rec, columns=["date", "facility_code", "in_catalogue", "recognised", "presented_at"]
        ),
        "prescriptions": pd.DataFrame(
            rx, columns=["date", "facility_code", "is_outflow", "prescribed_at", "dispensed_at"]
        ),
        "uploads": pd.DataFrame(up, columns=["date", "facility_code", "received_at"]),
    }


def _happened(series: pd.Series, as_of: datetime) -> pd.Series:
    """True where the timestamp is set and not after `as_of`."""
    return pd.to_datetime(series).le(as_of).fillna(False).astype(bool)


def _in_scope(facilities: pd.DataFrame) -> pd.DataFrame:
    """The region's active points of care, per day (the connectivity scope)."""
    return facilities[
        facilities["in_region"]
        & (facilities["status"] == "active")
        & facilities["facility_type"].isin(IN_SCOPE_TYPES)
    ]


REFERRAL_KEYS = ["date", "alliance_id", "county_code", "direction", "is_out_of_region"]


def _referrals_daily(ref: pd.DataFrame, facilities: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    sender = facilities.rename(columns=lambda c: f"from_{c}" if c != "date" else c)
    receiver = facilities.rename(columns=lambda c: f"to_{c}" if c != "date" else c)
    df = ref.merge(sender, on=["date", "from_facility_code"]).merge(
        receiver, on=["date", "to_facility_code"]
    )
    df["direction"] = np.select(
        [df["to_tier"] > df["from_tier"], df["to_tier"] < df["from_tier"]],
        ["up", "down"],
        "lateral",
    )
    df["is_out_of_region"] = ~df["to_in_region"].astype(bool)
    df["accepted"] = _happened(df["accepted_at"], as_of)
    hours = (pd.to_datetime(df["accepted_at"]) - pd.to_datetime(df["sent_at"])).dt.total_seconds()
    df["hours_to_accept"] = (hours / 3600).where(df["accepted"])
    counted = (
        df.rename(columns={"from_alliance_id": "alliance_id", "from_county_code": "county_code"})
        .groupby(REFERRAL_KEYS, dropna=False)
        .agg(
            referrals=("sent_at", "size"),
            accepted=("accepted", "sum"),
            median_hours_to_accept=("hours_to_accept", "median"),
        )
    )
    pairs = _in_scope(facilities)[["date", "alliance_id", "county_code"]].drop_duplicates()
    categories = pd.DataFrame(
        [(d, o) for d in ("up", "down", "lateral") for o in (False, True)],
        columns=["direction", "is_out_of_region"],
    )
    grid = pd.concat(
        [pairs.merge(categories, how="cross"), counted.index.to_frame(index=False)]
    ).drop_duplicates()
    out = grid.merge(counted.reset_index(), on=REFERRAL_KEYS, how="left")
    out[["referrals", "accepted"]] = out[["referrals", "accepted"]].fillna(0)
    return out.astype({"referrals": int, "accepted": int}).reset_index(drop=True)


def _remote_diagnosis_daily(reads: pd.DataFrame, days: list[date], as_of: datetime) -> pd.DataFrame:
    df = reads.copy()
    reported = _happened(df["reported_at"], as_of)
    minutes = (
        pd.to_datetime(df["reported_at"]) - pd.to_datetime(df["read_requested_at"])
    ).dt.total_seconds() / 60
    df["turnaround"] = minutes.where(reported)
    df["reported"] = reported
    # The imaging cloud names the reader only on the signed report: an unreported read has no
    # observable reading facility (null, as in the mart), and null keys keep their rows.
    df["reading_facility_code"] = df["reading_facility_code"].where(reported, None)
    df["within"] = reported & (df["turnaround"] <= df["modality"].map(TURNAROUND_TARGET_MINUTES))
    grouped = df.groupby(["date", "modality", "reading_facility_code"], dropna=False)
    counted = grouped.agg(
        reads=("modality", "size"),
        reads_reported=("reported", "sum"),
        within_target=("within", "sum"),
    )
    counted["median_turnaround_minutes"] = grouped["turnaround"].quantile(0.5)
    counted["p90_turnaround_minutes"] = grouped["turnaround"].quantile(0.9)
    # dense: every day × modality × reading centre (a facility that has signed a report) and
    # the null reader of the pending reads
    readers = [*sorted(set(df.loc[reported, "reading_facility_code"])), None]
    keys = ["date", "modality", "reading_facility_code"]
    grid = pd.DataFrame(
        [(d, m, r) for d in days for m in MODALITIES for r in readers], columns=keys
    )
    out = grid.merge(counted.reset_index(), on=keys, how="outer")
    reader = out["reading_facility_code"].astype(object)
    out["reading_facility_code"] = reader.where(reader.notna(), None)
    counts = ["reads", "reads_reported", "within_target"]
    out[counts] = out[counts].fillna(0)
    out = out.astype(dict.fromkeys(counts, int))
    out["reads_pending"] = out["reads"] - out["reads_reported"]
    out["within_target_share"] = _rate(out["within_target"], out["reads_reported"])
    return out[
        [
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
    ]


def _interoperability_daily(
    frames: dict[str, pd.DataFrame],
    facilities: pd.DataFrame,
    county_codes: list[str],
    days: list[date],
    as_of: datetime,
) -> pd.DataFrame:
    keys = ["date", "county_code"]
    grid = pd.DataFrame([(d, c) for d in days for c in county_codes], columns=keys)
    scope = _in_scope(facilities)
    in_scope = scope.groupby(keys).size().rename("facilities_in_scope")
    county_of = facilities[["date", "facility_code", "county_code"]]
    up = frames["uploads"].merge(county_of, on=["date", "facility_code"])
    up = up[_happened(up["received_at"], as_of)].merge(scope[["date", "facility_code"]])
    delivering = up.groupby(keys)["facility_code"].nunique().rename("facilities_delivering")
    rec = frames["recognitions"].merge(county_of, on=["date", "facility_code"])
    rec = rec[_happened(rec["presented_at"], as_of) & rec["in_catalogue"]]
    results = rec.groupby(keys).agg(
        results_presented=("recognised", "size"), results_recognised=("recognised", "sum")
    )
    rx = frames["prescriptions"].merge(county_of, on=["date", "facility_code"])
    rx = rx[_happened(rx["prescribed_at"], as_of)]
    rx["dispensed"] = rx["is_outflow"] & _happened(rx["dispensed_at"], as_of)
    scripts = rx.groupby(keys).agg(
        prescriptions=("is_outflow", "size"),
        prescriptions_flowed_out=("is_outflow", "sum"),
        prescriptions_dispensed=("dispensed", "sum"),
    )
    out = grid.set_index(keys).join([in_scope, delivering, results, scripts]).fillna(0)
    out = out.astype(int).reset_index()
    out["connectivity_rate"] = _rate(out["facilities_delivering"], out["facilities_in_scope"])
    out["result_recognition_rate"] = _rate(out["results_recognised"], out["results_presented"])
    out["prescription_outflow_rate"] = _rate(out["prescriptions_flowed_out"], out["prescriptions"])
    out["prescription_fill_rate"] = _rate(
        out["prescriptions_dispensed"], out["prescriptions_flowed_out"]
    )
    return out[
        [
            "date",
            "county_code",
            "facilities_in_scope",
            "facilities_delivering",
            "connectivity_rate",
            "results_presented",
            "results_recognised",
            "result_recognition_rate",
            "prescriptions",
            "prescriptions_flowed_out",
            "prescription_outflow_rate",
            "prescriptions_dispensed",
            "prescription_fill_rate",
        ]
    ]


def _month(day_column: pd.Series) -> pd.Series:
    return day_column.map(lambda d: d.replace(day=1))


def _alliance_kpis_monthly(
    frames: dict[str, pd.DataFrame],
    referrals: pd.DataFrame,
    facilities: pd.DataFrame,
    region: Region,
    days: list[date],
    as_of: datetime,
) -> pd.DataFrame:
    keys = ["month", "county_code"]
    counties = [c.code for c in region.counties]
    months = sorted({d.replace(day=1) for d in days})
    grid = pd.DataFrame([(m, c) for m in months for c in counties], columns=keys)
    enc = frames["encounters"].merge(
        facilities[["date", "facility_code", "facility_type", "county_code"]],
        on=["date", "facility_code"],
    )
    enc = enc[_happened(enc["visit_at"], as_of)]
    enc["month"] = _month(enc["date"])
    enc["visit"] = enc["encounter_type"].isin(["outpatient", "emergency"])  # 诊疗人次
    enc["primary"] = enc["visit"] & enc["facility_type"].isin(PRIMARY_TYPES)
    enc["in_county"] = enc["county_code"] == enc["patient_county"]
    enc["visit_in_county"] = enc["visit"] & enc["in_county"]
    enc["admission"] = enc["encounter_type"] == "inpatient"  # 住院人次
    enc["admission_in_county"] = enc["admission"] & enc["in_county"]
    visits = enc.groupby(keys).agg(visits=("visit", "sum"), primary_care_visits=("primary", "sum"))
    residents = (
        enc.drop(columns="county_code")
        .rename(columns={"patient_county": "county_code"})
        .groupby(keys)
        .agg(
            resident_visits=("visit", "sum"),
            resident_visits_in_county=("visit_in_county", "sum"),
            resident_admissions=("admission", "sum"),
            resident_admissions_in_county=("admission_in_county", "sum"),
        )
    )
    ref = referrals.assign(month=_month(referrals["date"]))
    ref = ref.pivot_table(index=keys, columns="direction", values="referrals", aggfunc="sum")
    ref = ref.reindex(columns=["up", "down"]).rename(
        columns={"up": "upward_referrals", "down": "downward_referrals"}
    )
    reads = frames["reads"].merge(
        facilities[["date", "facility_code", "county_code"]], on=["date", "facility_code"]
    )
    reads = reads[
        _happened(reads["read_requested_at"], as_of)
        & reads["modality"].isin(REMOTE_IMAGING_MODALITIES)
    ]
    signed = _happened(reads["reported_at"], as_of)
    reads = (
        reads.assign(month=_month(reads["date"]), remote_reads=signed, remote_reads_pending=~signed)
        .groupby(keys)[["remote_reads", "remote_reads_pending"]]
        .sum()
    )
    out = grid.set_index(keys).join([visits, residents, ref, reads]).fillna(0).astype(int)
    out = out.reset_index()
    out["resident_population"] = out["county_code"].map(
        {c.code: c.population for c in region.counties}
    )
    out["primary_care_visit_share"] = _rate(out["primary_care_visits"], out["visits"])
    out["in_county_visit_rate"] = _rate(out["resident_visits_in_county"], out["resident_visits"])
    out["in_county_inpatient_share"] = _rate(
        out["resident_admissions_in_county"], out["resident_admissions"]
    )
    out["down_up_ratio"] = _rate(out["downward_referrals"], out["upward_referrals"])
    out["remote_reads_per_10k"] = out["remote_reads"] * 10_000 / out["resident_population"]
    return out[
        [
            "month",
            "county_code",
            "visits",
            "primary_care_visits",
            "primary_care_visit_share",
            "resident_visits",
            "resident_visits_in_county",
            "in_county_visit_rate",
            "resident_admissions",
            "resident_admissions_in_county",
            "in_county_inpatient_share",
            "upward_referrals",
            "downward_referrals",
            "down_up_ratio",
            "remote_reads",
            "remote_reads_pending",
            "resident_population",
            "remote_reads_per_10k",
        ]
    ]


def truth_from_events(
    config: SimulationConfig, events: list[DayEvents], as_of: datetime | None = None
) -> Truth:
    """`compute_truth` for days already generated (saves regenerating them)."""
    region = build_region(config)
    days = sorted(ev.day for ev in events)
    as_of = as_of or datetime.combine(days[-1], time.max)
    facilities = _facility_days(region, days)
    frames = _frames(events)
    referrals = _referrals_daily(
        frames["referrals"][_happened(frames["referrals"]["sent_at"], as_of)], facilities, as_of
    )
    reads = frames["reads"][_happened(frames["reads"]["read_requested_at"], as_of)]
    return Truth(
        referrals_daily=referrals,
        remote_diagnosis_daily=_remote_diagnosis_daily(reads, days, as_of),
        interoperability_daily=_interoperability_daily(
            frames, facilities, [c.code for c in region.counties], days, as_of
        ),
        alliance_kpis_monthly=_alliance_kpis_monthly(
            frames, referrals, facilities, region, days, as_of
        ),
    )


def compute_truth(
    config: SimulationConfig, days: list[date], as_of: datetime | None = None
) -> Truth:
    """The indicators over `days`, as they stand at `as_of` (default: end of the last day)."""
    region = build_region(config)
    return truth_from_events(
        config, [generate_day(config, region, d) for d in sorted(set(days))], as_of
    )


def summary(truth: Truth) -> dict[str, float]:
    """Region-level headline figures (sums of numerators over sums of denominators)."""
    kpis, interop = truth.alliance_kpis_monthly, truth.interoperability_daily

    def ratio(frame: pd.DataFrame, numerator: str, denominator: str) -> float:
        total = frame[denominator].sum()
        return float(frame[numerator].sum() / total) if total else float("nan")

    return {
        "primary_care_visit_share": ratio(kpis, "primary_care_visits", "visits"),
        "in_county_visit_rate": ratio(kpis, "resident_visits_in_county", "resident_visits"),
        "in_county_inpatient_share": ratio(
            kpis, "resident_admissions_in_county", "resident_admissions"
        ),
        "down_up_ratio": ratio(kpis, "downward_referrals", "upward_referrals"),
        "connectivity_rate": ratio(interop, "facilities_delivering", "facilities_in_scope"),
        "result_recognition_rate": ratio(interop, "results_recognised", "results_presented"),
        "prescription_outflow_rate": ratio(interop, "prescriptions_flowed_out", "prescriptions"),
        "prescription_fill_rate": ratio(
            interop, "prescriptions_dispensed", "prescriptions_flowed_out"
        ),
    }
