"""Residents derived on demand: (county, index, seed) → the same person, everywhere.

No population is ever materialised. A resident's birth date and sequence number come from a
keyed permutation of the index onto the (birth date, sequence) slots of their county, so two
indices of one county never share a resident ID; the birth-date slots per year follow a rough
age pyramid, so the ages look like a Chinese county's. Names and phones come from a hash.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import numpy as np

from yilian_sim.model import Person
from yilian_sim.reference import (
    GIVEN_CHARS_FEMALE,
    GIVEN_CHARS_MALE,
    PHONE_PREFIXES,
    SURNAMES,
)

FIRST_BIRTH_DATE = date(1930, 1, 1)
LAST_BIRTH_DATE = date(2024, 12, 31)
_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_ID_CHECK = np.array(list("10X98765432"))
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic is intended)."""
    z = (x + np.uint64(0x9E3779B97F4A7C15)) & _M64
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _unit(h: np.ndarray) -> np.ndarray:
    """Uniform floats in [0, 1) from the top 53 bits of a hash."""
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _cohort_weight(year: int) -> float:
    """Relative size of a birth cohort still alive today (a rough Chinese age pyramid)."""
    if year < 1950:
        return 0.1 + 0.35 * (year - 1930) / 20
    if year < 1962:
        return 0.6
    if year < 1976:
        return 1.0
    if year < 1991:
        return 0.85
    if year < 2011:
        return 0.65
    return 0.6 - 0.25 * (year - 2011) / 13


@lru_cache(maxsize=1)
def _birth_slots() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per birth day: yyyymmdd, slot capacity (sequence numbers used), cumulative capacity."""
    days = np.arange(
        np.datetime64(FIRST_BIRTH_DATE), np.datetime64(LAST_BIRTH_DATE) + 1, dtype="datetime64[D]"
    )
    years = days.astype("datetime64[Y]").astype(int) + 1970
    weights = {y: _cohort_weight(int(y)) for y in np.unique(years)}
    capacity = np.array([max(2, round(998 * weights[y])) for y in years], dtype=np.int64)
    ymd = np.array([int(str(d).replace("-", "")) for d in days], dtype=np.int64)
    return ymd, capacity, np.cumsum(capacity)


def _permute(values: np.ndarray, keys: np.ndarray, size: int) -> np.ndarray:
    """A keyed pseudo-random permutation of [0, size).

    A 4-round (unbalanced) Feistel network on just enough bits, cycle-walking until the value
    falls inside the range, so it stays a bijection: distinct indices, distinct slots.
    """
    bits = int(size - 1).bit_length()
    out = values.astype(np.uint64)
    pending = np.ones(len(out), dtype=bool)
    while pending.any():
        x, k = out[pending], keys[pending]
        low_bits = bits // 2
        left, right = x >> np.uint64(low_bits), x & np.uint64((1 << low_bits) - 1)
        for round_no in range(4):
            high_bits = bits - low_bits  # width of `left`
            f = _mix(right ^ k ^ np.uint64(round_no + 1)) & np.uint64((1 << high_bits) - 1)
            left, right, low_bits = right, left ^ f, high_bits
        out[pending] = (left << np.uint64(low_bits)) | right
        pending = out >= np.uint64(size)
    return out.astype(np.int64)


def resident_columns(
    county_codes: np.ndarray, indices: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resident IDs, names and phones (numpy string arrays) of many residents at once."""
    county_codes = np.asarray(county_codes, dtype="U6")
    indices = np.asarray(indices, dtype=np.int64)
    ymd, capacity, cumulative = _birth_slots()
    total = int(cumulative[-1])
    codes, inverse = np.unique(county_codes, return_inverse=True)
    county_key = _mix(_mix(codes.astype(np.uint64)) ^ np.uint64(seed & 0xFFFFFFFFFFFF))[inverse]
    position = _permute(indices % total, county_key, total)
    day = np.searchsorted(cumulative, position, side="right")
    sequence = position - (cumulative[day] - capacity[day]) + 1
    body = codes.astype(np.int64)[inverse] * 10**11 + ymd[day] * 1000 + sequence
    digits = body.copy()
    checksum = np.zeros(len(body), dtype=np.int64)
    for weight in _ID_WEIGHTS[::-1]:
        checksum += (digits % 10) * weight
        digits //= 10
    ids = np.char.add(body.astype("U17"), _ID_CHECK[checksum % 11])

    key = _mix(county_key + indices.astype(np.uint64))
    h_name, h_given, h_phone = _mix(key ^ np.uint64(1)), _mix(key ^ np.uint64(2)), _mix(key)
    surnames = np.array([s for s, _ in SURNAMES])
    surname_cdf = np.cumsum([w for _, w in SURNAMES]) / sum(w for _, w in SURNAMES)
    names = surnames[np.searchsorted(surname_cdf, _unit(h_name), side="right")]
    male = sequence % 2 == 1
    pools = [np.array(list(GIVEN_CHARS_FEMALE)), np.array(list(GIVEN_CHARS_MALE))]
    for shift in (0, 20):
        pick = (h_given >> np.uint64(shift)).astype(np.int64) & 0xFFFFF
        chars = np.where(male, pools[1][pick % len(pools[1])], pools[0][pick % len(pools[0])])
        if shift == 0:
            names = np.char.add(names, chars)
        else:
            two_chars = (h_given >> np.uint64(60)) < np.uint64(12)  # ~75 % have two
            names = np.char.add(names, np.where(two_chars, chars, ""))
    prefixes = np.array(PHONE_PREFIXES).astype(np.int64)
    phone = prefixes[(h_phone % np.uint64(len(prefixes))).astype(np.int64)] * 10**8 + (
        (h_phone >> np.uint64(16)) % np.uint64(10**8)
    ).astype(np.int64)
    return ids, names, phone.astype("U11")


def people(county_codes: np.ndarray, indices: np.ndarray, seed: int) -> list[Person]:
    """`person` for many (county, index) pairs at once, in order."""
    ids, names, phones = resident_columns(county_codes, indices, seed)
    return [
        Person(resident_id=i, name=n, phone=p)
        for i, n, p in zip(ids.tolist(), names.tolist(), phones.tolist(), strict=True)
    ]


def person(county_code: str, index: int, seed: int) -> Person:
    """The resident number `index` of `county_code`: same arguments, same person."""
    return people(np.array([county_code]), np.array([index]), seed)[0]
