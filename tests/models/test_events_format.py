"""format_timestamp_us against the implementation it replaced (a date part
cached per day, the clock fields by f-string), kept here verbatim: the
instants in outcome records are a public contract, byte for byte."""

from __future__ import annotations

import random
from datetime import date
from functools import lru_cache

from leadsla.models.events import MAX_TIMESTAMP_US, MIN_TIMESTAMP_US, format_timestamp_us

_DAY_US = 86_400_000_000
_EPOCH_ORDINAL = 719_163


@lru_cache(maxsize=256)
def _date_prefix(days: int) -> str:
    d = date.fromordinal(_EPOCH_ORDINAL + days)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T"


def previous_format(us: int) -> str:
    """format_timestamp_us as it was written before its lookup tables."""
    if not MIN_TIMESTAMP_US <= us <= MAX_TIMESTAMP_US:
        raise ValueError(
            f"cannot format {us} epoch microseconds as RFC 3339: "
            "outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z"
        )
    days, us_of_day = divmod(us, _DAY_US)
    secs, micro = divmod(us_of_day, 1_000_000)
    if micro == 0:
        frac = "Z"
    elif micro % 1000:
        frac = f".{micro:06d}Z"
    else:
        frac = f".{micro // 1000:03d}Z"
    return f"{_date_prefix(days)}{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}{frac}"


def instants(rng: random.Random, n: int) -> list[int]:
    """Whole seconds, whole milliseconds and microseconds, over the whole
    range and around now, and every boundary of a day, minute and second."""
    out = [MIN_TIMESTAMP_US, MAX_TIMESTAMP_US, 0, -1, 1, _DAY_US - 1, _DAY_US, -_DAY_US]
    now = 1_796_000_000_000_000
    for _ in range(n):
        us = rng.choice([rng.randint(MIN_TIMESTAMP_US, MAX_TIMESTAMP_US), now + rng.randint(-10**14, 10**14)])
        out += [us, us - us % 1_000, us - us % 1_000_000, us - us % 60_000_000, us - us % _DAY_US,
                us - us % _DAY_US - 1]
    return [us for us in out if MIN_TIMESTAMP_US <= us <= MAX_TIMESTAMP_US]


def test_format_timestamp_us_writes_what_it_wrote_before() -> None:
    rng = random.Random(20261207)
    for us in instants(rng, 50_000):
        assert format_timestamp_us(us) == previous_format(us), us


def test_the_day_cache_starting_again_changes_nothing() -> None:
    # More distinct days than the cache keeps, then the first ones again.
    days = [d * _DAY_US + 12_345_678 for d in range(-3000, 3000, 3)]
    first = [format_timestamp_us(us) for us in days]
    assert first == [previous_format(us) for us in days]
    assert [format_timestamp_us(us) for us in days] == first
