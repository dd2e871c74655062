"""Records shared by the simulator's parts: the region and one day's events.

Events carry real-looking personal data (resident ID, name, phone) on purpose: the source
systems hold it, and the extractors must prove they strip it. Nothing downstream of extraction
may ever see these fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

FACILITY_TYPES = (
    "hospital",
    "township_centre",
    "community_centre",
    "village_clinic",
    "pharmacy",
    "external_hospital",
)
MODALITIES = ("DX", "CT", "MR", "US", "ECG", "SM")


@dataclass(frozen=True)
class County:
    code: str  # GB/T 2260 county-level division code
    name: str
    population: int  # resident population at the configured scale


@dataclass(frozen=True)
class Alliance:
    alliance_id: str
    name: str
    alliance_type: str  # city_medical_group | county_medical_community
    lead_facility_code: str
    county_code: str | None


@dataclass(frozen=True)
class FacilityVersion:
    facility_code: str
    version_no: int
    credit_code: str  # unified social credit code (GB 32100)
    name: str
    facility_type: str  # one of FACILITY_TYPES
    tier: int  # 3/2/1/0
    grade: str  # e.g. 三级甲等, 二级甲等, 未定级
    county_code: str
    prefecture_code: str
    alliance_id: str | None
    status: str  # active | merged | closed
    merged_into: str | None
    effective_date: date


@dataclass(frozen=True)
class Region:
    prefecture_code: str
    prefecture_name: str
    counties: tuple[County, ...]
    alliances: tuple[Alliance, ...]
    facility_versions: tuple[FacilityVersion, ...]  # every version, future changes included

    def facilities_on(self, day: date) -> dict[str, FacilityVersion]:
        """The version of every facility in force on `day` (latest effective_date <= day)."""
        current: dict[str, FacilityVersion] = {}
        in_order = sorted(self.facility_versions, key=lambda v: (v.effective_date, v.version_no))
        for version in in_order:
            if version.effective_date <= day:
                current[version.facility_code] = version
        return current


@dataclass(frozen=True)
class Person:
    resident_id: str  # 18-character GB 11643 number
    name: str
    phone: str

    def __repr__(self) -> str:
        """Masked: events end up in tracebacks, test reports and logs; personal data must not."""
        return f"Person(resident_id='{self.resident_id[:6]}************', name='*', phone='*')"


@dataclass(frozen=True)
class Encounter:
    encounter_id: str
    facility_code: str
    patient: Person
    encounter_type: str  # outpatient | emergency | inpatient
    visit_at: datetime
    discharge_at: datetime | None
    diagnosis_code: str  # ICD-10 国家临床版 2.0
    department: str


@dataclass(frozen=True)
class Referral:
    referral_id: str
    patient: Person
    from_facility_code: str
    to_facility_code: str
    diagnosis_code: str
    is_green_channel: bool
    sent_at: datetime
    accepted_at: datetime | None
    completed_at: datetime | None
    rejected_at: datetime | None


@dataclass(frozen=True)
class ResultRecognition:
    recognition_id: str
    encounter_id: str
    patient: Person
    facility_code: str
    origin_facility_code: str
    item_code: str
    item_category: str  # lab | imaging
    in_catalogue: bool
    recognised: bool
    presented_at: datetime


@dataclass(frozen=True)
class RemoteRead:
    study_id: str
    patient: Person
    requesting_facility_code: str
    reading_facility_code: str
    modality: str  # one of MODALITIES
    number_of_series: int
    exam_at: datetime
    uploaded_at: datetime
    read_requested_at: datetime
    report_id: str
    reported_at: datetime | None  # report issued (signed); None if never signed
    conclusion: str


@dataclass(frozen=True)
class Prescription:
    prescription_id: str
    hospital_code: str
    encounter_id: str
    patient: Person
    prescribed_at: datetime
    main_drug_name: str
    drug_count: int
    total_amount: float
    is_outflow: bool
    pharmacy_credit_code: str | None
    dispense_id: str | None
    dispensed_at: datetime | None


@dataclass(frozen=True)
class UploadLog:
    upload_id: str
    facility_code: str
    business_date: date
    record_count: int
    received_at: datetime


@dataclass
class DayEvents:
    """The clean events that *happened* on one business day, with their full timelines."""

    day: date
    encounters: list[Encounter] = field(default_factory=list)
    referrals: list[Referral] = field(default_factory=list)
    result_recognitions: list[ResultRecognition] = field(default_factory=list)
    remote_reads: list[RemoteRead] = field(default_factory=list)
    prescriptions: list[Prescription] = field(default_factory=list)
    uploads: list[UploadLog] = field(default_factory=list)
