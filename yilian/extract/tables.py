"""The tables ingestion moves, column by column (CONTRACTS §2–§4), in one place.

Extractors coerce to these types, pseudonymisation keeps only these columns (an allow-list: a
column the contract does not name could carry personal data, so it never lands), validation
checks them, and the loader creates the `raw` tables from them. Changing a column means changing
CONTRACTS.md first, then this file.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCES = ("hospital", "imaging", "prescriptions")

#: Landing columns that replace the personal data of a patient table, in this order.
PATIENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("patient_key", "string"),
    ("patient_sex", "string"),
    ("patient_birth_year", "int"),
    ("patient_county_code", "string"),
    ("resident_id_valid", "bool"),
)
#: Source columns that carry personal data: read, used for the patient columns, then dropped.
PII_COLUMNS = ("patient_id_no", "patient_name", "patient_phone")

DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
}


@dataclass(frozen=True)
class TableSpec:
    """One source table: where it comes from, its key, and its landing columns in order.

    `columns` are the landing (= raw, without `ds`) columns; a `patient` marker in them stands
    for PATIENT_COLUMNS. `duplicate_of` names the columns that make two rows the same event:
    the key for most tables, the clinical content for encounters (a HIS re-submits a visit
    under a new id, so the key alone cannot see the copy).
    """

    source: str
    table: str
    source_table: str
    key: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]
    duplicate_of: tuple[str, ...] = ()

    @property
    def raw_name(self) -> str:
        return f"{self.source}__{self.table}"

    @property
    def has_patient(self) -> bool:
        return any(name == "patient_key" for name, _ in self.columns)

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def types(self) -> dict[str, str]:
        return dict(self.columns)

    @property
    def source_columns(self) -> list[str]:
        """Columns the source delivers: the landing columns with the patient block as PII."""
        patient = {name for name, _ in PATIENT_COLUMNS}
        out: list[str] = []
        for name, _ in self.columns:
            if name == "patient_key":
                out.append("patient_id_no")
            elif name not in patient:
                out.append(name)
        return out

    @property
    def dedup_columns(self) -> tuple[str, ...]:
        return self.duplicate_of or self.key


def _cols(*spec: str) -> tuple[tuple[str, str], ...]:
    """`"name:type"` strings, with `"patient"` expanding to the pseudonymised block."""
    out: list[tuple[str, str]] = []
    for item in spec:
        if item == "patient":
            out.extend(PATIENT_COLUMNS)
        else:
            name, _, kind = item.partition(":")
            out.append((name, kind or "string"))
    return tuple(out)


TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "hospital",
        "alliances",
        "org_alliance",
        ("alliance_id",),
        _cols(
            "alliance_id",
            "alliance_name",
            "alliance_type",
            "lead_facility_code",
            "county_code",
            "updated_at:timestamp",
        ),
    ),
    TableSpec(
        "hospital",
        "facilities",
        "org_facility",
        ("facility_code", "version_no"),
        _cols(
            "facility_code",
            "version_no:int",
            "credit_code",
            "facility_name",
            "facility_type",
            "tier:int",
            "grade",
            "county_code",
            "prefecture_code",
            "alliance_id",
            "status",
            "merged_into",
            "effective_date:date",
            "updated_at:timestamp",
        ),
    ),
    TableSpec(
        "hospital",
        "encounters",
        "his_encounter",
        ("encounter_id",),
        _cols(
            "encounter_id",
            "facility_code",
            "patient",
            "encounter_type",
            "visit_at:timestamp",
            "discharge_at:timestamp",
            "diagnosis_code",
            "department",
            "updated_at:timestamp",
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
    ),
    TableSpec(
        "hospital",
        "referrals",
        "his_referral",
        ("referral_id",),
        _cols(
            "referral_id",
            "patient",
            "from_facility_code",
            "to_facility_code",
            "diagnosis_code",
            "is_green_channel:bool",
            "status",
            "sent_at:timestamp",
            "accepted_at:timestamp",
            "completed_at:timestamp",
            "rejected_at:timestamp",
            "updated_at:timestamp",
        ),
    ),
    TableSpec(
        "hospital",
        "result_recognitions",
        "his_result_recognition",
        ("recognition_id",),
        _cols(
            "recognition_id",
            "encounter_id",
            "patient",
            "facility_code",
            "origin_facility_code",
            "item_code",
            "item_category",
            "in_catalogue:bool",
            "recognised:bool",
            "presented_at:timestamp",
            "updated_at:timestamp",
        ),
    ),
    TableSpec(
        "hospital",
        "upload_log",
        "platform_upload_log",
        ("upload_id",),
        _cols(
            "upload_id",
            "facility_code",
            "business_date:date",
            "feed",
            "record_count:int",
            "received_at:timestamp",
            "updated_at:timestamp",
        ),
    ),
    TableSpec(
        "imaging",
        "studies",
        "ImagingStudy",
        ("study_id",),
        _cols(
            "study_id",
            "requesting_facility_code",
            "patient",
            "modality",
            "number_of_series:int",
            "exam_at:timestamp",
            "uploaded_at:timestamp",
            "read_requested_at:timestamp",
            "last_updated:timestamp",
        ),
    ),
    TableSpec(
        "imaging",
        "reports",
        "DiagnosticReport",
        ("report_id",),
        _cols(
            "report_id",
            "study_id",
            "reading_facility_code",
            "status",
            "issued_at:timestamp",
            "exam_at:timestamp",
            "conclusion",
            "last_updated:timestamp",
        ),
    ),
    TableSpec(
        "prescriptions",
        "prescriptions",
        "prescriptions",
        ("prescription_id",),
        _cols(
            "prescription_id",
            "hospital_code",
            "encounter_id",
            "patient",
            "prescribed_at:timestamp",
            "main_drug_name",
            "drug_count:int",
            "total_amount:float",
            "is_outflow:bool",
            "pharmacy_credit_code",
            "updated_at:timestamp",
        ),
    ),
    TableSpec(
        "prescriptions",
        "dispenses",
        "dispenses",
        ("dispense_id",),
        _cols(
            "dispense_id",
            "prescription_id",
            "pharmacy_credit_code",
            "dispensed_at:timestamp",
            "updated_at:timestamp",
        ),
    ),
)


def tables_of(source: str) -> tuple[TableSpec, ...]:
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {SOURCES}")
    return tuple(t for t in TABLES if t.source == source)


def table(source: str, name: str) -> TableSpec:
    for spec in tables_of(source):
        if spec.table == name:
            return spec
    raise KeyError(f"{source}__{name}")
