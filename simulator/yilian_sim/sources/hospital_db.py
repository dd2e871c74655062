"""The hospital platform's SQL database (CONTRACTS §2.1), written as it stands at the end of a day.

Any SQLAlchemy URL works; the default is a SQLite file. Rows are upserted by primary key, so
writing a day twice leaves the same database, and a referral that moves on a later day is
updated in place (an upsert never replaces a row by an older state of itself). Every table has
an index on `updated_at`, the column extractors read incrementally.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    tuple_,
)

from yilian_sim.faults import (
    FaultContext,
    corrupt_resident_id,
    implausible_resident_id,
    pick,
    unknown_facility_code,
)
from yilian_sim.model import (
    Encounter,
    Referral,
    Region,
    ResultRecognition,
    UploadLog,
)
from yilian_sim.sources import day_end, day_start, on_day, settle

SOURCE = "hospital"
CHUNK = 20_000
metadata = MetaData()


def _updated_at() -> Column[datetime]:
    return Column("updated_at", DateTime, nullable=False, index=True)


org_alliance = Table(
    "org_alliance",
    metadata,
    Column("alliance_id", String, primary_key=True),
    Column("alliance_name", String, nullable=False),
    Column("alliance_type", String, nullable=False),
    Column("lead_facility_code", String, nullable=False),
    Column("county_code", String),
    _updated_at(),
)
org_facility = Table(
    "org_facility",
    metadata,
    Column("facility_code", String, primary_key=True),
    Column("version_no", Integer, primary_key=True),
    Column("credit_code", String, nullable=False),
    Column("facility_name", String, nullable=False),
    Column("facility_type", String, nullable=False),
    Column("tier", Integer, nullable=False),
    Column("grade", String, nullable=False),
    Column("county_code", String, nullable=False),
    Column("prefecture_code", String, nullable=False),
    Column("alliance_id", String),
    Column("status", String, nullable=False),
    Column("merged_into", String),
    Column("effective_date", Date, nullable=False),
    _updated_at(),
)
org_region_population = Table(
    "org_region_population",
    metadata,
    Column("county_code", String, primary_key=True),
    Column("stat_year", Integer, nullable=False),
    Column("resident_population", Integer, nullable=False),
    _updated_at(),
)
his_encounter = Table(
    "his_encounter",
    metadata,
    Column("encounter_id", String, primary_key=True),
    Column("facility_code", String, nullable=False),
    Column("patient_id_no", String, nullable=False),
    Column("patient_name", String, nullable=False),
    Column("patient_phone", String),
    Column("encounter_type", String, nullable=False),
    Column("visit_at", DateTime, nullable=False),
    Column("discharge_at", DateTime),
    Column("diagnosis_code", String, nullable=False),
    Column("department", String, nullable=False),
    _updated_at(),
)
his_referral = Table(
    "his_referral",
    metadata,
    Column("referral_id", String, primary_key=True),
    Column("patient_id_no", String, nullable=False),
    Column("patient_name", String, nullable=False),
    Column("patient_phone", String),
    Column("from_facility_code", String, nullable=False),
    Column("to_facility_code", String, nullable=False),
    Column("diagnosis_code", String, nullable=False),
    Column("is_green_channel", Integer, nullable=False),
    Column("status", String, nullable=False),
    Column("sent_at", DateTime, nullable=False),
    Column("accepted_at", DateTime),
    Column("completed_at", DateTime),
    Column("rejected_at", DateTime),
    _updated_at(),
)
his_result_recognition = Table(
    "his_result_recognition",
    metadata,
    Column("recognition_id", String, primary_key=True),
    Column("encounter_id", String, nullable=False),
    Column("patient_id_no", String, nullable=False),
    Column("facility_code", String, nullable=False),
    Column("origin_facility_code", String, nullable=False),
    Column("item_code", String, nullable=False),
    Column("item_category", String, nullable=False),
    Column("in_catalogue", Integer, nullable=False),
    Column("recognised", Integer, nullable=False),
    Column("presented_at", DateTime, nullable=False),
    _updated_at(),
)
platform_upload_log = Table(
    "platform_upload_log",
    metadata,
    Column("upload_id", String, primary_key=True),
    Column("facility_code", String, nullable=False),
    Column("business_date", Date, nullable=False),
    Column("feed", String, nullable=False),
    Column("record_count", Integer, nullable=False),
    Column("received_at", DateTime, nullable=False),
    _updated_at(),
)
TABLES = (
    org_alliance,
    org_facility,
    org_region_population,
    his_encounter,
    his_referral,
    his_result_recognition,
    platform_upload_log,
)

Row = dict[str, Any]


@dataclass
class HospitalDay:
    """The events whose rows change on `day` (run.py finds them across earlier days too)."""

    day: date
    region: Region
    start: date  # first simulated day: the platform's initial load of the facility master
    encounters: list[Encounter] = field(default_factory=list)  # visited or discharged today
    referrals: list[Referral] = field(default_factory=list)  # any status transition today
    recognitions: list[ResultRecognition] = field(default_factory=list)
    uploads: list[UploadLog] = field(default_factory=list)  # received today
    stale_referrals: list[Referral] = field(default_factory=list)  # for late_status_update


def default_url(db_path: Path) -> str:
    return f"sqlite:///{db_path}"


def connect(url: str) -> Engine:
    """An engine on `url` with the schema created; SQLite gets WAL so readers never block."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    metadata.create_all(engine)
    return engine


