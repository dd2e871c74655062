"""What every source system is to the pipeline: its tables, column by column, and one extract.

This is the one schema definition of each source table. The extractors cast to these types,
pseudonymisation keeps only these columns (an allow-list: a column the contract does not name
could carry personal data, so it never lands), the loader creates `raw` from them, and the GX
suites' schema blocks, the dbt sources, docs/CONTRACTS.md and the test fixtures are generated
from or checked against them (`yilian contracts`). Nothing heavy is imported here: the DAG files
read these definitions at parse time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import pandas as pd

#: Column types of the contract, and what they are in DuckDB.
DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
}
#: Source columns that carry personal data: read, used for the patient columns, then dropped.
PII_COLUMNS = ("patient_id_no", "patient_name", "patient_phone")


class ExtractError(RuntimeError):
    """A source delivered something ingestion cannot take as is; the message says what and where."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str

    def __post_init__(self) -> None:
        if self.type not in DUCKDB_TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.type!r}")


#: Oldest plausible patient at an event, in years (each source DAG's param can change it).
MAX_AGE_YEARS = 120

#: Landing columns that replace the personal data of a patient table, in this order.
PATIENT_COLUMNS: tuple[Column, ...] = (
    Column("patient_key", "string", "Keyed HMAC-SHA256 of the upper-cased resident ID."),
    Column("patient_sex", "string", "M or F, from the 17th digit of the resident ID."),
    Column("patient_birth_year", "int", "Birth year, from the resident ID."),
    Column("patient_county_code", "string", "County of residence (GB/T 2260), from the ID."),
    Column("resident_id_valid", "bool", "The resident ID passed GB 11643 (always true in raw)."),
    Column(
        "resident_id_plausible",
        "bool",
        "The ID's birth date is not after the event and within the age bound (true in raw).",
    ),
)


@dataclass(frozen=True)
class Lookup:
    """A check column computed from another table of the same source: for each row, `value` of
    the row of `table` whose key is this row's `via` — from the same batch, else from raw."""

    column: str
    via: str
    table: str
    value: str


@dataclass(frozen=True)
class TableSpec:
    """One source table: where it comes from, its key, its landing columns in order.

    `duplicate_of` names the columns that make two rows the same event: the key for most tables,
    the clinical content for encounters (a HIS re-submits a visit under a new id, so the key
    alone cannot see the copy). `credit_code` names a column holding a GB 32100 credit code.
    `facility_master` marks the table whose `facility_code`s make up the facility master.
    `freshness` is False for reference tables that legitimately do not change every day.
    `snapshot` tables are delivered whole every day (every row updated up to the day's end):
    small reference data that each day's checks need complete, whatever order days load in.
    `patient_event_at` names the timestamp a patient's resident ID is judged plausible at (born
    by then, not older than the bound); without it, the end of the business day.
    """

    source: str
    table: str
    source_table: str
    description: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    duplicate_of: tuple[str, ...] = ()
    credit_code: str | None = None
    facility_master: bool = False
    lookups: tuple[Lookup, ...] = ()
    freshness: bool = True
    loaded_at_field: str | None = None
    snapshot: bool = False
    patient_event_at: str | None = None

    @property
    def raw_name(self) -> str:
        return f"{self.source}__{self.table}"

    @property
    def has_patient(self) -> bool:
        return any(c.name == "patient_key" for c in self.columns)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def types(self) -> dict[str, str]:
        return {c.name: c.type for c in self.columns}

    @property
    def source_columns(self) -> list[str]:
        """Columns the source delivers: the landing columns with the patient block as its ID."""
        patient = {c.name for c in PATIENT_COLUMNS}
        out: list[str] = []
        for c in self.columns:
            if c.name == "patient_key":
                out.append("patient_id_no")
            elif c.name not in patient:
                out.append(c.name)
        return out

    @property
    def delivered_columns(self) -> list[str]:
        """Everything a complete delivery holds, personal data included."""
        extra = ["patient_name", "patient_phone"] if self.has_patient else []
        return self.source_columns + extra

    @property
    def dedup_columns(self) -> tuple[str, ...]:
        return self.duplicate_of or self.key


def columns(*spec: tuple[str, str, str] | str) -> tuple[Column, ...]:
    """`(name, type, description)` triples; `"patient"` expands to the pseudonymised block."""
    out: list[Column] = []
    for item in spec:
        if item == "patient":
            out.extend(PATIENT_COLUMNS)
        else:
            out.append(Column(*item))
    return tuple(out)


@dataclass(frozen=True)
class Option:
    """A per-run knob of a source's extract, offered as an Airflow param of its DAG."""

    default: Any
    type: str
    description: str
    minimum: float | None = None
    maximum: float | None = None


class Source(ABC):
    """One source system: its name, its tables, and how to pull one business day from it.

    A subclass is one module in `yilian.sources`; the DAG, the suites and the loader need nothing
    else from it. `extract` returns every table's rows for the day as typed DataFrames with the
    personal data still inside (pseudonymisation follows); it raises ExtractError naming the
    source, day, table or file when the delivery cannot be taken.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    tables: ClassVar[tuple[TableSpec, ...]]
    options: ClassVar[dict[str, Option]] = {}
    #: Does the source say when a day is complete (so the DAG waits for `delivered`)?
    signals_completion: ClassVar[bool] = False
    #: dbt `loaded_at_field` for source freshness (per table override in TableSpec).
    loaded_at_field: ClassVar[str] = "cast(ds + interval 1 day as timestamp)"

    @abstractmethod
    def extract(self, ds: date, **options: Any) -> dict[str, pd.DataFrame]: ...

    def delivered(self, ds: date) -> bool:
        """Has the source finished delivering `ds`? Sources that do not say are always ready."""
        return True

    @property
    def asset_uri(self) -> str:
        return f"yilian://raw/{self.name}"

    def table(self, name: str) -> TableSpec:
        for spec in self.tables:
            if spec.table == name:
                return spec
        raise KeyError(f"{self.name}__{name}")
