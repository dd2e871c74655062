"""What happened in the region on one day: visits, referrals, remote reads, results, scripts.

Every event kind draws from its own generator `default_rng([seed, day.toordinal(), stream])`, so
a day is reproducible and one kind can be regenerated without the others' draws shifting. The
encounters are drawn in bulk with numpy (a day at scale 10 is ~180,000 visits); the rarer kinds
derive from them, so a facility that did not deliver its feed has no events at all that day.
Timelines are complete: a referral sent today carries its accepted/completed time, even if that
lies days ahead; the source writers decide what was visible when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zlib import crc32

import numpy as np

from yilian_sim.config import SimulationConfig
from yilian_sim.model import (
    DayEvents,
    Encounter,
    FacilityVersion,
    Person,
    Prescription,
    Referral,
    Region,
    RemoteRead,
    ResultRecognition,
    UploadLog,
)
from yilian_sim.population import resident_columns
from yilian_sim.reference import (
    DIAGNOSES_EMERGENCY,
    DIAGNOSES_INPATIENT,
    DIAGNOSES_INPATIENT_MCH,
    DIAGNOSES_INPATIENT_PRIMARY,
    DIAGNOSES_OUTPATIENT_HOSPITAL,
    DIAGNOSES_OUTPATIENT_MCH,
    DIAGNOSES_OUTPATIENT_PRIMARY,
    DIAGNOSES_OUTPATIENT_TCM,
    DRUGS,
    FEMALE_ONLY_CATEGORIES,
    REPORT_CONCLUSIONS,
    RESULT_ITEMS,
    Dx,
)
from yilian_sim.region import EXTERNAL_HOSPITALS, VISITOR_COUNTIES

STREAM_UPLOADS, STREAM_ENCOUNTERS, STREAM_REFERRALS = 1, 2, 3
STREAM_REMOTE_READS, STREAM_RECOGNITIONS, STREAM_PRESCRIPTIONS = 4, 5, 6

# Visits (seen or not) per resident per day, and the weekly rhythm (Monday first, mean 1).
VISIT_RATE = 0.0196
WEEKDAY_FACTOR = (1.10, 1.05, 1.02, 1.0, 1.0, 0.93, 0.90)
VISITOR_SHARE = 0.015  # of all visits: residents of other prefectures
IN_SCOPE_TYPES = ("hospital", "township_centre", "community_centre", "village_clinic")
PRIMARY_TYPES = ("township_centre", "community_centre", "village_clinic")
DELIVERY_PROBABILITY = {
    "hospital": 0.985,
    "community_centre": 0.96,
    "township_centre": 0.95,
    "village_clinic": 0.91,
}
# Where residents go: share of in-county visits, then per destination group.
IN_COUNTY_RURAL, IN_COUNTY_CITY = 0.865, 0.925
ENCOUNTER_TYPES = ("outpatient", "emergency", "inpatient")
REFERRAL_RATE = 0.004  # referral orders per visit
READ_RATE = {
    "village_clinic": 0.01,
    "township_centre": 0.03,
    "community_centre": 0.03,
    "hospital": 0.035,
}
READ_MODALITIES = {
    "village_clinic": {"ECG": 0.85, "US": 0.15},
    "township_centre": {"DX": 0.45, "US": 0.2, "ECG": 0.3, "CT": 0.05},
    "community_centre": {"DX": 0.45, "US": 0.2, "ECG": 0.3, "CT": 0.05},
    "hospital": {"DX": 0.3, "CT": 0.3, "MR": 0.15, "US": 0.05, "ECG": 0.1, "SM": 0.1},
}
# Minutes: exam after the visit (low, high), upload after the exam (low, high), report turnaround
# (lognormal median, sigma). Medians sit well inside TURNAROUND_TARGET_MINUTES, tails beyond.
READ_TIMING: dict[str, tuple[tuple[float, float], tuple[float, float], float, float]] = {
    "DX": ((5, 60), (1, 8), 13.0, 0.45),
    "CT": ((15, 120), (3, 15), 38.0, 0.5),
    "MR": ((20, 150), (5, 20), 65.0, 0.5),
    "US": ((5, 60), (1, 5), 14.0, 0.5),
    "ECG": ((2, 30), (0.5, 3), 7.0, 0.55),
    "SM": ((60, 300), (5, 30), 1200.0, 0.7),
}
SERIES = {"DX": (1, 2), "CT": (3, 8), "MR": (5, 12), "US": (1, 1), "ECG": (1, 1), "SM": (1, 4)}
RECOGNITION_RATE = 0.022  # prior results presented per visit at tier >= 1
PRESCRIPTION_RATE = 0.6  # outpatient visits at participating hospitals with a prescription
FILL_RATE = 0.88
DAY_SECONDS = 86_400


@dataclass(frozen=True)
class Sites:
    """The facilities active on one day, as parallel arrays (index = facility position)."""

    versions: tuple[FacilityVersion, ...]
    codes: np.ndarray
    types: np.ndarray
    tiers: np.ndarray
    counties: np.ndarray
    in_region: np.ndarray
    weight: np.ndarray  # relative visit volume within its group
    position: dict[str, int]

    def mask(self, *types: str) -> np.ndarray:
        return np.isin(self.types, types)


def _habit(code: str) -> float:
    """A stable per-facility number in [0, 1), so facilities differ in size and habits."""
    return (crc32(code.encode()) % 10_000) / 10_000


def _size(version: FacilityVersion) -> float:
    """Visit volume of a facility relative to others of its group."""
    if version.facility_type == "hospital":
        role = 0.45 if "中医" in version.name else 0.3 if "妇幼" in version.name else 1.0
    else:
        role = 1.0
    return role * float(np.exp(0.8 * _habit(version.facility_code) - 0.4))


def active_sites(region: Region, day: date) -> Sites:
    """The facilities active on `day`; a merged facility's patients go to its successor."""
    current = region.facilities_on(day)
    versions = tuple(
        sorted((v for v in current.values() if v.status == "active"), key=lambda v: v.facility_code)
    )
    position = {v.facility_code: i for i, v in enumerate(versions)}
    weight = np.array([_size(v) for v in versions])
    for v in current.values():
        if v.status == "merged" and v.merged_into in position:
            weight[position[v.merged_into]] += _size(v)
    return Sites(
        versions=versions,
        codes=np.array([v.facility_code for v in versions]),
        types=np.array([v.facility_type for v in versions]),
        tiers=np.array([v.tier for v in versions]),
        counties=np.array([v.county_code for v in versions]),
        in_region=np.array([v.prefecture_code == region.prefecture_code for v in versions]),
        weight=weight,
        position=position,
    )