# ---- rows as they stand at the end of the day -------------------------------------------------


def alliance_rows(region: Region, start: date, day: date) -> list[Row]:
    """Alliances exist from the first facility version that names them (the start at the
    earliest); each row carries that day as updated_at."""
    first: dict[str, date] = {}
    for v in region.facility_versions:
        if v.alliance_id is not None:
            first[v.alliance_id] = min(first.get(v.alliance_id, v.effective_date), v.effective_date)
    rows = []
    for a in region.alliances:
        born = max(first.get(a.alliance_id, start), start)
        if born <= day:
            rows.append(
                {
                    "alliance_id": a.alliance_id,
                    "alliance_name": a.name,
                    "alliance_type": a.alliance_type,
                    "lead_facility_code": a.lead_facility_code,
                    "county_code": a.county_code,
                    "updated_at": day_start(born) + timedelta(minutes=5),
                }
            )
    return rows


def population_rows(region: Region, start: date) -> list[Row]:
    """The resident population (常住人口) of every county, as the platform publishes it for the
    statistics year before the simulation starts: the denominators of per-10,000 indicators."""
    return [
        {
            "county_code": county.code,
            "stat_year": start.year - 1,
            "resident_population": county.population,
            "updated_at": day_start(start) + timedelta(minutes=5),
        }
        for county in region.counties
    ]


def facility_rows(region: Region, start: date, day: date) -> list[Row]:
    """Every version in force by `day`; versions older than the simulation arrive with the
    platform's initial load on the start day."""
    return [
        {
            "facility_code": v.facility_code,
            "version_no": v.version_no,
            "credit_code": v.credit_code,
            "facility_name": v.name,
            "facility_type": v.facility_type,
            "tier": v.tier,
            "grade": v.grade,
            "county_code": v.county_code,
            "prefecture_code": v.prefecture_code,
            "alliance_id": v.alliance_id,
            "status": v.status,
            "merged_into": v.merged_into,
            "effective_date": v.effective_date,
            "updated_at": day_start(max(v.effective_date, start)) + timedelta(minutes=5),
        }
        for v in region.facility_versions
        if v.effective_date <= day
    ]


def encounter_row(e: Encounter, day: date) -> Row:
    """An encounter is saved shortly after the visit; an inpatient row is updated on discharge."""
    discharge = e.discharge_at if e.discharge_at and e.discharge_at <= day_end(day) else None
    saved = settle(e.visit_at, e.encounter_id, 5, 90)
    return {
        "encounter_id": e.encounter_id,
        "facility_code": e.facility_code,
        "patient_id_no": e.patient.resident_id,
        "patient_name": e.patient.name,
        "patient_phone": e.patient.phone,
        "encounter_type": e.encounter_type,
        "visit_at": e.visit_at,
        "discharge_at": discharge,
        "diagnosis_code": e.diagnosis_code,
        "department": e.department,
        "updated_at": max(saved, discharge) if discharge else saved,
    }


def referral_transitions(r: Referral) -> list[tuple[datetime, str]]:
    steps = [
        (r.sent_at, "sent"),
        (r.accepted_at, "accepted"),
        (r.completed_at, "completed"),
        (r.rejected_at, "rejected"),
    ]
    return sorted((at, status) for at, status in steps if at is not None)


