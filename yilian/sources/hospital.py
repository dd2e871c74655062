"""The hospital platform (HIS / 全民健康信息平台): a relational database read over SQLAlchemy.

Connection `yilian_hospital` (its URI: any SQLAlchemy URL, a read-only account); without it,
the simulated region's SQLite file. The watermark is the business day itself: rows with
`updated_at` in `[ds, ds+1)`; the facility master is a snapshot (every version updated before
ds+1), so each day carries the master its checks need, in whatever order days are loaded.
It needs no state, so a day can be re-extracted at any time and gives the same rows as long as
the source has not changed them again (a row changed later belongs to the later day). Tables
are reflected so the bound is compared in the column's own type (SQLAlchemy's DateTime on
SQLite, a real timestamp on PostgreSQL), and rows stream in chunks so a large day never sits
twice in memory.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from yilian.settings import paths
from yilian.sources.base import ExtractError, Option, Source, TableSpec, columns
from yilian.sources.connections import connection

if TYPE_CHECKING:
    import pandas as pd

CONN_ID = "yilian_hospital"
CHUNK_ROWS = 50_000
UPDATED_AT = ("updated_at", "timestamp", "When the platform last changed the row (watermark).")


def database_url() -> str:
    """The platform's SQLAlchemy URL: connection `yilian_hospital`, else the simulator's file."""
    conn = connection(CONN_ID)
    if conn is None:
        return f"sqlite:///{paths().sim_dir / 'hospital.sqlite'}"
    if conn.conn_type == "sqlite":
        return f"sqlite:///{conn.host}"
    return conn.get_uri()


class HospitalPlatform(Source):
    name = "hospital"
    title = "hospital platform (HIS / regional platform, 全民健康信息平台)"
    description = (
        "Loaded by the hospital DAG: one table per source table, every "
        "landing column plus `ds`, the business day whose extract held the row (CONTRACTS.md "
        "§4). A row updated later re-appears in a later ds."
    )
    tables = (
        TableSpec(
            "hospital",
            "alliances",
            "org_alliance",
            "Alliances (医联体/医共体); a change re-appears with a later updated_at.",
            ("alliance_id",),
            columns(
                ("alliance_id", "string", "Alliance identifier."),
                ("alliance_name", "string", "Alliance name."),
                (
                    "alliance_type",
                    "string",
                    "city_medical_group (城市医疗集团) or county_medical_community (县域医共体).",
                ),
                ("lead_facility_code", "string", "The lead (牵头) facility."),
                ("county_code", "string", "County of a county community; null for a city group."),
                UPDATED_AT,
            ),
            freshness=False,
        ),
        TableSpec(
            "hospital",
            "facilities",
            "org_facility",
            "Facility master, one row per (facility_code, version_no): a change inserts a new "
            "version with its effective_date; old versions stay.",
            ("facility_code", "version_no"),
            columns(
                ("facility_code", "string", "Facility code used by every source."),
                ("version_no", "int", "Version of the facility's record, from 1."),
                ("credit_code", "string", "Unified social credit code (GB 32100)."),
                ("facility_name", "string", "Facility name."),
                (
                    "facility_type",
                    "string",
                    "hospital, township_centre, community_centre, village_clinic, pharmacy or "
                    "external_hospital.",
                ),
                ("tier", "int", "Hospital tier 3/2/1, 0 for a village clinic."),
                ("grade", "string", "Grade within the tier (e.g. 三级甲等)."),
                ("county_code", "string", "County where the facility is (GB/T 2260)."),
                ("prefecture_code", "string", "Prefecture of the county."),
                ("alliance_id", "string", "Alliance the facility belongs to in this version."),
                ("status", "string", "active, merged or closed."),
                ("merged_into", "string", "Facility a merged facility was merged into."),
                ("effective_date", "date", "First day this version is in force."),
                UPDATED_AT,
            ),
            credit_code="credit_code",
            facility_master=True,
            freshness=False,
            snapshot=True,
        ),
        TableSpec(
            "hospital",
            "region_populations",
            "org_region_population",
            "Resident population (常住人口) per county of the region, as the platform publishes "
            "it: the denominators of the per-10,000-resident indicators.",
            ("county_code",),
            columns(
                ("county_code", "string", "County (GB/T 2260)."),
                ("stat_year", "int", "Statistics year the figure is for."),
                ("resident_population", "int", "Resident population of the county."),
                UPDATED_AT,
            ),
            freshness=False,
            snapshot=True,
        ),
        TableSpec(
            "hospital",
            "encounters",
            "his_encounter",
            "Visits and admissions (outpatient, emergency, inpatient).",
            ("encounter_id",),
            columns(
                ("encounter_id", "string", "Encounter identifier."),
                ("facility_code", "string", "Facility of the visit or admission."),
                "patient",
                ("encounter_type", "string", "outpatient, emergency or inpatient."),
                ("visit_at", "timestamp", "Visit or admission time."),
                ("discharge_at", "timestamp", "Discharge time (inpatient; null until then)."),
                ("diagnosis_code", "string", "ICD-10 diagnosis code."),
                ("department", "string", "Department (科室)."),
                UPDATED_AT,
            ),
            duplicate_of=(
                "facility_code",
                "patient_key",
                "encounter_type",
                "visit_at",
                "discharge_at",
                "diagnosis_code",
                "department",
            ),
            patient_event_at="visit_at",
        ),
        TableSpec(
            "hospital",
            "referrals",
            "his_referral",
            "Two-way referral orders (双向转诊), updated in place at the source as the status "
            "moves sent → accepted → completed / rejected; every move re-appears in that day's "
            "partition.",
            ("referral_id",),
            columns(
                ("referral_id", "string", "Referral order identifier."),
                "patient",
                ("from_facility_code", "string", "Sending facility."),
                ("to_facility_code", "string", "Receiving facility."),
                ("diagnosis_code", "string", "ICD-10 diagnosis code of the referral."),
                ("is_green_channel", "bool", "Sent through the green channel (绿色通道)."),
                ("status", "string", "sent, accepted, completed or rejected."),
                ("sent_at", "timestamp", "When the order was sent."),
                ("accepted_at", "timestamp", "When the receiver accepted it."),
                ("completed_at", "timestamp", "When the referral was completed."),
                ("rejected_at", "timestamp", "When the receiver rejected it."),
                UPDATED_AT,
            ),
            loaded_at_field="updated_at",
            patient_event_at="sent_at",
        ),
        TableSpec(
            "hospital",
            "result_recognitions",
            "his_result_recognition",
            "Prior results presented by patients and whether they were recognised (互认).",
            ("recognition_id",),
            columns(
                ("recognition_id", "string", "Recognition record identifier."),
                ("encounter_id", "string", "Encounter at which the result was presented."),
                "patient",
                ("facility_code", "string", "Facility where the result was presented."),
                ("origin_facility_code", "string", "Facility that produced the result."),
                ("item_code", "string", "Lab or imaging item code."),
                ("item_category", "string", "lab or imaging."),
                ("in_catalogue", "bool", "The item is in the mutual-recognition catalogue."),
                ("recognised", "bool", "The presented result was recognised."),
                ("presented_at", "timestamp", "When the result was presented."),
                UPDATED_AT,
            ),
            patient_event_at="presented_at",
        ),
        TableSpec(
            "hospital",
            "upload_log",
            "platform_upload_log",
            "One row per facility that delivered its feed for a business_date.",
            ("upload_id",),
            columns(
                ("upload_id", "string", "Upload identifier."),
                ("facility_code", "string", "Facility that delivered."),
                ("business_date", "date", "Business day the delivery covers."),
                ("feed", "string", "Which feed was delivered (encounters)."),
                ("record_count", "int", "Records in the delivery."),
                ("received_at", "timestamp", "When the platform received it."),
                UPDATED_AT,
            ),
        ),
    )

    options = {
        "chunk_rows": Option(
            CHUNK_ROWS, "integer", "Rows fetched from the database per round trip.", minimum=1
        ),
    }

    def extract(self, ds: date, chunk_rows: int = CHUNK_ROWS) -> dict[str, pd.DataFrame]:
        """Every table's rows updated on `ds`, typed, ordered by key, PII still inside."""
        import pandas as pd
        import sqlalchemy as sa

        from yilian.sources.frames import typed

        lo = datetime.combine(ds, time())
        hi = lo + timedelta(days=1)
        engine = sa.create_engine(database_url())
        out: dict[str, pd.DataFrame] = {}
        try:
            with engine.connect() as conn:
                meta = sa.MetaData()
                for spec in self.tables:
                    where = f"hospital {ds}"
                    try:
                        table = sa.Table(spec.source_table, meta, autoload_with=conn)
                    except sa.exc.NoSuchTableError as exc:
                        raise ExtractError(
                            f"{where}: source table {spec.source_table} does not exist at "
                            f"{engine.url!r}"
                        ) from exc
                    window = [table.c.updated_at < hi]
                    if not spec.snapshot:
                        window.append(table.c.updated_at >= lo)
                    # the driver's own values (text on SQLite): `typed` casts whole columns at
                    # once, where SQLAlchemy's result types would convert value by value
                    stmt = (
                        sa.select(*(sa.type_coerce(c, sa.types.NullType()) for c in table.c))
                        .where(*window)
                        .order_by(*(table.c[k] for k in spec.key if k in table.c))
                    )
                    result = conn.execution_options(
                        stream_results=True, yield_per=chunk_rows
                    ).execute(stmt)
                    names = list(result.keys())
                    # each chunk typed as it arrives: a whole day of driver values as Python
                    # objects, then concatenated, peaked at 1.3 GB at scale 50
                    chunks = [
                        typed(
                            pd.DataFrame(list(map(tuple, rows)), columns=names, dtype=object),
                            spec,
                            where,
                        )
                        for rows in result.partitions()
                    ]
                    out[spec.table] = (
                        pd.concat(chunks, ignore_index=True)
                        if chunks  # an empty day keeps the columns the source has: drift shows
                        else typed(
                            pd.DataFrame({c: pd.Series(dtype="object") for c in names}),
                            spec,
                            where,
                        )
                    )
        finally:
            engine.dispose()
        return out