def _city_lead(region: Region) -> str:
    """The tertiary lead hospital of the city medical group: it reads the remote studies."""
    return next(
        a.lead_facility_code for a in region.alliances if a.alliance_type == "city_medical_group"
    )


def _destinations(region: Region, sites: Sites) -> tuple[list[str], np.ndarray]:
    """Origins (resident counties, then 'visitor') and P(destination facility | origin).

    Rural residents stay in their county for ~86 % of visits (hospitals, township centres,
    village clinics); the rest go mostly to the city's hospitals, some to other counties and
    out-of-region hospitals. City residents use the city's hospitals and community centres.
    """
    city = str(sites.counties[sites.position[_city_lead(region)]])
    hospital = sites.mask("hospital")
    external = sites.mask("external_hospital")

    def group(mask: np.ndarray, share: float) -> np.ndarray:
        w = np.where(mask, sites.weight, 0.0)
        return w * share / w.sum() if w.sum() > 0 else w

    rows = []
    for county in region.counties:
        here = sites.counties == county.code
        in_city = sites.counties == city
        if county.code == city:
            row = (
                group(here & hospital, 0.58 * IN_COUNTY_CITY)
                + group(here & sites.mask("community_centre"), 0.42 * IN_COUNTY_CITY)
                + group(external, 0.6 * (1 - IN_COUNTY_CITY))
                + group(~here & hospital, 0.3 * (1 - IN_COUNTY_CITY))
                + group(~here & sites.mask("township_centre"), 0.1 * (1 - IN_COUNTY_CITY))
            )
        else:
            out = 1 - IN_COUNTY_RURAL
            row = (
                group(here & hospital, 0.30 * IN_COUNTY_RURAL)
                + group(here & sites.mask("township_centre"), 0.42 * IN_COUNTY_RURAL)
                + group(here & sites.mask("village_clinic"), 0.28 * IN_COUNTY_RURAL)
                + group(in_city & hospital, 0.70 * out)
                + group(~here & ~in_city & hospital & sites.in_region, 0.12 * out)
                + group(external, 0.15 * out)
                + group(in_city & sites.mask("community_centre"), 0.03 * out)
            )
        rows.append(row)
    in_city = sites.counties == city
    rows.append(
        group(in_city & hospital, 0.45)
        + group(~in_city & hospital & sites.in_region, 0.35)
        + group(sites.mask("township_centre"), 0.15)
        + group(sites.mask("community_centre"), 0.05)
    )
    matrix = np.array(rows)
    return [c.code for c in region.counties] + ["visitor"], matrix / matrix.sum(axis=1)[:, None]


