"""The region's layout, its facility history, and residents' identifiers.

Assertions check counts and booleans only: resident IDs, names and phones never reach output.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from stdnum.cn import ric, uscc
from yilian_sim.activity import PRIMARY_TYPES
from yilian_sim.config import FacilityChange, SimulationConfig
from yilian_sim.population import FIRST_BIRTH_DATE, LAST_BIRTH_DATE, people, person
from yilian_sim.reference import REMOTE_IMAGING_MODALITIES, TURNAROUND_TARGET_MINUTES
from yilian_sim.region import (
    PREFECTURE_CODE,
    VISITOR_COUNTIES,
    build_region,
    default_facility_changes,
)

CONFIG = SimulationConfig(seed=11, scale=0.1)


@pytest.fixture(scope="module")
def region():
    return build_region(CONFIG)


def test_every_credit_code_is_valid_unique_and_stable(region) -> None:
    versions = region.facility_versions
    assert sum(not uscc.is_valid(v.credit_code) for v in versions) == 0
    by_facility = {}
    for v in versions:
        by_facility.setdefault(v.facility_code, set()).add(v.credit_code)
    assert all(len(codes) == 1 for codes in by_facility.values())
    assert len({next(iter(c)) for c in by_facility.values()}) == len(by_facility)


def test_layout_of_the_city_and_the_rural_counties(region) -> None:
    day_one = region.facilities_on(CONFIG.start)
    city, *rural = region.counties
    by_county = {
        c.code: Counter(
            (v.facility_type, v.tier) for v in day_one.values() if v.county_code == c.code
        )
        for c in region.counties
    }
    assert by_county[city.code][("hospital", 3)] == 2
    assert by_county[city.code][("community_centre", 1)] == 6
    for county in rural:
        assert by_county[county.code][("hospital", 2)] == 3
        assert 8 <= by_county[county.code][("township_centre", 1)] <= 12
        assert 30 <= by_county[county.code][("village_clinic", 0)] <= 50
        assert by_county[county.code][("pharmacy", 0)] >= 2
    external = [v for v in day_one.values() if v.facility_type == "external_hospital"]
    assert len(external) >= 2
    assert all(v.prefecture_code != region.prefecture_code for v in external)
    assert all(v.county_code not in {c.code for c in region.counties} for v in external)
    assert all(
        v.facility_code.startswith("QN") and len(v.facility_code) == 6 for v in day_one.values()
    )


def test_alliances_and_membership(region) -> None:
    kinds = Counter(a.alliance_type for a in region.alliances)
    assert kinds == {"city_medical_group": 1, "county_medical_community": 3}
    day_one = region.facilities_on(CONFIG.start)
    for v in day_one.values():
        member = v.facility_type not in ("pharmacy", "external_hospital")
        assert (v.alliance_id is not None) == member
    leads = {a.lead_facility_code for a in region.alliances}
    assert all(day_one[code].facility_type == "hospital" for code in leads)


def test_population_scales_and_facility_count_does_not() -> None:
    small, large = build_region(SimulationConfig(scale=0.1)), build_region(SimulationConfig())
    assert len(small.facility_versions) == len(large.facility_versions)
    assert 900_000 <= sum(c.population for c in large.counties) <= 1_000_000
    assert sum(c.population for c in small.counties) == pytest.approx(
        sum(c.population for c in large.counties) * 0.1, rel=0.01
    )


def test_default_changes_take_effect_on_their_days(region) -> None:
    start = CONFIG.start
    promoted, moved, merger = default_facility_changes(start)
    before, after = region.facilities_on(start), region.facilities_on(start + timedelta(days=6))
    assert (before[promoted.facility_code].tier, after[promoted.facility_code].tier) == (1, 2)
    assert after[promoted.facility_code].grade == "二级乙等"
    assert region.facilities_on(promoted.day - timedelta(days=1))[promoted.facility_code].tier == 1
    assert region.facilities_on(promoted.day)[promoted.facility_code].tier == 2
    assert before[moved.facility_code].alliance_id != moved.target
    assert after[moved.facility_code].alliance_id == moved.target
    absorbed = after[merger.facility_code]
    assert before[merger.facility_code].status == "active"
    assert (absorbed.status, absorbed.merged_into) == ("merged", merger.target)
    assert after[merger.target].status == "active"
    for change in (promoted, moved, merger):
        versions = sorted(
            v.version_no
            for v in region.facility_versions
            if v.facility_code == change.facility_code
        )
        assert versions == [1, 2]
        newest = next(
            v
            for v in region.facility_versions
            if v.facility_code == change.facility_code and v.version_no == 2
        )
        assert newest.effective_date == change.day


def test_configured_changes_replace_the_default_plan() -> None:
    day = date(2026, 11, 10)
    config = SimulationConfig(
        facility_changes=(
            FacilityChange(day, "tier", "QN3101", tier=2, grade="二级乙等"),
            FacilityChange(day + timedelta(days=1), "tier", "QN3101", tier=1, grade="一级甲等"),
        )
    )
    region = build_region(config)
    assert [v.version_no for v in region.facility_versions if v.version_no > 1] == [2, 3]
    assert region.facilities_on(day)["QN3101"].tier == 2
    assert region.facilities_on(day + timedelta(days=1))["QN3101"].tier == 1
    assert len(build_region(SimulationConfig(facility_changes=())).facility_versions) == len(
        [v for v in region.facility_versions if v.version_no == 1]
    )
    with pytest.raises(ValueError, match="unknown facility"):
        build_region(SimulationConfig(facility_changes=(FacilityChange(day, "tier", "XX0000"),)))
    with pytest.raises(ValueError, match="kind must be"):
        build_region(SimulationConfig(facility_changes=(FacilityChange(day, "close", "QN3101"),)))


@pytest.mark.parametrize("county", ["522701", "522723", "522722", "522732", *VISITOR_COUNTIES])
def test_resident_ids_are_valid_and_consistent(county: str) -> None:
    residents = people(np.array([county] * 3000), np.arange(3000), seed=5)
    ids = [p.resident_id for p in residents]
    invalid = sum(not ric.is_valid(i) for i in ids)
    wrong_county = sum(i[:6] != county for i in ids)
    births_out_of_range = sum(
        not FIRST_BIRTH_DATE <= ric.get_birth_date(i) <= LAST_BIRTH_DATE for i in ids
    )
    distinct = len(set(ids))
    male_share = sum(int(i[16]) % 2 for i in ids) / 3000
    bad_phones = sum(
        not (len(p.phone) == 11 and p.phone.isdigit() and p.phone[0] == "1") for p in residents
    )
    bad_names = sum(not 2 <= len(p.name) <= 4 for p in residents)
    assert (invalid, wrong_county, births_out_of_range, bad_phones, bad_names) == (0, 0, 0, 0, 0)
    assert distinct == 3000
    assert 0.45 < male_share < 0.55


def test_a_resident_is_the_same_person_everywhere() -> None:
    same = person("522723", 1234, seed=5) == person("522723", 1234, seed=5)
    assert same
    assert person("522723", 1234, seed=5) == people(np.array(["522723"]), np.array([1234]), 5)[0]
    other_seed = person("522723", 1234, seed=6) != person("522723", 1234, seed=5)
    assert other_seed


def test_indices_of_a_county_never_share_an_id() -> None:
    residents = people(np.array(["522701"] * 200_000), np.arange(200_000), seed=3)
    distinct = len({p.resident_id for p in residents})
    assert distinct == 200_000


def test_ages_look_like_a_population() -> None:
    residents = people(np.array(["522732"] * 20_000), np.arange(20_000), 1)
    years = np.array([int(p.resident_id[6:10]) for p in residents])
    very_old = float(np.mean(years < 1945))
    middle = float(np.mean((years >= 1962) & (years < 1991)))
    assert 0.02 < very_old < 0.12  # the very old are few
    assert 0.25 < middle < 0.5  # the large middle cohorts


SEEDS = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds"


def test_dbt_seeds_agree_with_the_simulator() -> None:
    """The warehouse's reference data must describe the region the simulator generates."""
    modalities = pd.read_csv(SEEDS / "ref_modalities.csv").set_index("modality_code")
    assert modalities["turnaround_target_minutes"].to_dict() == TURNAROUND_TARGET_MINUTES
    imaging = set(modalities.index[modalities["counts_as_remote_imaging"]])
    assert imaging == REMOTE_IMAGING_MODALITIES
    types = pd.read_csv(SEEDS / "ref_facility_types.csv").set_index("facility_type")
    assert set(types.index[types["is_primary_care"]]) == set(PRIMARY_TYPES)
    regions = pd.read_csv(
        SEEDS / "ref_regions.csv", dtype={"county_code": str, "prefecture_code": str}
    )
    ours = regions[regions["prefecture_code"] == PREFECTURE_CODE]
    seeded = dict(zip(ours["county_code"], ours["county_name"], strict=True))
    simulated = {c.code: c.name for c in build_region(SimulationConfig()).counties}
    assert seeded == simulated  # populations are not seeded: the hospital platform sends them
    project = (SEEDS.parent / "dbt_project.yml").read_text(encoding="utf-8")
    assert f'region_prefecture_code: "{PREFECTURE_CODE}"' in project
