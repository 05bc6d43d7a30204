"""Calendar periods for delivery targets and accountability (contract §7, §9):
a month (the default), an ISO week or a quarter, in a time zone. Instants are
epoch microseconds (UTC); a period is the half-open interval [start, end) of
local midnights, so a DST change makes a day 23 or 25 hours long."""

from __future__ import annotations

import hashlib
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
    # Most calls ask for the period the last one found. An instant two days
    # or more inside its bounds is in it whatever the zone does: UTC offsets
    # stay within ±24 h, so its local date is inside the period's local days.
    last = _last.get((kind, zone))
    if last is not None and last.start_us + _MARGIN_US <= t_us < last.end_us - _MARGIN_US:
        return last
    p = _period(kind, zone, _local_date(t_us, zone))
    if len(_last) >= 256:
        _last.clear()
    _last[(kind, zone)] = p
    return p


_MARGIN_US = 2 * 86_400_000_000
_last: dict[tuple[str, str], Period] = {}  # the period last found, by (kind, zone)


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
    utc = _EPOCH + timedelta(microseconds=t_us)
    try:
        return utc.astimezone(ZoneInfo(zone)).date()
    except OverflowError:
        # Within a day of 0001-01-01 (the earliest instant an event may
        # carry) a zone west of UTC would be in year 0: the UTC date stands in.
        return utc.date()


# -- accountability (contract §9) -------------------------------------------------

POLICY, TARGET = "policy", "target"
# Points a met target earns go to this team on the leaderboard: a target is
# marketing's promise, a policy the promise of the team its clocks belong to.
MARKETING_TEAM = "marketing"


@dataclass(frozen=True, slots=True)
class Verdict:
    """One level judged for one period (one record on ``sla-periods``).

    ``achieved`` is the share of met clocks (policies; None with no decision)
    or the leads delivered (targets). ``judged`` is False when a policy had
    fewer than ``min_decisions`` decisions: too few to judge a ratio, so the
    period counts as met (it is no miss) but earns no points. ``strikes`` is
    the run of missed periods ending with this one (0 when met) and
    ``points`` what this period earned."""

    met: bool
    judged: bool
    achieved: float | None
    strikes: int
    points: int
    under_review: bool


def judge_policy(met: int, breached: int, objective: float, min_decisions: int, strikes_before: int,
                 review_after: int, points: int) -> Verdict:
    """A policy's level for one team and period (contract §9): met when the
    share of met clocks decided in the period is at least ``objective``.
    Fewer than ``min_decisions`` decisions are not judged (a team with three
    leads is not held to a ratio). Raises nothing."""
    decided = met + breached
    ratio = met / decided if decided else None
    if decided < min_decisions:
        return Verdict(True, False, ratio, 0, 0, False)
    ok = ratio is not None and ratio >= objective
    strikes = 0 if ok else strikes_before + 1
    return Verdict(ok, True, ratio, strikes, points if ok else 0, strikes >= review_after)


def judge_target(delivered: float, value: float, goal: int, value_goal: float | None, strikes_before: int,
                 review_after: int, points: int) -> Verdict:
    """A target for one period (contract §9): met when ``delivered ≥ goal``
    and, where a value goal is set, ``value ≥ value_goal``."""
    ok = delivered >= goal and (value_goal is None or value >= value_goal)
    strikes = 0 if ok else strikes_before + 1
    return Verdict(ok, True, delivered, strikes, points if ok else 0, strikes >= review_after)


def period_decision_id(kind: str, name: str, team: str, label: str) -> str:
    """The ``decision_id`` of a period's record: the same for every re-send."""
    return hashlib.blake2b(f"{kind}\x1f{name}\x1f{team}\x1f{label}".encode(), digest_size=16).hexdigest()