def referral_row(r: Referral, day: date) -> Row:
    """The referral as the HIS holds it at the end of `day`: later transitions not yet known."""
    end = day_end(day)
    known = [(at, status) for at, status in referral_transitions(r) if at <= end]
    return {
        "referral_id": r.referral_id,
        "patient_id_no": r.patient.resident_id,
        "patient_name": r.patient.name,
        "patient_phone": r.patient.phone,
        "from_facility_code": r.from_facility_code,
        "to_facility_code": r.to_facility_code,
        "diagnosis_code": r.diagnosis_code,
        "is_green_channel": int(r.is_green_channel),
        "status": known[-1][1],
        "sent_at": r.sent_at,
        "accepted_at": r.accepted_at if r.accepted_at and r.accepted_at <= end else None,
        "completed_at": r.completed_at if r.completed_at and r.completed_at <= end else None,
        "rejected_at": r.rejected_at if r.rejected_at and r.rejected_at <= end else None,
        "updated_at": known[-1][0],
    }


def recognition_row(r: ResultRecognition) -> Row:
    return {
        "recognition_id": r.recognition_id,
        "encounter_id": r.encounter_id,
        "patient_id_no": r.patient.resident_id,
        "facility_code": r.facility_code,
        "origin_facility_code": r.origin_facility_code,
        "item_code": r.item_code,
        "item_category": r.item_category,
        "in_catalogue": int(r.in_catalogue),
        "recognised": int(r.recognised),
        "presented_at": r.presented_at,
        "updated_at": settle(r.presented_at, r.recognition_id, 1, 30),
    }


def upload_row(u: UploadLog) -> Row:
    return {
        "upload_id": u.upload_id,
        "facility_code": u.facility_code,
        "business_date": u.business_date,
        "feed": "encounters",
        "record_count": u.record_count,
        "received_at": u.received_at,
        "updated_at": u.received_at,
    }


# ---- faults -----------------------------------------------------------------------------------


def _apply_faults(
    batch: HospitalDay,
    encounters: list[Row],
    referrals: list[Row],
    ctx: FaultContext,
) -> list[Row]:
    """Corrupt only rows that are final today (no later transition would rewrite them), so a
    fault stays exactly as logged. Returns extra rows to insert (duplicates)."""
    day, end = batch.day, day_end(batch.day)
    created_final = [
        row
        for row in encounters
        if row["visit_at"].date() == day
        and (row["encounter_type"] != "inpatient" or row["discharge_at"] is not None)
    ]
    extra: list[Row] = []
    table = his_encounter.name

    if spec := ctx.spec("invalid_resident_ids"):
        hit = pick(created_final, spec.rate, ctx.rng(spec.name, table))
        for i, row in enumerate(hit):
            row["patient_id_no"] = corrupt_resident_id(row["patient_id_no"], i)
        ctx.log.add(spec.name, day, SOURCE, table, (r["encounter_id"] for r in hit))

    if spec := ctx.spec("implausible_resident_ids"):
        hit = pick(created_final, spec.rate, ctx.rng(spec.name, table))
        for i, row in enumerate(hit):
            row["patient_id_no"] = implausible_resident_id(row["patient_id_no"], row["visit_at"], i)
        ctx.log.add(spec.name, day, SOURCE, table, (r["encounter_id"] for r in hit))

    if spec := ctx.spec("unknown_facility_codes"):
        known = {v.facility_code for v in batch.region.facility_versions}
        hit = pick(created_final, spec.rate, ctx.rng(spec.name, table))
        for row in hit:
            row["facility_code"] = unknown_facility_code(row["facility_code"], known)
        ctx.log.add(
            spec.name,
            day,
            SOURCE,
            table,
            (r["encounter_id"] for r in hit),
            codes=sorted({r["facility_code"] for r in hit}),
        )

    if spec := ctx.spec("future_timestamps"):
        ambulatory = [r for r in created_final if r["encounter_type"] != "inpatient"]
        rng = ctx.rng(spec.name, table)
        hit = pick(ambulatory, spec.rate, rng)
        for row in hit:
            row["visit_at"] += timedelta(days=rng.randint(2, 400))
        ctx.log.add(spec.name, day, SOURCE, table, (r["encounter_id"] for r in hit))

    if spec := ctx.spec("inverted_timestamps"):
        rng = ctx.rng(spec.name, table)
        discharged = [r for r in encounters if on_day(r["discharge_at"], day)]
        hit = pick(discharged, spec.rate, rng)
        for row in hit:
            row["discharge_at"] = row["visit_at"] - timedelta(minutes=rng.randint(30, 2880))
        ctx.log.add(spec.name, day, SOURCE, table, (r["encounter_id"] for r in hit))
        rng = ctx.rng(spec.name, his_referral.name)
        final = {
            r.referral_id
            for r in batch.referrals
            if r.accepted_at is not None and referral_transitions(r)[-1][0] <= end
        }
        hit = pick([r for r in referrals if r["referral_id"] in final], spec.rate, rng)
        for row in hit:
            row["accepted_at"] = row["sent_at"] - timedelta(minutes=rng.randint(10, 600))
        ctx.log.add(spec.name, day, SOURCE, his_referral.name, (r["referral_id"] for r in hit))

    if spec := ctx.spec("duplicate_rows"):
        hit = pick(created_final, spec.rate, ctx.rng(spec.name, table))
        extra = [row | {"encounter_id": row["encounter_id"] + "D"} for row in hit]
        ctx.log.add(
            spec.name,
            day,
            SOURCE,
            table,
            (r["encounter_id"] for r in extra),
            duplicate_of={r["encounter_id"] + "D": r["encounter_id"] for r in hit},
        )

    if spec := ctx.spec("late_status_update"):
        rng = ctx.rng(spec.name, his_referral.name)
        stale = sorted(batch.stale_referrals, key=lambda r: r.referral_id)
        hit = rng.sample(stale, min(spec.count, len(stale)))
        for r in sorted(hit, key=lambda r: r.referral_id):
            at = day_start(day) + timedelta(seconds=rng.randint(8 * 3600, 20 * 3600))
            referrals.append(
                referral_row(r, day) | {"status": "completed", "completed_at": at, "updated_at": at}
            )
        ctx.log.add(
            spec.name,
            day,
            SOURCE,
            his_referral.name,
            sorted(r.referral_id for r in hit),
            sent_on=sorted({r.sent_at.date().isoformat() for r in hit}),
        )
    return extra