@dataclass
class _Visits:
    """The day's delivered encounters as columns (positions into `Sites`)."""

    site: np.ndarray
    kind: np.ndarray  # index into ENCOUNTER_TYPES
    start: np.ndarray  # seconds after midnight
    stay: np.ndarray  # inpatient length of stay in seconds, 0 otherwise
    diagnosis: np.ndarray
    department: np.ndarray
    home: np.ndarray  # patient's county code (from the resident ID)
    patients: list[Person]
    ids: list[str]  # encounter IDs, numbered in visit order


def _rng(config: SimulationConfig, day: date, stream: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, day.toordinal(), stream])


def _uploads(config: SimulationConfig, day: date, sites: Sites) -> tuple[np.ndarray, np.ndarray]:
    """Which in-scope facilities deliver their encounter feed today, and when (22:00–23:40)."""
    rng = _rng(config, day, STREAM_UPLOADS)
    in_scope = sites.mask(*IN_SCOPE_TYPES) & sites.in_region
    p = np.array([DELIVERY_PROBABILITY.get(t, 0.0) for t in sites.types])
    delivering = in_scope & (rng.random(len(sites.codes)) < p)
    return delivering, 22 * 3600 + rng.integers(0, 6000, len(sites.codes))


def _upload_logs(
    day: date, sites: Sites, visits: _Visits, delivering: np.ndarray, received: np.ndarray
) -> list[UploadLog]:
    """One log row per delivering facility, received after its last visit of the day."""
    per_site = np.bincount(visits.site, minlength=len(sites.codes))
    last_visit = np.zeros(len(sites.codes), dtype=np.int64)
    np.maximum.at(last_visit, visits.site, visits.start)
    received = np.minimum(np.maximum(received, last_visit + 60), DAY_SECONDS - 1)
    received_at = _times(day, received)
    return [
        UploadLog(
            upload_id=f"UL{_stamp(day)}{sites.codes[s]}",
            facility_code=str(sites.codes[s]),
            business_date=day,
            record_count=int(per_site[s]),
            received_at=received_at[s],
        )
        for s in np.nonzero(delivering)[0].tolist()
    ]


@lru_cache(maxsize=16)
def _table(rows: Dx) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    codes, departments, weights = zip(*rows, strict=True)
    w = np.array(weights)
    return np.array(codes), np.array(departments), w / w.sum()


def _profile(version: FacilityVersion) -> str:
    if version.facility_type in PRIMARY_TYPES:
        return "primary"
    if "中医" in version.name:
        return "tcm"
    return "mch" if "妇幼" in version.name else "hospital"


_OUTPATIENT = {
    "primary": DIAGNOSES_OUTPATIENT_PRIMARY,
    "hospital": DIAGNOSES_OUTPATIENT_HOSPITAL,
    "tcm": DIAGNOSES_OUTPATIENT_TCM,
    "mch": DIAGNOSES_OUTPATIENT_MCH,
}
_INPATIENT = {
    "primary": DIAGNOSES_INPATIENT_PRIMARY,
    "hospital": DIAGNOSES_INPATIENT,
    "tcm": DIAGNOSES_INPATIENT,
    "mch": DIAGNOSES_INPATIENT_MCH,
}
_FOR_MEN = {
    "primary": ("J06.900", "全科"),
    "hospital": ("J06.900", "呼吸内科"),
    "tcm": ("J06.900", "中医内科"),
    "mch": ("J06.900", "儿科"),
}
# (emergency share, inpatient share, median stay in days) by facility type; tertiary hospitals
# admit a smaller share of a much larger outpatient crowd, county hospitals fill the county's beds.
_CARE_MIX = {
    "hospital": (0.085, 0.065, 6.5),
    "township_centre": (0.01, 0.03, 5.0),
    "community_centre": (0.0, 0.003, 5.0),
    "village_clinic": (0.0, 0.0, 1.0),
    "external_hospital": (0.03, 0.12, 10.0),
    "tertiary": (0.085, 0.045, 8.0),
}


