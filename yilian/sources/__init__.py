"""The source systems the pipeline reads: one module each, behind one interface (base.Source).

Adding a source is a new module here, a line in SOURCES, a GX suite per table and a DAG file
that calls `yilian.dags.source_dag`. The order is the load order of a night: the hospital
platform holds the facility master the other sources are checked against.
"""

from __future__ import annotations

from yilian.sources.base import Source, TableSpec
from yilian.sources.hospital import HospitalPlatform
from yilian.sources.imaging import ImagingCloud
from yilian.sources.prescriptions import PrescriptionPlatform

SOURCES: dict[str, Source] = {
    source.name: source for source in (HospitalPlatform(), ImagingCloud(), PrescriptionPlatform())
}


def source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown source {name!r}; expected one of {list(SOURCES)}") from None


def all_tables() -> tuple[TableSpec, ...]:
    return tuple(spec for s in SOURCES.values() for spec in s.tables)
