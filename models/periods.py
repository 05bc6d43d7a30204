"""Calendar periods for delivery targets and accountability (contract §7, §9):
a month (the default), an ISO week or a quarter, in a time zone. Instants are
epoch microseconds (UTC); a period is the half-open interval [start, end) of
local midnights, so a DST change makes a day 23 or 25 hours long."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

MONTH, WEEK, QUARTER = "month", "week", "quarter"
KINDS = (MONTH, WEEK, QUARTER)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Period:
    """One period: ``label`` (``2026-11``, ``2026-W48``, ``2026-Q4``), its
    local first day, its bounds in epoch µs and its number of days."""

    kind: str
    label: str
    first_day: date
    start_us: int
    end_us: int
    days: int

    def day_of(self, t_us: int, zone: str) -> int:
        """The day of the period holding ``t_us``, 1 on its first day.
        Raises ValueError for an instant outside the period."""
        if not self.start_us <= t_us < self.end_us:
            raise ValueError(f"{t_us} is outside period {self.label}")
        return (_local_date(t_us, zone) - self.first_day).days + 1

    def goal_line(self, goal: float, day: int) -> float:
        """The cumulative goal line on ``day`` (1-based): goal × day ÷ days
        (contract §7)."""
        return goal * day / self.days


def period_of(t_us: int, kind: str = MONTH, zone: str = "UTC") -> Period:
    """The period of ``kind`` in ``zone`` (IANA) that holds ``t_us``.
    Raises ValueError for an unknown kind."""
    return _period(kind, zone, _local_date(t_us, zone))


def next_period(p: Period, zone: str = "UTC") -> Period:
    """The period right after ``p``."""
    return _period(p.kind, zone, p.first_day + timedelta(days=p.days))


@lru_cache(maxsize=4096)
def _period(kind: str, zone: str, day: date) -> Period:
    if kind == MONTH:
        first = day.replace(day=1)
        after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        label = f"{first.year:04d}-{first.month:02d}"
    elif kind == QUARTER:
        q = (day.month - 1) // 3
        first = date(day.year, 3 * q + 1, 1)
        after = date(day.year + (q == 3), (3 * q + 3) % 12 + 1, 1)
        label = f"{first.year:04d}-Q{q + 1}"
    elif kind == WEEK:
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
        iso = first.isocalendar()
        label = f"{iso.year:04d}-W{iso.week:02d}"
    else:
        raise ValueError(f"unknown period {kind!r}; use one of {', '.join(KINDS)}")
    return Period(kind, label, first, _midnight_us(first, zone), _midnight_us(after, zone), (after - first).days)


def _midnight_us(day: date, zone: str) -> int:
    local = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone))
    delta = local - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _local_date(t_us: int, zone: str) -> date:
    return (_EPOCH + timedelta(microseconds=t_us)).astimezone(ZoneInfo(zone)).date()