def _care_mix(version: FacilityVersion) -> tuple[float, float, float]:
    if version.facility_type == "hospital" and version.tier >= 3:
        return _CARE_MIX["tertiary"]
    return _CARE_MIX.get(version.facility_type, (0.0, 0.0, 1.0))


def _visits(
    config: SimulationConfig, region: Region, day: date, sites: Sites, delivering: np.ndarray
) -> _Visits:
    """Draw the day's visits: who (home county, index) went where, when, with what."""
    rng = _rng(config, day, STREAM_ENCOUNTERS)
    origins, matrix = _destinations(region, sites)
    residents = np.array([c.population for c in region.counties], dtype=float)
    demand = residents * VISIT_RATE * WEEKDAY_FACTOR[day.weekday()]
    demand = np.append(demand, demand.sum() * VISITOR_SHARE / (1 - VISITOR_SHARE))
    seen = delivering | sites.mask("external_hospital")
    counts = rng.poisson(demand[:, None] * matrix * seen[None, :])
    origin_idx, site_idx = np.nonzero(counts)
    n = counts[origin_idx, site_idx]
    origin = np.repeat(origin_idx, n)
    site = np.repeat(site_idx, n)

    populations = np.append(np.array([c.population for c in region.counties]), 300_000)
    home = np.array(origins, dtype="U7")[origin]
    is_visitor = origin == len(origins) - 1
    home[is_visitor] = rng.choice(np.array(VISITOR_COUNTIES), size=int(is_visitor.sum()))
    home = home.astype("U6")
    index = rng.integers(0, populations[origin])

    mix = np.array([_care_mix(v) for v in sites.versions])[site]
    u = rng.random(len(site))
    kind = np.where(u < mix[:, 0], 1, np.where(u < mix[:, 0] + mix[:, 1], 2, 0))
    start = np.where(
        kind == 0,
        np.where(
            rng.random(len(site)) < 0.65,
            np.clip(rng.normal(9.8, 1.1, len(site)), 7.5, 11.9),
            np.clip(rng.normal(15.3, 1.0, len(site)), 14.0, 17.7),
        ),
        np.where(kind == 1, rng.uniform(0.0, 23.8, len(site)), rng.uniform(8.0, 20.0, len(site))),
    )
    start = (start * 3600).astype(np.int64)
    stay_days = rng.lognormal(np.log(mix[:, 2]), 0.5)
    stay = np.where(kind == 2, (np.maximum(stay_days, 1.0) * DAY_SECONDS).astype(np.int64), 0)

    order = np.lexsort((site, start))
    site, kind, start, stay = site[order], kind[order], start[order], stay[order]
    home, index = home[order], index[order]
    ids, names, phones = resident_columns(home, index, config.seed)
    male = ids.astype("U17").view("U1").reshape(len(ids), 17)[:, 16].astype(int) % 2 == 1

    profiles = np.array([_profile(v) for v in sites.versions])[site]
    diagnosis = np.empty(len(site), dtype="U16")
    department = np.empty(len(site), dtype="U8")
    for profile in _OUTPATIENT:
        for k, tables in ((0, _OUTPATIENT), (1, {profile: DIAGNOSES_EMERGENCY}), (2, _INPATIENT)):
            sel = np.nonzero((profiles == profile) & (kind == k))[0]
            if len(sel) == 0:
                continue
            codes, departments, p = _table(tables[profile])
            pick = rng.choice(len(codes), size=len(sel), p=p)
            diagnosis[sel], department[sel] = codes[pick], departments[pick]
    female_only = male & np.isin(diagnosis.astype("U3"), list(FEMALE_ONLY_CATEGORIES))
    for profile, (code, dept) in _FOR_MEN.items():
        swap = female_only & (profiles == profile)
        diagnosis[swap], department[swap] = code, dept
    patients = [
        Person(i, n, p)
        for i, n, p in zip(ids.tolist(), names.tolist(), phones.tolist(), strict=True)
    ]
    prefix = f"E{_stamp(day)}"
    encounter_ids = [f"{prefix}{i:07d}" for i in range(1, len(site) + 1)]
    return _Visits(site, kind, start, stay, diagnosis, department, home, patients, encounter_ids)


