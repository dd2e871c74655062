"""Row faults meet their designed outcome: each touched record is quarantined with its rule,
nothing else is, late updates load on the day they happened, and counts reconcile.

One simulated region carries every row fault on the same business day; the three sources run
the same four steps the DAG tasks run (in-process; the DAG wiring is tested in tests/dags).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from yilian_sim.config import FaultSpec

from tests.ingestion.warehouse import query, reconciled
from tests.region import START, Region
from yilian.steps import ingest

FAULT_DAY = START + timedelta(days=9)
FAULTS = (
    FaultSpec("duplicate_rows", day=FAULT_DAY, rate=0.02),
    FaultSpec("invalid_resident_ids", day=FAULT_DAY, rate=0.03),
    FaultSpec("invalid_credit_codes", day=FAULT_DAY, rate=0.1),
    FaultSpec("unknown_facility_codes", day=FAULT_DAY, rate=0.03),
    FaultSpec("future_timestamps", day=FAULT_DAY, rate=0.02),
    FaultSpec("inverted_timestamps", day=FAULT_DAY, rate=0.3),
    FaultSpec("late_status_update", day=FAULT_DAY, count=2),
)
TABLES = {
    "his_encounter": "encounters",
    "his_referral": "referrals",
    "ImagingStudy": "studies",
    "DiagnosticReport": "reports",
    "prescriptions": "prescriptions",
}
KEYS = {
    "encounters": "encounter_id",
    "referrals": "referral_id",
    "studies": "study_id",
    "reports": "report_id",
    "prescriptions": "prescription_id",
}
CASES = [
    ("duplicate_rows", "hospital", "his_encounter", {"not_a_duplicate"}),
    ("duplicate_rows", "prescriptions", "prescriptions", {"not_a_duplicate"}),
    ("invalid_resident_ids", "hospital", "his_encounter", {"resident_id_valid"}),
    ("invalid_resident_ids", "imaging", "ImagingStudy", {"resident_id_valid"}),
    ("invalid_resident_ids", "prescriptions", "prescriptions", {"resident_id_valid"}),
    ("invalid_credit_codes", "prescriptions", "prescriptions", {"credit_code_valid"}),
    ("unknown_facility_codes", "hospital", "his_encounter", {"facility_code_known"}),
    ("unknown_facility_codes", "imaging", "ImagingStudy", {"requesting_facility_code_known"}),
    ("future_timestamps", "hospital", "his_encounter", {"visit_at_not_future"}),
    ("inverted_timestamps", "hospital", "his_encounter", {"discharge_after_visit"}),
    ("inverted_timestamps", "hospital", "his_referral", {"accepted_after_sent"}),
    (
        "inverted_timestamps",
        "imaging",
        "DiagnosticReport",
        {"issued_after_exam", "issued_after_read_requested"},
    ),
]


@pytest.fixture(scope="module")
def faulty(module_region: Region, module_imaging_api):
    """The region with every row fault on FAULT_DAY, ingested; returns the fault log."""
    module_region.scale = 0.03
    module_region.faults = FAULTS
    result = module_region.simulate(10)
    ingest.run_day("hospital", START, "test-master")
    for source in ("hospital", "imaging", "prescriptions"):
        # Many faults at once push some tables past the default 5 %; the rule is tested apart.
        ingest.run_day(source, FAULT_DAY, f"test-{source}", max_bad_row_share=0.3)
    return result.faults


def _quarantined(source: str, table: str):
    return query(
        "select record_key, rule, reason, record from quarantine.rejected_rows "
        "where source = ? and table_name = ? and ds = ?",
        [source, table, FAULT_DAY],
    )


@pytest.mark.parametrize(
    ("fault", "source", "fault_table", "rules"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES]
)
def test_touched_rows_are_quarantined_with_their_rule(
    faulty, fault: str, source: str, fault_table: str, rules: set[str]
) -> None:
    touched = faulty.keys(source, fault_table, fault)
    assert touched, "the fault hit no rows at this scale; raise its rate"
    table = TABLES[fault_table]
    quarantined = _quarantined(source, table)
    assert touched <= set(quarantined.record_key)
    hit_by = Counter(
        k for f in {h.fault for h in faulty.hits} for k in faulty.keys(source, fault_table, f)
    )
    only_this = quarantined[quarantined.record_key.isin({k for k in touched if hit_by[k] == 1})]
    assert set(only_this.rule) <= rules, only_this.rule.unique()
    assert quarantined.reason.str.len().gt(0).all()
    if not (fault == "duplicate_rows" and source == "prescriptions"):  # key shared by the copy
        loaded = query(
            f"select {KEYS[table]} k from raw.{source}__{table} where ds = ?", [FAULT_DAY]
        )
        assert not set(loaded.k) & touched


def test_nothing_else_is_quarantined(faulty) -> None:
    rows = query(
        "select source, table_name, record_key from quarantine.rejected_rows where ds = ?",
        [FAULT_DAY],
    )
    for (source, table), group in rows.groupby(["source", "table_name"]):
        fault_tables = [t for t, name in TABLES.items() if name == table]
        touched = {
            k
            for t in fault_tables
            for h in faulty.hits
            if h.source == source and h.table == t
            for k in h.keys
        }
        assert set(group.record_key) <= touched, f"{source}.{table}: untouched rows quarantined"


def test_quarantined_records_are_pseudonymised(faulty) -> None:
    records = query("select record from quarantine.rejected_rows").record
    assert records.str.contains('"patient_key"').any()
    assert not records.str.contains("patient_id_no|patient_name|patient_phone").any()


def test_late_status_update_loads_on_the_day_it_happened(faulty) -> None:
    late = faulty.keys("hospital", "his_referral", "late_status_update")
    assert late
    rows = query(
        "select referral_id, status, sent_at from raw.hospital__referrals where ds = ?", [FAULT_DAY]
    )
    rows = rows[rows.referral_id.isin(late)]
    assert set(rows.referral_id) == late
    assert (rows.status == "completed").all() and (rows.sent_at.dt.date < FAULT_DAY).all()


def test_counts_reconcile(faulty) -> None:
    audit = reconciled(FAULT_DAY)
    assert set(audit.source) == {"hospital", "imaging", "prescriptions"}
    assert (audit.outcome == "loaded").all()
    assert (audit.rows_extracted == audit.rows_loaded + audit.rows_quarantined).all()
    assert (audit.rows_loaded == audit.raw_rows).all()
    assert (audit.rows_quarantined == audit.quarantine_rows).all()
    assert audit.rows_quarantined.sum() > 0
    assert audit.data_docs_path.map(lambda p: p.endswith(".html")).all()