# ---- writing ----------------------------------------------------------------------------------


def upsert(conn: Connection, table: Table, rows: Sequence[Row]) -> None:
    """Insert or update by primary key, in chunks; a row never goes back to an older state.

    SQLite and PostgreSQL use INSERT .. ON CONFLICT (SQLite through the driver directly: the
    per-row parameter handling of SQLAlchemy would cost more than the database's work); other
    databases delete and re-insert.
    """
    if not rows:
        return
    keys = [c.name for c in table.primary_key.columns]
    dialect = conn.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        key_cols = tuple_(*(table.c[k] for k in keys))
        for i in range(0, len(rows), CHUNK):
            chunk = rows[i : i + CHUNK]
            conn.execute(
                delete(table).where(key_cols.in_([tuple(r[k] for k in keys) for r in chunk]))
            )
            conn.execute(insert(table), chunk)
        return
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    stmt = dialect_insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys},
        where=table.c.updated_at <= stmt.excluded.updated_at,
    )
    if dialect == "postgresql":
        for i in range(0, len(rows), CHUNK):
            conn.execute(stmt, rows[i : i + CHUNK])
        return
    compiled = stmt.compile(dialect=conn.dialect, column_keys=[c.name for c in table.columns])
    order = list(compiled.positiontup or [])
    values = itemgetter(*order)
    stamps = [i for i, c in enumerate(order) if isinstance(table.c[c].type, DateTime | Date)]
    for i in range(0, len(rows), CHUNK):
        batch = []
        for row in rows[i : i + CHUNK]:
            params = list(values(row))
            for j in stamps:
                if params[j] is not None:
                    params[j] = _sqlite_time(params[j])
            batch.append(tuple(params))
        conn.exec_driver_sql(compiled.string, batch)


def _sqlite_time(value: date) -> str:
    """A date or datetime as SQLAlchemy stores it in SQLite (so it reads back the same)."""
    if isinstance(value, datetime):
        return value.isoformat(" ", "microseconds")
    return value.isoformat()


def write_day(engine: Engine, batch: HospitalDay, ctx: FaultContext) -> dict[str, int]:
    """Write the rows that change on `batch.day` in one transaction (a reader never sees half
    a day); returns rows written per table."""
    day = batch.day
    encounters = [encounter_row(e, day) for e in batch.encounters]
    referrals = [referral_row(r, day) for r in batch.referrals]
    encounters += _apply_faults(batch, encounters, referrals, ctx)
    tables: dict[Table, list[Row]] = {
        org_alliance: alliance_rows(batch.region, batch.start, day),
        org_facility: facility_rows(batch.region, batch.start, day),
        org_region_population: population_rows(batch.region, batch.start),
        his_encounter: encounters,
        his_referral: referrals,
        his_result_recognition: [recognition_row(r) for r in batch.recognitions],
        platform_upload_log: [upload_row(u) for u in batch.uploads],
    }
    with engine.begin() as conn:
        for table, rows in tables.items():
            upsert(conn, table, rows)
    return {table.name: len(rows) for table, rows in tables.items()}


def row_counts(engine: Engine, tables: Iterable[Table] = TABLES) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in tables
        }