def _at(base: datetime, seconds: float) -> datetime:
    return base + timedelta(seconds=int(seconds))


@lru_cache(maxsize=64)
def _stamp(day: date) -> str:
    """yyyymmdd of a day; IDs carry it so they stay unique across days."""
    return f"{day:%Y%m%d}"


def _times(day: date, seconds: np.ndarray) -> list[datetime]:
    """Seconds after the day's midnight as datetimes, in bulk."""
    midnight = np.datetime64(datetime.combine(day, time()), "s")
    return (midnight + np.asarray(seconds, dtype=np.int64).astype("timedelta64[s]")).tolist()


def _referral_senders(sites: Sites, visits: _Visits) -> dict[str, np.ndarray]:
    """Weight of each visit as the origin of a referral in each direction."""
    tier = sites.tiers[visits.site]
    ok = sites.in_region[visits.site] & (sites.types[visits.site] != "external_hospital")
    inpatient = np.where(visits.kind == 2, 3.0, 1.0)
    return {
        "up": np.where(ok & (tier <= 2), 1.0, 0.0),
        "down": np.where(
            ok, np.select([tier == 3, tier == 2, tier == 1], [3.0, 1.5, 0.2], 0.0), 0.0
        )
        * inpatient,
        "lateral": np.where(ok & (tier >= 1) & (tier <= 2), np.where(tier == 2, 3.0, 1.0), 0.0),
        "out_of_region": np.where(ok & (tier >= 2), np.where(tier == 3, 2.0, 1.0), 0.0) * inpatient,
    }


def _receiver_preference(direction: str, sites: Sites, sender: int, home: str) -> np.ndarray:
    """Unnormalised weight of every site as the receiver of one referral (0 = impossible)."""
    tier = sites.tiers[sender]
    same = sites.counties == sites.counties[sender]
    receivable = sites.in_region & ~sites.mask("pharmacy")
    if direction == "up":
        pref = np.where(same, 3.0, np.where(sites.tiers == 3, 1.5, 0.15))
        pref = pref / np.maximum(sites.tiers - tier, 1)
        allowed = receivable & (sites.tiers > tier)
    elif direction == "down":
        pref = np.where(sites.counties == home, 3.0, np.where(same, 0.3, 0.05))
        pref = pref * np.where(sites.tiers == tier - 1, 1.0, 0.5)
        allowed = receivable & (sites.tiers < tier)
    elif direction == "lateral":
        pref = np.where(same, 3.0, 0.3)
        allowed = receivable & (sites.tiers == tier)
    else:
        nearest = EXTERNAL_HOSPITALS[0][0]  # 贵州省人民医院, in the province's capital
        pref = np.where(sites.codes == nearest, 3.0, 1.0)
        allowed = sites.mask("external_hospital")
    capacity = (
        np.select([sites.types == "hospital", sites.types == "village_clinic"], [3.0, 0.1], 1.0)
        * sites.weight
    )
    allowed[sender] = False
    return np.where(allowed, pref * capacity, 0.0)


