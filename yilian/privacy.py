"""Replace personal data by a keyed pseudonym, after deriving what the marts need from it.

The warehouse needs to know that two visits are the same person, and that person's sex, birth
year and county of residence (for in-county rates); it needs no name, phone or ID number. So the
resident ID is read once, here: its validity and attributes are derived (GB 11643 via
`stdnum.cn.ric`; sex from the 17th digit, odd = male), then it is replaced by
HMAC-SHA256(key, upper-cased ID). The key is a secret (Airflow connection `yilian_pseudonym_key`,
or env YILIAN_PSEUDONYM_KEY) so a pseudonym cannot be reversed by hashing every possible ID, and
the same key in every source makes the same person the same pseudonym everywhere.
An invalid ID gets no pseudonym (patient_key null, resident_id_valid false): hashing a typo would
invent a person; validation quarantines the row instead. A valid ID can still be impossible for
its record — born after the visit, or older than `max_age_years` (default 120) at it — which only
the full birth date shows, so that is judged here too (`resident_id_plausible`), before the
birth date is thrown away.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import itertools
import os
import re
import shutil
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import stdnum

from yilian.settings import paths
from yilian.sources.base import MAX_AGE_YEARS, PATIENT_COLUMNS, PII_COLUMNS, TableSpec
from yilian.sources.connections import connection

if TYPE_CHECKING:
    from collections.abc import Iterable

    from cryptography.fernet import Fernet

KEY_CONN_ID = "yilian_pseudonym_key"
KEY_ENV = "YILIAN_PSEUDONYM_KEY"
MIN_KEY_LENGTH = 16


class PseudonymKeyError(RuntimeError):
    """No usable pseudonym key: ingestion must stop rather than fall back to a known key."""


def pseudonym_key() -> bytes:
    """The secret key: Airflow connection `yilian_pseudonym_key` (password), else the env var."""
    conn = connection(KEY_CONN_ID)
    secret = (conn.password if conn is not None else None) or os.environ.get(KEY_ENV, "")
    if not secret:
        raise PseudonymKeyError(
            f"no pseudonym key: set the password of Airflow connection {KEY_CONN_ID!r} or "
            f"the environment variable {KEY_ENV}; there is deliberately no default"
        )
    if len(secret) < MIN_KEY_LENGTH:
        raise PseudonymKeyError(
            f"the pseudonym key is shorter than {MIN_KEY_LENGTH} characters; use a random secret"
        )
    return secret.encode()


def key_fingerprint(key: bytes) -> str:
    """A keyed hash of the key: the same key always gives the same fingerprint, and the
    fingerprint tells nothing about the key (the warehouse records it to notice a change)."""
    return hmac.new(key, b"yilian pseudonym key fingerprint v1", hashlib.sha256).hexdigest()


#: the lines of stdnum's `cn/loc.dat` that matter here: a province ("11 province=…"), and
#: under it a county ('  0101 county="name"', or several '[start-end]name' with a bound open)
_LOC_LINE = re.compile(r'^(\d\d) |^  (\d{4}) county="([^"]*)"', re.MULTILINE)
_SPAN = re.compile(r"\[(\d*)-(\d*)\]")


@functools.cache
def _divisions() -> dict[int, str]:
    """Each GB/T 2260 division code in stdnum's own database (`stdnum/cn/loc.dat`), with its
    county entries as written there: the names and the years each was assigned, which
    `stdnum.cn.ric.get_birth_place` checks a birth year against.

    Read here, not through `stdnum.numdb`, because numdb builds its general prefix tree from
    the file's 6,920 lines in every task process (0.04 s, most of a small source's
    pseudonymisation) to answer what this flat table answers in 0.005 s; a test holds the two
    to the same answer for every code in the file.
    """
    divisions: dict[int, str] = {}
    province = ""
    text = (Path(stdnum.__file__).parent / "cn" / "loc.dat").read_text("utf-8")
    for new_province, code, counties in _LOC_LINE.findall(text):
        if new_province:
            province = new_province
        else:
            divisions[int(province + code)] = counties
    return divisions


@functools.cache
def _division_existed(division: int, birth_year: int) -> bool:
    """Was `division` a GB/T 2260 code when someone born in `birth_year` got the number? (A
    county entry without a span of years: always.)"""
    for county in _divisions().get(division, "").split(","):
        span = _SPAN.match(county)
        lo, hi = span.groups() if span else ("", "")
        if county and int(lo or 0) <= birth_year <= int(hi or 9999):
            return True
    return False


#: GB 11643's check character (ISO 7064 MOD 11-2) as `stdnum.cn.ric.calc_check_digit` reads
#: it: the weight of each of the first 17 digits, and the character of (1 − weighted sum) mod 11
_WEIGHTS = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)
_CHECK_CHARACTERS = np.frombuffer(b"0123456789X", dtype=np.uint8)
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def valid_resident_ids(ids: list[str]) -> np.ndarray:
    """GB 11643 validity of each ID, as `stdnum.cn.ric.validate` checks it (length, digits,
    check character, birth date, division code), column-wise: one Python call per ID cost
    more than a third of pseudonymising a day. The division codes are stdnum's (`_divisions`)."""
    text = pd.Series(ids, dtype="string")
    # ASCII digits only: stdnum would read full-width digits as the same number, and the
    # pseudonym of the text as delivered would then make a second person of it
    shaped = text.str.fullmatch(r"[0-9]{17}[0-9X]").fillna(False).to_numpy(dtype=bool)
    valid = np.zeros(len(ids), dtype=bool)
    if not shaped.any():
        return valid
    joined = "".join(itertools.compress(ids, shaped)).encode("ascii")
    chars = np.frombuffer(joined, dtype=np.uint8).reshape(-1, 18)
    digits = chars[:, :17].astype(np.int64) - ord("0")
    checked = chars[:, 17] == _CHECK_CHARACTERS[(1 - digits @ _WEIGHTS) % 11]
    year = digits[:, 6:10] @ np.array([1000, 100, 10, 1])
    month = digits[:, 10:12] @ np.array([10, 1])
    day = digits[:, 12:14] @ np.array([10, 1])
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _MONTH_DAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
    dated = (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    division = digits[:, :6] @ 10 ** np.arange(5, -1, -1)
    pairs = pd.DataFrame({"division": division, "year": year})
    asked = pairs[checked & dated].drop_duplicates()
    asked["existed"] = [_division_existed(d, y) for d, y in asked.itertuples(index=False)]
    placed = pairs.merge(asked, how="left", on=["division", "year"])["existed"]
    placed = placed.astype("boolean").fillna(False).to_numpy(dtype=bool)
    valid[shaped] = checked & dated & placed
    return valid


#: the key padded to SHA-256's block, XORed with RFC 2104's inner and outer pads
_INNER_PAD = bytes(x ^ 0x36 for x in range(256))
_OUTER_PAD = bytes(x ^ 0x5C for x in range(256))


def _pseudonyms(key: bytes, resident_ids: Iterable[str]) -> list[str]:
    """HMAC-SHA256(key, ID) of each ID, hex: RFC 2104 from the two padded-key states, hashed
    once. `hmac.HMAC.copy()` wraps each step in Python, which cost 60 % more on a scale-50
    day's 840,000 IDs (0.93 against 0.58 s); a test holds this to `hmac.new` for keys of
    every length around SHA-256's block."""
    block = hashlib.sha256().block_size
    padded = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
    inner, outer = (
        hashlib.sha256(padded.translate(_INNER_PAD)),
        hashlib.sha256(padded.translate(_OUTER_PAD)),
    )
    out = []
    for resident_id in resident_ids:
        mac = inner.copy()
        mac.update(resident_id.encode())
        digest = outer.copy()
        digest.update(mac.digest())
        out.append(digest.hexdigest())
    return out


_STRING = {pa.large_string(): pd.StringDtype()}


def _strings(values: list[str | None] | np.ndarray) -> pd.api.extensions.ExtensionArray:
    """A pandas string array through Arrow: pandas' own constructor checks every element in
    Python (0.2–0.3 s for a scale-50 day's IDs, against 0.04–0.1 s)."""
    return pa.array(values, pa.large_string()).to_pandas(types_mapper=_STRING.get).array


def _derived(ids: list[str], key: bytes) -> pd.DataFrame:
    """The patient columns of each of `ids` (distinct, upper-cased), row for row, then a last
    row of nulls (a missing ID's); null where an ID is invalid. With the birth date (`_born`)
    the plausibility check needs before it is thrown away.

    The checks and the HMAC run once per distinct ID; the attributes are cut from the IDs
    column-wise.
    """
    valid = np.append(valid_resident_ids(ids), False)
    text = pd.Series(_strings([*ids, None])).where(valid)
    keys = np.full(len(valid), None, dtype=object)
    keys[valid] = _pseudonyms(key, itertools.compress(ids, valid))
    odd = text.str[16].astype("Int64") % 2 == 1
    return pd.DataFrame(
        {
            "patient_key": _strings(keys),
            "patient_sex": odd.map({True: "M", False: "F"}).astype("string").array,
            "patient_birth_year": text.str[6:10].astype("Int64").array,
            "patient_county_code": text.str[:6].array,
            "resident_id_valid": pd.array(valid, dtype="boolean"),
            # a valid ID's birth date is a real date (GB 11643, checked above)
            "_born": pd.to_datetime(text.str[6:14], format="%Y%m%d").array,
        }
    )


def _plausible(
    born: pd.Series, frame: pd.DataFrame, spec: TableSpec, ds: date, max_age_years: int
) -> pd.Series:
    """Born on or before the event's day and at most `max_age_years` old at it (null where the
    ID is invalid: that rule already speaks for the row)."""
    end_of_day = pd.Timestamp(ds) + pd.Timedelta(days=1)
    event = (
        pd.to_datetime(frame[spec.patient_event_at]).fillna(end_of_day)
        if spec.patient_event_at in frame.columns
        else pd.Series(end_of_day, index=frame.index)
    )
    birth = pd.to_datetime(born)
    before_birthday = (event.dt.month * 100 + event.dt.day) < (birth.dt.month * 100 + birth.dt.day)
    age = event.dt.year - birth.dt.year - before_birthday.astype("Int64")
    plausible = (birth <= event.dt.normalize()) & (age <= max_age_years)
    return plausible.astype("boolean").mask(birth.isna())


def pseudonymise(
    frame: pd.DataFrame,
    spec: TableSpec,
    key: bytes,
    ds: date,
    max_age_years: int = MAX_AGE_YEARS,
) -> pd.DataFrame:
    """The landing frame: contract columns only, personal data replaced by PATIENT_COLUMNS.

    Columns the contract does not name are dropped (they could hold personal data under a new
    name); the caller reports them so validation can block on the schema drift.
    """
    out = frame.copy()
    if spec.has_patient and "patient_id_no" in out.columns:
        ids = out["patient_id_no"].astype("string").str.strip().str.upper()
        at, distinct = pd.factorize(ids)  # a missing ID at -1: the derived nulls, last
        derived = _derived(distinct.to_numpy(dtype=object).tolist(), key)
        block = derived.iloc[np.where(at < 0, len(distinct), at)].set_index(out.index)
        block["resident_id_plausible"] = _plausible(block["_born"], out, spec, ds, max_age_years)
        for column in PATIENT_COLUMNS:
            dtype = {"string": "string", "int": "Int64", "bool": "boolean"}[column.type]
            out[column.name] = block[column.name].astype(dtype).array
    out = out.drop(columns=[c for c in PII_COLUMNS if c in out.columns])
    return out[[c for c in spec.column_names if c in out.columns]]


def unknown_columns(frame: pd.DataFrame, spec: TableSpec) -> list[str]:
    """Columns a source delivered that the contract does not know (never landed)."""
    known = set(spec.source_columns) | set(PII_COLUMNS)
    return [c for c in frame.columns if c not in known]


# --- staging: the extract, before pseudonymisation -------------------------------------------


_STAGED = ".arrow.enc"


def _staging_dir(source: str, ds: date) -> Path:
    return paths().data_dir / "staging" / source / ds.isoformat()


def _fernet(key: bytes) -> Fernet:
    from cryptography.fernet import Fernet

    derived = hmac.new(key, b"yilian staging v1", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def stage(frames: dict[str, pd.DataFrame], source: str, ds: date, key: bytes) -> None:
    """Keep the raw extract until pseudonymisation, encrypted with a key derived from the secret:
    between two tasks it still holds names, phones and ID numbers.

    As an Arrow IPC stream (zstd): it is read back once, whole, by the next task, so it needs
    none of Parquet's encoding, which took 3–6 times as long to write and to read.
    """
    directory = _staging_dir(source, ds)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, mode=0o700)
    fernet = _fernet(key)
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    for name, frame in frames.items():
        table = pa.Table.from_pandas(frame, preserve_index=False)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
            writer.write_table(table)
        path = directory / f"{name}{_STAGED}"
        path.write_bytes(fernet.encrypt(sink.getvalue().to_pybytes()))
        path.chmod(0o600)


def unstage(source: str, ds: date, key: bytes) -> dict[str, pd.DataFrame]:
    fernet = _fernet(key)
    return {
        p.name.removesuffix(_STAGED): pa.ipc.open_stream(fernet.decrypt(p.read_bytes()))
        .read_all()
        .to_pandas()
        for p in sorted(_staging_dir(source, ds).glob(f"*{_STAGED}"))
    }


def discard_staging(source: str, ds: date) -> None:
    shutil.rmtree(_staging_dir(source, ds), ignore_errors=True)
