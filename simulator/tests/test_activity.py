"""One simulated day: reproducible, internally consistent, and faithful to the facility master.

Assertions check counts and booleans only: events carry resident IDs, names and phones, which
must never reach test output.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from stdnum.cn import ric
from yilian_sim.activity import IN_SCOPE_TYPES, generate_day
from yilian_sim.config import SimulationConfig
from yilian_sim.model import DayEvents, Region
from yilian_sim.region import build_region, default_facility_changes

CONFIG = SimulationConfig(seed=42, scale=0.1)
DAYS = [CONFIG.start + timedelta(days=i) for i in range(8)]


@pytest.fixture(scope="module")
def region() -> Region:
    return build_region(CONFIG)


@pytest.fixture(scope="module")
def week(region: Region) -> list[DayEvents]:
    return [generate_day(CONFIG, region, day) for day in DAYS]


def _people(events: DayEvents):
    for kind in ("encounters", "referrals", "result_recognitions", "remote_reads", "prescriptions"):
        for record in getattr(events, kind):
            yield record.patient


def _facility_codes(events: DayEvents) -> set[str]:
    codes = {e.facility_code for e in events.encounters}
    codes |= {c for r in events.referrals for c in (r.from_facility_code, r.to_facility_code)}
    codes |= {r.requesting_facility_code for r in events.remote_reads}
    codes |= {
        c for r in events.result_recognitions for c in (r.facility_code, r.origin_facility_code)
    }
    codes |= {p.hospital_code for p in events.prescriptions}
    return codes | {u.facility_code for u in events.uploads}


def test_same_seed_same_events_and_another_seed_differs(region: Region, week) -> None:
    again = generate_day(CONFIG, region, DAYS[0])
    identical = again == week[0]
    assert identical
    other = generate_day(SimulationConfig(seed=43, scale=0.1), region, DAYS[0])
    differs = other.encounters != week[0].encounters
    assert differs


def test_volumes_scale_linearly() -> None:
    config = SimulationConfig(seed=42, scale=0.2)
    small = len(generate_day(config, build_region(config), DAYS[0]).encounters)
    config = SimulationConfig(seed=42, scale=0.05)
    smaller = len(generate_day(config, build_region(config), DAYS[0]).encounters)
    assert 3.4 < small / smaller < 4.6
    assert 0.16 * 18_000 < small < 0.24 * 18_000


def test_every_patient_has_a_valid_resident_id(week) -> None:
    ids = {p.resident_id for events in week for p in _people(events)}
    invalid = sum(not ric.is_valid(i) for i in ids)
    assert invalid == 0
    visitors = sum(not i.startswith(("522701", "522723", "522722", "522732")) for i in ids)
    assert 0.005 < visitors / len(ids) < 0.03


def test_ids_are_unique_and_stable(week) -> None:
    for attr, kind in (
        ("encounter_id", "encounters"),
        ("referral_id", "referrals"),
        ("study_id", "remote_reads"),
        ("recognition_id", "result_recognitions"),
        ("prescription_id", "prescriptions"),
        ("upload_id", "uploads"),
    ):
        ids = [getattr(r, attr) for events in week for r in getattr(events, kind)]
        duplicates = len(ids) - len(set(ids))
        assert duplicates == 0, kind


def test_encounters_only_at_active_delivering_sites(region: Region, week) -> None:
    for events in week:
        facilities = region.facilities_on(events.day)
        delivered = {u.facility_code: u.record_count for u in events.uploads}
        per_site: dict[str, int] = {}
        for e in events.encounters:
            per_site[e.facility_code] = per_site.get(e.facility_code, 0) + 1
        sites = {facilities[code] for code in per_site}
        assert all(v.status == "active" and v.facility_type != "pharmacy" for v in sites)
        internal = {v.facility_code for v in sites if v.facility_type != "external_hospital"}
        assert internal <= set(delivered)
        assert all(per_site.get(code, 0) == n for code, n in delivered.items())
        in_scope = {
            c
            for c, v in facilities.items()
            if v.status == "active"
            and v.facility_type in IN_SCOPE_TYPES
            and v.prefecture_code == "522700"
        }
        assert set(delivered) <= in_scope
        assert 0.85 < len(delivered) / len(in_scope) <= 1.0
        derived = {r.from_facility_code for r in events.referrals}
        derived |= {r.requesting_facility_code for r in events.remote_reads}
        derived |= {r.facility_code for r in events.result_recognitions}
        derived |= {p.hospital_code for p in events.prescriptions}
        assert derived <= set(delivered)


def test_timelines_are_ordered(week) -> None:
    for events in week:
        day_start = datetime.combine(events.day, time())
        day_end = day_start + timedelta(days=1)
        for e in events.encounters:
            assert day_start <= e.visit_at < day_end
            assert (e.discharge_at is not None) == (e.encounter_type == "inpatient")
            assert e.discharge_at is None or e.discharge_at > e.visit_at
        for r in events.referrals:
            assert day_start <= r.sent_at < day_end
            assert (r.accepted_at is None) != (r.rejected_at is None)
            assert r.accepted_at is None or r.accepted_at > r.sent_at
            assert r.rejected_at is None or r.rejected_at > r.sent_at
            assert r.completed_at is None or (r.accepted_at and r.completed_at > r.accepted_at)
        for s in events.remote_reads:
            assert s.exam_at < s.uploaded_at < s.read_requested_at < day_end
            assert s.reported_at is None or s.reported_at > s.read_requested_at
        for p in events.prescriptions:
            assert day_start <= p.prescribed_at < day_end
            assert (p.pharmacy_credit_code is not None) == p.is_outflow
            assert (p.dispense_id is None) == (p.dispensed_at is None)
            assert p.dispensed_at is None or (
                p.is_outflow and p.prescribed_at < p.dispensed_at < day_end + timedelta(days=1)
            )
        for u in events.uploads:
            assert u.business_date == events.day and day_start <= u.received_at < day_end


def test_referral_receivers_follow_todays_tiers(region: Region, week) -> None:
    directions: dict[str, int] = {}
    for events in week:
        facilities = region.facilities_on(events.day)
        for r in events.referrals:
            sender, receiver = facilities[r.from_facility_code], facilities[r.to_facility_code]
            assert sender.status == receiver.status == "active"
            assert sender.prefecture_code == "522700" and receiver.facility_type != "pharmacy"
            if receiver.facility_type == "external_hospital":
                direction = "out_of_region"
            elif receiver.tier != sender.tier:
                direction = "up" if receiver.tier > sender.tier else "down"
            else:
                direction = "lateral"
            directions[direction] = directions.get(direction, 0) + 1
    assert set(directions) <= {"up", "down", "lateral", "out_of_region"}
    assert min(directions.get("up", 0), directions.get("down", 0)) > 0
    assert 0.4 < directions["down"] / directions["up"] < 1.6  # config: 0.8


def test_remote_reads_are_read_by_the_lead_hospital(region: Region, week) -> None:
    for events in week:
        facilities = region.facilities_on(events.day)
        for s in events.remote_reads:
            requester = facilities[s.requesting_facility_code]
            assert requester.tier <= 2 and requester.facility_type != "pharmacy"
            assert s.reading_facility_code == "QN1001"


def test_prescriptions_flow_only_to_pharmacies(region: Region, week) -> None:
    pharmacies = {v.credit_code for v in region.facility_versions if v.facility_type == "pharmacy"}
    for events in week:
        facilities = region.facilities_on(events.day)
        assert all(facilities[p.hospital_code].tier >= 2 for p in events.prescriptions)
        assert {p.pharmacy_credit_code for p in events.prescriptions if p.is_outflow} <= pharmacies


def test_the_merged_facility_disappears_on_the_merge_day(week) -> None:
    merger = default_facility_changes(CONFIG.start)[2]
    seen = [merger.facility_code in _facility_codes(events) for events in week]
    merge_index = DAYS.index(merger.day)
    assert any(seen[:merge_index])
    assert not any(seen[merge_index:])