def _referrals(
    config: SimulationConfig, day: date, sites: Sites, visits: _Visits, region_codes: set[str]
) -> list[Referral]:
    """Referral orders sent today from visits, receivers chosen from today's tiers.

    Direction counts follow `config.down_up_ratio`; ~88 % are accepted hours later (green
    channel within minutes), most accepted ones complete days later, the rest are rejected.
    """
    rng = _rng(config, day, STREAM_REFERRALS)
    base = datetime.combine(day, time())
    ratio = config.down_up_ratio
    shares = np.array([0.88 / (1 + ratio), 0.88 * ratio / (1 + ratio), 0.07, 0.05])
    wanted = rng.multinomial(rng.poisson(REFERRAL_RATE * len(visits.site)), shares)
    used = np.zeros(len(visits.site), dtype=bool)
    drafts: list[dict] = []
    for (direction, weight), n in zip(
        _referral_senders(sites, visits).items(), wanted, strict=True
    ):
        w = np.where(used, 0.0, weight)
        if n == 0 or w.sum() == 0:
            continue
        chosen = rng.choice(
            len(w), size=min(int(n), int((w > 0).sum())), replace=False, p=w / w.sum()
        )
        used[chosen] = True
        for e in np.sort(chosen):
            s = int(visits.site[e])
            home = str(visits.home[e])
            pref = _receiver_preference(
                direction, sites, s, home if home in region_codes else str(sites.counties[s])
            )
            if pref.sum() == 0:
                continue
            r = int(rng.choice(len(pref), p=pref / pref.sum()))
            urgent = visits.kind[e] == 1 or visits.diagnosis[e][:3] in ("I21", "I63", "S06")
            green = bool(
                direction in ("up", "out_of_region") and rng.random() < (0.6 if urgent else 0.01)
            )
            sent = min(int(visits.start[e] + rng.uniform(1200, 10800)), DAY_SECONDS - 1)
            accepted_at = completed_at = rejected_at = None
            if rng.random() < (0.97 if green else 0.88):
                wait = rng.uniform(300, 2400) if green else rng.lognormal(np.log(9000), 0.9)
                accepted_at = _at(base, sent + max(wait, 60))
                if rng.random() < 0.92:
                    days = rng.lognormal(np.log(4.0 if direction == "down" else 2.5), 0.5)
                    completed_at = _at(accepted_at, max(float(days), 0.2) * DAY_SECONDS)
            else:
                rejected_at = _at(base, sent + max(rng.lognormal(np.log(14400), 0.8), 300))
            drafts.append(
                dict(
                    patient=visits.patients[e],
                    from_facility_code=str(sites.codes[s]),
                    to_facility_code=str(sites.codes[r]),
                    diagnosis_code=str(visits.diagnosis[e]),
                    is_green_channel=green,
                    sent_at=_at(base, sent),
                    accepted_at=accepted_at,
                    completed_at=completed_at,
                    rejected_at=rejected_at,
                )
            )
    drafts.sort(key=lambda d: d["sent_at"])
    return [Referral(referral_id=f"RF{_stamp(day)}{i + 1:06d}", **d) for i, d in enumerate(drafts)]


def _remote_reads(
    config: SimulationConfig, day: date, sites: Sites, visits: _Visits, reader: str
) -> list[RemoteRead]:
    """Studies taken at grassroots and county facilities today and read by the lead hospital.

    The whole chain exam → upload → read request stays inside the day (a read belongs to the
    day of its request); the signed report may come minutes (DX, ECG) to days (SM) later.
    """
    rng = _rng(config, day, STREAM_REMOTE_READS)
    rate = np.array([READ_RATE.get(t, 0.0) for t in sites.types])
    rate = np.where(sites.in_region & (sites.tiers <= 2), rate, 0.0)[visits.site]
    chosen = np.nonzero(rng.random(len(rate)) < rate)[0]
    n = len(chosen)
    requester_type = sites.types[visits.site[chosen]]
    modality = np.empty(n, dtype="U3")
    for kind, mix in READ_MODALITIES.items():
        sel = requester_type == kind
        modality[sel] = rng.choice(list(mix), size=int(sel.sum()), p=list(mix.values()))
    timing = [READ_TIMING[m] for m in modality.tolist()]
    low = np.array([[t[0][0], t[1][0], 0.5] for t in timing]).reshape(n, 3)
    high = np.array([[t[0][1], t[1][1], 5.0] for t in timing]).reshape(n, 3)
    steps = rng.uniform(low, high) * 60
    start = visits.start[chosen]
    squeeze = np.minimum(1.0, (DAY_SECONDS - 60 - start) / steps.sum(axis=1))
    steps = np.maximum(np.floor(steps * squeeze[:, None]), 1).astype(np.int64)
    exam, uploaded, requested = (start[:, None] + np.cumsum(steps, axis=1)).T
    median = np.array([t[2] for t in timing])
    sigma = np.array([t[3] for t in timing])
    cap = np.where(modality == "SM", 4320.0, 1440.0)
    minutes = np.clip(rng.lognormal(np.log(median), sigma), 1.0, cap)
    reported = requested + np.maximum(np.round(minutes * 60), 1).astype(np.int64)
    signed = rng.random(n) >= np.where(modality == "SM", 0.03, 0.012)
    series_low = np.array([SERIES[m][0] for m in modality.tolist()], dtype=np.int64)
    series_high = np.array([SERIES[m][1] for m in modality.tolist()], dtype=np.int64)
    series = rng.integers(series_low, series_high + 1)
    pick = rng.integers(0, 3, n)
    exam_at, uploaded_at = _times(day, exam), _times(day, uploaded)
    requested_at, reported_at = _times(day, requested), _times(day, reported)
    stamp = _stamp(day)
    return [
        RemoteRead(
            study_id=f"ST{stamp}{i + 1:06d}",
            patient=visits.patients[e],
            requesting_facility_code=str(sites.codes[visits.site[e]]),
            reading_facility_code=reader,
            modality=m,
            number_of_series=int(series[i]),
            exam_at=exam_at[i],
            uploaded_at=uploaded_at[i],
            read_requested_at=requested_at[i],
            report_id=f"RP{stamp}{i + 1:06d}",
            reported_at=reported_at[i] if signed[i] else None,
            conclusion=REPORT_CONCLUSIONS[m][pick[i]] if signed[i] else "",
        )
        for i, (e, m) in enumerate(zip(chosen.tolist(), modality.tolist(), strict=True))
    ]


