"""Pseudonymisation: attributes derived first, then a keyed, stable pseudonym; no PII left."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import date

import pandas as pd
import pytest

from yilian.privacy import PseudonymKeyError, pseudonym_key, pseudonymise
from yilian.sources import source
from yilian.sources.frames import typed

VALID_F = "11010519491231002X"  # the GB 11643 standard's example: 17th digit 2 → female
VALID_M = "110105194912310011"
KEY = b"k" * 32
DS = date(2026, 11, 1)


def _frame(ids: list[str | None]) -> pd.DataFrame:
    spec = source("prescriptions").table("prescriptions")
    n = len(ids)
    raw = pd.DataFrame(
        {
            "prescription_id": [f"P{i}" for i in range(n)],
            "hospital_code": ["H"] * n,
            "encounter_id": [None] * n,
            "patient_id_no": ids,
            "patient_name": ["张三"] * n,
            "patient_phone": ["13800000000"] * n,
            "prescribed_at": ["2026-11-01 08:00:00"] * n,
            "main_drug_name": ["氨氯地平片"] * n,
            "drug_count": ["1"] * n,
            "total_amount": ["2.5"] * n,
            "is_outflow": ["0"] * n,
            "pharmacy_credit_code": [None] * n,
            "updated_at": ["2026-11-01 08:00:00"] * n,
            "nickname": ["x"] * n,
        }
    )
    return typed(raw, spec, "test")


def test_derives_attributes_then_replaces_the_id() -> None:
    spec = source("prescriptions").table("prescriptions")
    out = pseudonymise(_frame([VALID_F, VALID_M.lower()]), spec, KEY, DS)
    assert list(out.columns) == spec.column_names
    assert out["patient_sex"].tolist() == ["F", "M"]
    assert out["patient_birth_year"].tolist() == [1949, 1949]
    assert out["patient_county_code"].tolist() == ["110105", "110105"]
    assert out["resident_id_valid"].tolist() == [True, True]
    expected = hmac.new(KEY, VALID_F.encode(), hashlib.sha256).hexdigest()
    assert out["patient_key"][0] == expected
    assert "nickname" not in out.columns  # unknown columns never land


def test_same_person_same_key_whatever_the_case_or_source() -> None:
    lower = pseudonymise(
        _frame([VALID_F.lower()]), source("prescriptions").table("prescriptions"), KEY, DS
    )
    upper = pseudonymise(_frame([VALID_F]), source("prescriptions").table("prescriptions"), KEY, DS)
    assert lower["patient_key"][0] == upper["patient_key"][0]
    other_key = pseudonymise(
        _frame([VALID_F]), source("prescriptions").table("prescriptions"), b"o" * 32, DS
    )
    assert other_key["patient_key"][0] != upper["patient_key"][0]


def test_invalid_ids_are_flagged_never_hashed() -> None:
    bad_check = VALID_F[:-1] + "1"
    bad_month = "110105194913310013"  # right check character, month 13
    other_digits = "11010\u0665" + VALID_F[6:]  # an Arabic-Indic 5: isdigit() says yes
    out = pseudonymise(
        _frame([bad_check, bad_month, None, other_digits]),
        source("prescriptions").table("prescriptions"),
        KEY,
        DS,
    )
    assert out["resident_id_valid"].tolist() == [False, False, False, False]
    assert out["patient_key"].isna().all()
    assert out["patient_sex"].isna().all() and out["patient_county_code"].isna().all()
    assert out["resident_id_plausible"].isna().all()  # resident_id_valid speaks for these


def _valid_id(born: str) -> str:
    from stdnum.cn import ric

    body = f"110105{born}001"
    return body + ric.calc_check_digit(body + "0")


@pytest.mark.parametrize(
    ("born", "max_age", "plausible"),
    [
        ("19491231", 120, True),
        ("20261101", 120, True),  # born on the day of the prescription
        ("20261102", 120, False),  # born the day after it
        ("19061102", 120, True),  # 119 the day before the 120th birthday
        ("19061101", 120, True),  # 120 today
        ("19051101", 120, False),  # 121 today
        ("19051102", 120, True),  # 120 until tomorrow
        ("19491231", 70, False),  # the bound is configurable
    ],
)
def test_valid_ids_that_cannot_be_true_are_flagged_before_the_birth_date_goes(
    born: str, max_age: int, plausible: bool
) -> None:
    """prescribed_at is 2026-11-01: the birth date must be on or before it, and the patient at
    most `max_age` years old then; the ID still passes GB 11643 and gets its pseudonym."""
    spec = source("prescriptions").table("prescriptions")
    out = pseudonymise(_frame([_valid_id(born)]), spec, KEY, DS, max_age)
    assert out["resident_id_valid"].tolist() == [True]
    assert out["resident_id_plausible"].tolist() == [plausible]
    assert out["patient_key"].notna().all()


def test_missing_or_weak_key_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YILIAN_PSEUDONYM_KEY")
    with pytest.raises(PseudonymKeyError, match="no pseudonym key"):
        pseudonym_key()
    monkeypatch.setenv("YILIAN_PSEUDONYM_KEY", "short")
    with pytest.raises(PseudonymKeyError, match="shorter"):
        pseudonym_key()


def test_airflow_connection_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_YILIAN_PSEUDONYM_KEY",
        '{"conn_type": "generic", "password": "from-the-connection-0123"}',
    )
    assert pseudonym_key() == b"from-the-connection-0123"


def test_fast_validity_check_agrees_with_stdnum() -> None:
    """The cached check must say exactly what `stdnum.cn.ric.is_valid` says."""
    from stdnum.cn import ric
    from yilian_sim.activity import generate_day
    from yilian_sim.config import SimulationConfig
    from yilian_sim.faults import corrupt_resident_id
    from yilian_sim.region import build_region

    from tests.region import START
    from yilian.privacy import valid_resident_ids

    config = SimulationConfig(scale=0.02)
    events = generate_day(config, build_region(config), START)
    ids = sorted({e.patient.resident_id for e in events.encounters})[:300]
    samples = ids + [corrupt_resident_id(i, n) for n, i in enumerate(ids)]
    samples += ["000000194912310015", "11010519491231002", "1101051949123100XX", "", "X" * 18]
    # birth dates stdnum refuses or takes (29 Feb of a leap year, of a century, of 2000), a
    # check character in the wrong place; each with every check character
    for body in (
        "11010520000229001",
        "11010519000229001",
        "11010519960229001",
        "11010519970229001",
        "11010519971301001",
        "11010519970100001",
        "11010500000101001",
        "1101051997010100X",
    ):
        samples += [body + c for c in "0123456789X"]
    assert list(valid_resident_ids(samples)) == [ric.is_valid(s) for s in samples]
    assert sum(valid_resident_ids(samples)) > len(ids)
    # stdnum reads full-width digits as ASCII ones; here they are refused: the pseudonym of
    # the text as delivered would make a second person of the same number
    full_width = ids[0][:6] + "".join(chr(ord(c) + 0xFEE0) for c in ids[0][6:10]) + ids[0][10:]
    assert ric.is_valid(full_width) and not valid_resident_ids([full_width]).any()


def test_division_codes_are_read_as_stdnum_reads_them() -> None:
    """Every code of stdnum's GB/T 2260 file, and codes absent from it, in each year around
    the bounds of its spans: assigned exactly when `stdnum.cn.ric.get_birth_place` says so.
    stdnum 2.2 raises KeyError for a code of a known province the file does not list (it finds
    the province and no county): no such division, as the table says."""
    from stdnum.cn import ric
    from stdnum.exceptions import ValidationError

    from yilian.privacy import _division_existed, _divisions

    def stdnum_says(division: int, year: int) -> bool:
        try:
            ric.get_birth_place(f"{division:06d}{year}0101" + "0000")
        except (ValidationError, KeyError):
            return False
        return True

    divisions = _divisions()
    absent = [110199, 119900, 990101, 100000, 469999]
    cases = []
    for division in [*divisions, *absent]:
        bounds = {int(b) for b in re.findall(r"\d{4}", divisions.get(division, ""))}
        for year in {1949, 2026} | {b + d for b in bounds for d in (-1, 0, 1)}:
            cases.append((division, year))
    assert len(divisions) > 3000 and len(cases) > 10_000
    assert [_division_existed(d, y) for d, y in cases] == [stdnum_says(d, y) for d, y in cases]


def test_staging_gives_back_the_extract_and_refuses_a_table_it_lost(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """The encrypted staging returns the frames as extracted, types and nulls included; a
    table the extract counted but the staging no longer holds fails the task naming it."""
    from yilian.privacy import discard_staging, pseudonym_key, stage, unstage
    from yilian.steps import ingest

    monkeypatch.setenv("YILIAN_DATA_DIR", str(tmp_path))
    frame = _frame([_valid_id("19491231"), None])
    stage({"prescriptions": frame}, "prescriptions", DS, pseudonym_key())
    pd.testing.assert_frame_equal(
        unstage("prescriptions", DS, pseudonym_key())["prescriptions"], frame
    )
    extracted = {"rows": {"prescriptions": 2, "dispenses": 0}}
    with pytest.raises(RuntimeError, match="dispenses extracted but not staged; rerun the extract"):
        ingest.pseudonymise_and_land("prescriptions", DS, extracted)
    discard_staging("prescriptions", DS)


@pytest.mark.parametrize("key_length", [16, 32, 63, 64, 65, 128])
def test_pseudonyms_are_hmac_sha256_of_the_id(key_length: int) -> None:
    """The pseudonym is RFC 2104's HMAC-SHA256, as `hmac.new` computes it, for keys shorter
    than, as long as and longer than SHA-256's 64-byte block."""
    from yilian.privacy import _pseudonyms

    key = bytes(range(7, 7 + key_length))
    ids = [f"{110101199001010000 + 37 * i:018d}"[:17] + "0123456789X"[i % 11] for i in range(2000)]
    assert _pseudonyms(key, ids) == [
        hmac.new(key, i.encode(), hashlib.sha256).hexdigest() for i in ids
    ]
