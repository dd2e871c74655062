"""A tiny hand-built `raw` schema (CONTRACTS.md §4) for the dbt tests, day by day.

The region: the simulator's 黔南州 (522700) counties 都匀 522701 (XF), 贵定 522723 (LS), 荔波
522722 (ZY) and 三都 522732 (GC, no facilities); the short names are only labels. What the
days hold, and what the marts must say, is written beside the rows and in test_dbt_project.py.

- C1X (community centre, XF) moves from tier 1 to tier 2 on D2: a referral T1Z → C1X is lateral
  on D1 and up on D2.
- T2L (township centre, LS) is merged into T1L on D2: in connectivity scope on D1 only.
- V1L does not deliver its D1 feed; T1Z delivers its D2 feed late (in the D3 partition).
- R1 is accepted a day after it was sent (re-appears in D2); R3 is accepted in D3.
- S7's report is signed late (D3 partition); P5 is dispensed in D3.
- T1Z's move into alliance A2 effective D2 is recorded only in D3 (a backdated master change):
  the incremental run must re-derive D2.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb

from yilian.warehouse.raw import ensure_schema

D1, D2, D3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)
XF, LS, ZY, GC = "522701", "522723", "522722", "522732"
PREF = "522700"
PHARMACY_CREDIT = "91522700MA5KPH0010"

#: The order of each table's tuples below; the tables themselves are raw's own DDL
#: (yilian.warehouse.raw.ensure_schema, generated from yilian.sources).
COLUMNS = {
    "hospital__alliances": (
        "alliance_id",
        "alliance_name",
        "alliance_type",
        "lead_facility_code",
        "county_code",
        "updated_at",
        "ds",
    ),
    "hospital__region_populations": (
        "county_code",
        "stat_year",
        "resident_population",
        "updated_at",
        "ds",
    ),
    "hospital__facilities": (
        "facility_code",
        "version_no",
        "credit_code",
        "facility_name",
        "facility_type",
        "tier",
        "grade",
        "county_code",
        "prefecture_code",
        "alliance_id",
        "status",
        "merged_into",
        "effective_date",
        "updated_at",
        "ds",
    ),
    "hospital__encounters": (
        "encounter_id",
        "facility_code",
        "encounter_type",
        "visit_at",
        "discharge_at",
        "diagnosis_code",
        "department",
        "updated_at",
        "patient_key",
        "patient_sex",
        "patient_birth_year",
        "patient_county_code",
        "resident_id_valid",
        "resident_id_plausible",
        "ds",
    ),
    "hospital__referrals": (
        "referral_id",
        "from_facility_code",
        "to_facility_code",
        "diagnosis_code",
        "is_green_channel",
        "status",
        "sent_at",
        "accepted_at",
        "completed_at",
        "rejected_at",
        "updated_at",
        "patient_key",
        "patient_sex",
        "patient_birth_year",
        "patient_county_code",
        "resident_id_valid",
        "resident_id_plausible",
        "ds",
    ),
    "hospital__result_recognitions": (
        "recognition_id",
        "encounter_id",
        "facility_code",
        "origin_facility_code",
        "item_code",
        "item_category",
        "in_catalogue",
        "recognised",
        "presented_at",
        "updated_at",
        "patient_key",
        "patient_sex",
        "patient_birth_year",
        "patient_county_code",
        "resident_id_valid",
        "resident_id_plausible",
        "ds",
    ),
    "hospital__upload_log": (
        "upload_id",
        "facility_code",
        "business_date",
        "feed",
        "record_count",
        "received_at",
        "updated_at",
        "ds",
    ),
    "imaging__studies": (
        "study_id",
        "requesting_facility_code",
        "patient_key",
        "patient_sex",
        "patient_birth_year",
        "patient_county_code",
        "resident_id_valid",
        "resident_id_plausible",
        "modality",
        "number_of_series",
        "exam_at",
        "uploaded_at",
        "read_requested_at",
        "last_updated",
        "ds",
    ),
    "imaging__reports": (
        "report_id",
        "study_id",
        "reading_facility_code",
        "status",
        "issued_at",
        "exam_at",
        "conclusion",
        "last_updated",
        "ds",
    ),
    "prescriptions__prescriptions": (
        "prescription_id",
        "hospital_code",
        "encounter_id",
        "patient_key",
        "patient_sex",
        "patient_birth_year",
        "patient_county_code",
        "resident_id_valid",
        "resident_id_plausible",
        "prescribed_at",
        "main_drug_name",
        "drug_count",
        "total_amount",
        "is_outflow",
        "pharmacy_credit_code",
        "updated_at",
        "ds",
    ),
    "prescriptions__dispenses": (
        "dispense_id",
        "prescription_id",
        "pharmacy_credit_code",
        "dispensed_at",
        "updated_at",
        "ds",
    ),
}


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm)


def patient(county: str, n: int) -> tuple:
    # resident_id_valid and _plausible are always true in raw: validation quarantines the rest
    return (f"pk{county}{n:03d}", "F" if n % 2 else "M", 1960 + n, county, True, True)


def facility(code, ver, ftype, tier, county, alliance, eff, ds, status="active", merged=None):
    grade = {3: "三级甲等", 2: "二级甲等", 1: "一级", 0: "未定级"}[tier]
    credit = PHARMACY_CREDIT if ftype == "pharmacy" else f"12522700MB{code:0>8}"[:18]
    pref = county[:4] + "00"
    return (
        code,
        ver,
        credit,
        f"{code} 名称",
        ftype,
        tier,
        grade,
        county,
        pref,
        alliance,
        status,
        merged,
        eff,
        at(ds, 1),
        ds,
    )


def encounter(eid, fac, etype, visit, county, n, ds, dept="内科", dx="I10.x00x002"):
    discharge = None
    return (eid, fac, etype, visit, discharge, dx, dept, visit, *patient(county, n), ds)


def referral(
    rid,
    frm,
    to,
    status,
    sent,
    ds,
    accepted=None,
    completed=None,
    rejected=None,
    county=LS,
    n=1,
    updated=None,
):
    return (
        rid,
        frm,
        to,
        "J44.900",
        0,
        status,
        sent,
        accepted,
        completed,
        rejected,
        updated or sent,
        *patient(county, n),
        ds,
    )


def study(sid, fac, modality, requested, ds, county=LS, n=1):
    return (
        sid,
        fac,
        *patient(county, n),
        modality,
        1,
        requested,
        requested,
        requested,
        requested,
        ds,
    )


def report(rid, sid, reader, issued, ds, updated=None):
    return (rid, sid, reader, "final", issued, issued, "未见明显异常", updated or issued, ds)


def upload(fac, business_date, ds, late=False):
    received = at(ds, 9) if late else at(business_date, 23)
    return (
        f"U-{fac}-{business_date:%m%d}",
        fac,
        business_date,
        "encounters",
        10,
        received,
        received,
        ds,
    )


def prescription(pid, hosp, prescribed, outflow, ds, county=LS, n=1):
    return (
        pid,
        hosp,
        None,
        *patient(county, n),
        prescribed,
        "氨氯地平片",
        1,
        25.5,
        1 if outflow else 0,
        PHARMACY_CREDIT if outflow else None,
        prescribed,
        ds,
    )


def recognition(rid, fac, presented, in_cat, recog, ds, county=LS, n=1):
    return (
        rid,
        None,
        fac,
        "H3",
        "LAB001",
        "lab",
        in_cat,
        recog,
        presented,
        presented,
        *patient(county, n),
        ds,
    )


DAYS: dict[date, dict[str, list[tuple]]] = {
    D1: {
        "hospital__region_populations": [
            (county, 2025, population, at(D1, 1), D1)
            for county, population in ((XF, 170_000), (LS, 160_000), (ZY, 75_000), (GC, 115_000))
        ],
        "hospital__alliances": [
            ("A1", "桂林市城市医疗集团", "city_medical_group", "H3", None, at(D1, 1), D1),
            ("A2", "龙胜县域医共体", "county_medical_community", "H2L", LS, at(D1, 1), D1),
        ],
        "hospital__facilities": [
            facility("H3", 1, "hospital", 3, XF, "A1", date(2020, 1, 1), D1),
            facility("C1X", 1, "community_centre", 1, XF, "A1", date(2020, 1, 1), D1),
            facility("H2L", 1, "hospital", 2, LS, "A2", date(2020, 1, 1), D1),
            facility("T1L", 1, "township_centre", 1, LS, "A2", date(2020, 1, 1), D1),
            facility("T2L", 1, "township_centre", 1, LS, "A2", date(2020, 1, 1), D1),
            facility("V1L", 1, "village_clinic", 0, LS, "A2", date(2020, 1, 1), D1),
            facility("T1Z", 1, "township_centre", 1, ZY, None, date(2020, 1, 1), D1),
            facility("P1", 1, "pharmacy", 0, XF, None, date(2020, 1, 1), D1),
            facility("EXT", 1, "external_hospital", 3, "430105", None, date(2020, 1, 1), D1),
        ],
        "hospital__encounters": [
            encounter("E1", "H3", "outpatient", at(D1, 9), LS, 1, D1),
            encounter("E2", "H2L", "outpatient", at(D1, 9), LS, 2, D1),
            encounter("E3", "T1L", "outpatient", at(D1, 10), LS, 3, D1),
            encounter("E7", "C1X", "outpatient", at(D1, 10), XF, 7, D1),
            encounter("E9", "T1Z", "outpatient", at(D1, 11), ZY, 9, D1),
        ],
        "hospital__referrals": [
            referral("R1", "T1L", "H2L", "sent", at(D1, 8), D1, n=21),
            referral(
                "R2",
                "T1Z",
                "C1X",
                "accepted",
                at(D1, 9),
                D1,
                accepted=at(D1, 12),
                county=ZY,
                n=22,
                updated=at(D1, 12),
            ),
            referral(
                "R6",
                "V1L",
                "T1L",
                "accepted",
                at(D1, 10),
                D1,
                accepted=at(D1, 11, 30),
                n=26,
                updated=at(D1, 11, 30),
            ),
            referral(
                "R7",
                "H3",
                "C1X",
                "completed",
                at(D1, 10),
                D1,
                accepted=at(D1, 14),
                completed=at(D1, 20),
                county=XF,
                n=27,
                updated=at(D1, 20),
            ),
        ],
        "hospital__result_recognitions": [
            recognition("RR1", "H2L", at(D1, 9), 1, 1, D1),
            recognition("RR2", "H2L", at(D1, 10), 1, 0, D1),
            recognition("RR3", "H2L", at(D1, 11), 0, 1, D1),  # outside the catalogue
            recognition("RR4", "H3", at(D1, 12), 1, 1, D1, county=XF),
        ],
        "hospital__upload_log": [
            upload(f, D1, D1) for f in ("H3", "C1X", "H2L", "T1L", "T2L", "T1Z")
        ],  # V1L did not deliver
        "imaging__studies": [
            study("S1", "T1L", "DX", at(D1, 10), D1),
            study("S2", "T1L", "DX", at(D1, 11), D1),
            study("S3", "V1L", "DX", at(D1, 12), D1),
            study("S4", "T1Z", "DX", at(D1, 9), D1, county=ZY),
            study("S5", "T1L", "CT", at(D1, 14), D1),
            study("S6", "T1L", "SM", at(D1, 8), D1),
        ],
        "imaging__reports": [
            report("RP1", "S1", "H2L", at(D1, 10, 20), D1),
            report("RP2", "S2", "H2L", at(D1, 11, 30), D1),
            report("RP3", "S3", "H2L", at(D1, 12, 10), D1),
            report("RP4", "S4", "H2L", at(D1, 9, 40), D1),
            report("RP5", "S5", "H3", at(D1, 15), D1),
        ],
        "prescriptions__prescriptions": [
            prescription("P1", "H2L", at(D1, 9), True, D1),
            prescription("P2", "H2L", at(D1, 10), True, D1),
            prescription("P3", "H2L", at(D1, 11), False, D1),
            prescription("P4", "H3", at(D1, 11), False, D1, county=XF),
        ],
        "prescriptions__dispenses": [
            ("DP1", "P1", PHARMACY_CREDIT, at(D1, 15), at(D1, 15), D1),
        ],
    },
    D2: {
        "hospital__alliances": [],
        "hospital__facilities": [
            facility("C1X", 2, "community_centre", 2, XF, "A1", D2, D2),
            facility(
                "T2L", 2, "township_centre", 1, LS, "A2", D2, D2, status="merged", merged="T1L"
            ),
        ],
        "hospital__encounters": [
            # E3 re-appears (department corrected): counted once
            encounter("E3", "T1L", "outpatient", at(D1, 10), LS, 3, D2, dept="全科"),
            encounter("E4", "T1L", "emergency", at(D2, 2), LS, 4, D2),
            encounter("E5", "H2L", "inpatient", at(D2, 9), LS, 5, D2),
            encounter("E6", "H3", "inpatient", at(D2, 9), LS, 6, D2),
            encounter("E8", "H3", "outpatient", at(D2, 10), XF, 8, D2),
            encounter("E10", "H3", "outpatient", at(D2, 10), ZY, 10, D2),
            encounter("E11", "V1L", "outpatient", at(D2, 11), LS, 11, D2),
        ],
        "hospital__referrals": [
            # R1 accepted 24 h after it was sent: the D2 version wins
            referral(
                "R1",
                "T1L",
                "H2L",
                "accepted",
                at(D1, 8),
                D2,
                accepted=at(D2, 8),
                n=21,
                updated=at(D2, 8),
            ),
            referral("R3", "T1Z", "C1X", "sent", at(D2, 9), D2, county=ZY, n=23),
            referral(
                "R4",
                "H2L",
                "T1L",
                "accepted",
                at(D2, 10),
                D2,
                accepted=at(D2, 16),
                n=24,
                updated=at(D2, 16),
            ),
            referral(
                "R5",
                "H2L",
                "EXT",
                "rejected",
                at(D2, 11),
                D2,
                rejected=at(D2, 15),
                n=25,
                updated=at(D2, 15),
            ),
        ],
        "hospital__result_recognitions": [
            recognition("RR5", "T1L", at(D2, 9), 1, 1, D2),
        ],
        "hospital__upload_log": [
            upload(f, D2, D2) for f in ("H3", "C1X", "H2L", "T1L", "V1L")
        ],  # T1Z late (D3); T2L merged
        "imaging__studies": [
            study("S7", "T1Z", "DX", at(D2, 9), D2, county=ZY),
            study("S8", "C1X", "DX", at(D2, 10), D2, county=XF),
        ],
        "imaging__reports": [
            report("RP6", "S6", "H3", at(D2, 8), D2),  # pathology: 1,440 min
        ],
        "prescriptions__prescriptions": [
            prescription("P5", "H3", at(D2, 10), True, D2, county=XF),
        ],
        "prescriptions__dispenses": [],
    },
    D3: {
        "hospital__alliances": [],
        "hospital__facilities": [
            # a backdated change: T1Z joined alliance A2 on D2, recorded only on D3
            facility("T1Z", 2, "township_centre", 1, ZY, "A2", D2, D3),
        ],
        "hospital__encounters": [
            encounter("E13", "T1L", "outpatient", at(D3, 9), LS, 13, D3),
            encounter("E14", "H3", "outpatient", at(D3, 9), XF, 14, D3),
        ],
        "hospital__referrals": [
            referral(
                "R3",
                "T1Z",
                "C1X",
                "accepted",
                at(D2, 9),
                D3,
                accepted=at(D3, 9),
                county=ZY,
                n=23,
                updated=at(D3, 9),
            ),
            referral("R8", "H3", "C1X", "sent", at(D3, 10), D3, county=XF, n=28),
        ],
        "hospital__result_recognitions": [],
        "hospital__upload_log": [
            upload("T1Z", D2, D3, late=True),
            *(upload(f, D3, D3) for f in ("H3", "C1X", "H2L", "T1L", "V1L", "T1Z")),
        ],
        "imaging__studies": [
            study("S9", "T1L", "DX", at(D3, 10), D3),
        ],
        "imaging__reports": [
            # S7 signed at 23:50 on D2, but the cloud updated it after midnight: D3 partition
            report("RP7", "S7", "H2L", at(D2, 23, 50), D3, updated=at(D3, 0, 10)),
            report("RP9", "S9", "H2L", at(D3, 10, 15), D3),
        ],
        "prescriptions__prescriptions": [
            prescription("P6", "H2L", at(D3, 9), False, D3),
        ],
        "prescriptions__dispenses": [
            ("DP5", "P5", PHARMACY_CREDIT, at(D3, 9), at(D3, 9), D3),
        ],
    },
}


def load_days(warehouse: Path, days: list[date]) -> None:
    """Create the raw tables if needed and (re)load the given days' partitions, as the loader
    does: delete the ds partition, insert its rows, one transaction per day."""
    con = duckdb.connect(str(warehouse))
    try:
        ensure_schema(con)
        for day in days:
            con.execute("begin")
            for table, rows in DAYS[day].items():
                con.execute(f"delete from raw.{table} where ds = ?", [day])
                if rows:
                    names = ", ".join(COLUMNS[table])
                    placeholders = ", ".join(["?"] * len(COLUMNS[table]))
                    con.executemany(
                        f"insert into raw.{table} ({names}) values ({placeholders})", rows
                    )
            con.execute("commit")
    finally:
        con.close()