def _recognitions(
    config: SimulationConfig, day: date, sites: Sites, visits: _Visits
) -> list[ResultRecognition]:
    """Prior results patients bring to visits at tier >= 1, recognised or repeated."""
    rng = _rng(config, day, STREAM_RECOGNITIONS)
    presenting = sites.in_region & (sites.tiers >= 1) & sites.mask(*IN_SCOPE_TYPES)
    chosen = np.nonzero(
        presenting[visits.site] & (rng.random(len(visits.site)) < RECOGNITION_RATE)
    )[0]
    n = len(chosen)
    site = visits.site[chosen]
    origin_weight = (
        np.select([sites.types == "hospital", sites.types == "external_hospital"], [4.0, 1.0], 0.5)
        * (sites.tiers >= 1)
        * ~sites.mask("pharmacy")
    )
    origin = rng.choice(len(origin_weight), size=n, p=origin_weight / origin_weight.sum())
    while (clash := origin == site).any():  # a result comes from another facility
        origin[clash] = rng.choice(
            len(origin_weight), size=int(clash.sum()), p=origin_weight / origin_weight.sum()
        )
    item_weight = np.array([3.0 if in_cat else 1.0 for _, _, in_cat in RESULT_ITEMS])
    item = rng.choice(len(RESULT_ITEMS), size=n, p=item_weight / item_weight.sum())
    in_catalogue = np.array([RESULT_ITEMS[i][2] for i in item.tolist()], dtype=bool)
    p_recognised = np.where(in_catalogue, np.where(sites.tiers[site] >= 3, 0.72, 0.84), 0.25)
    recognised = rng.random(n) < p_recognised
    presented = np.minimum(visits.start[chosen] + rng.integers(60, 1200, n), DAY_SECONDS - 1)
    presented_at = _times(day, presented)
    stamp = _stamp(day)
    return [
        ResultRecognition(
            recognition_id=f"RC{stamp}{i + 1:06d}",
            encounter_id=visits.ids[e],
            patient=visits.patients[e],
            facility_code=str(sites.codes[site[i]]),
            origin_facility_code=str(sites.codes[origin[i]]),
            item_code=RESULT_ITEMS[it][0],
            item_category=RESULT_ITEMS[it][1],
            in_catalogue=bool(in_catalogue[i]),
            recognised=bool(recognised[i]),
            presented_at=presented_at[i],
        )
        for i, (e, it) in enumerate(zip(chosen.tolist(), item.tolist(), strict=True))
    ]


def _prescriptions(
    config: SimulationConfig,
    day: date,
    sites: Sites,
    visits: _Visits,
    pharmacy_credit: dict[str, str],
) -> list[Prescription]:
    """Outpatient prescriptions of participating hospitals (tier >= 2); a few flow out.

    Each hospital sends 1–5 % of its prescriptions to a retail pharmacy (mostly one in its own
    county), and ~88 % of those are dispensed the same or the next day.
    """
    rng = _rng(config, day, STREAM_PRESCRIPTIONS)
    participating = sites.in_region & sites.mask("hospital") & (sites.tiers >= 2)
    chosen = np.nonzero(
        participating[visits.site]
        & (visits.kind == 0)
        & (rng.random(len(visits.site)) < PRESCRIPTION_RATE)
    )[0]
    n = len(chosen)
    site = visits.site[chosen]
    outflow_share = np.array([0.01 + 0.04 * _habit(c) for c in sites.codes.tolist()])
    outflow = rng.random(n) < outflow_share[site]
    pharmacies = np.nonzero(sites.mask("pharmacy"))[0]
    w = np.where(sites.counties[pharmacies][None, :] == sites.counties[site][:, None], 5.0, 0.5)
    cdf = np.cumsum(w, axis=1) / w.sum(axis=1)[:, None]
    pharmacy = pharmacies[
        np.minimum((rng.random(n)[:, None] > cdf).sum(axis=1), len(pharmacies) - 1)
    ]
    dispensed = outflow & (rng.random(n) < FILL_RATE)
    prescribed = np.minimum(visits.start[chosen] + rng.integers(300, 2400, n), DAY_SECONDS - 1)
    dispense = np.minimum(
        prescribed + rng.lognormal(np.log(5400), 1.0, n).astype(np.int64),
        2 * DAY_SECONDS - 3 * 3600,
    )  # by 21:00 the next day
    drug = rng.integers(0, len(DRUGS), n)
    count = np.minimum(rng.geometric(0.45, n), 6)
    price = np.array([p for _, p in DRUGS])[drug]
    amount = np.round(price * rng.uniform(0.8, 1.6, n) * count**0.7, 2)
    prescribed_at, dispensed_at = _times(day, prescribed), _times(day, dispense)
    hospital = sites.codes[site].tolist()
    credit = [pharmacy_credit[c] for c in sites.codes[pharmacy].tolist()]
    stamp = _stamp(day)
    return [
        Prescription(
            prescription_id=f"RX{stamp}{i + 1:07d}",
            hospital_code=hospital[i],
            encounter_id=visits.ids[e],
            patient=visits.patients[e],
            prescribed_at=prescribed_at[i],
            main_drug_name=DRUGS[drug[i]][0],
            drug_count=int(count[i]),
            total_amount=float(amount[i]),
            is_outflow=bool(out),
            pharmacy_credit_code=credit[i] if out else None,
            dispense_id=f"DP{stamp}{i + 1:07d}" if dispensed[i] else None,
            dispensed_at=dispensed_at[i] if dispensed[i] else None,
        )
        for i, (e, out) in enumerate(zip(chosen.tolist(), outflow.tolist(), strict=True))
    ]


def generate_day(config: SimulationConfig, region: Region, day: date) -> DayEvents:
    """The clean events of `day` in `region`, each with its full future timeline."""
    sites = active_sites(region, day)
    delivering, received = _uploads(config, day, sites)
    visits = _visits(config, region, day, sites, delivering)
    visit_at = _times(day, visits.start)
    discharge = _times(day, visits.start + visits.stay)
    kinds = [ENCOUNTER_TYPES[k] for k in visits.kind.tolist()]
    codes = sites.codes[visits.site].tolist()
    encounters = [
        Encounter(
            encounter_id=visits.ids[i],
            facility_code=codes[i],
            patient=visits.patients[i],
            encounter_type=kinds[i],
            visit_at=visit_at[i],
            discharge_at=discharge[i] if kinds[i] == "inpatient" else None,
            diagnosis_code=dx,
            department=dept,
        )
        for i, (dx, dept) in enumerate(
            zip(visits.diagnosis.tolist(), visits.department.tolist(), strict=True)
        )
    ]
    region_codes = {c.code for c in region.counties}
    reader = _city_lead(region)
    pharmacy_credit = {
        v.facility_code: v.credit_code for v in sites.versions if v.facility_type == "pharmacy"
    }
    return DayEvents(
        day=day,
        encounters=encounters,
        referrals=_referrals(config, day, sites, visits, region_codes),
        result_recognitions=_recognitions(config, day, sites, visits),
        remote_reads=_remote_reads(config, day, sites, visits, reader),
        prescriptions=_prescriptions(config, day, sites, visits, pharmacy_credit),
        uploads=_upload_logs(day, sites, visits, delivering, received),
    )
