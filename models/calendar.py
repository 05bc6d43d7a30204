"""Business-hours calendars: SLA time that counts only inside open hours.

Times are epoch microseconds (UTC). A calendar turns each local date into its
open intervals (weekly hours minus holidays) in its IANA zone, converted to UTC
instants, so DST days count the real length of their open hours.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import TypeVar
from zoneinfo import ZoneInfo

US = 1_000_000
DAY_US = 86_400 * US
# A calendar must open at least once in this many days, or SLA time can never
# accumulate; checked when the policy file is loaded.
MAX_CLOSED_DAYS = 400

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Calendar:
    """Weekly open hours in a time zone, minus holidays.

    ``hours[i]`` are the (start, end) local times open on weekday ``i``
    (Monday = 0); ``end`` of ``None`` means midnight at the end of the day.
    """

    name: str
    timezone: str = "UTC"
    hours: tuple[tuple[tuple[time, time | None], ...], ...] = ((),) * 7
    holidays: frozenset[date] = frozenset()
    always_open: bool = False
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    # Open intervals by date ordinal: every clock asks for the same few days
    # again and again, and a dict lookup costs far less than hashing the
    # calendar for a shared cache. Bounded (oldest days evicted).
    _days: dict[int, tuple[tuple[int, int], ...]] = field(init=False, repr=False, compare=False)
    # What ``add`` and ``elapsed`` walk, by UTC day number (epoch µs // DAY_US):
    # the open intervals of ``_WINDOW_DAYS`` local days from the first one an
    # instant of that UTC day can fall in, flattened into one tuple, or () where
    # the walk must take the general path. Deadlines and elapsed times of
    # clocks span a few days, so one flat loop answers nearly every call.
    _windows: dict[int, tuple[tuple[int, int], ...]] = field(init=False, repr=False, compare=False)
    # What ``add_days`` steps over, by UTC day number likewise: the open days
    # among those ``_WINDOW_DAYS`` local days, as (date ordinal, intervals).
    _open_days: dict[int, tuple[tuple[int, tuple[tuple[int, int], ...]], ...]] = field(
        init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", ZoneInfo(self.timezone))
        object.__setattr__(self, "_days", {})
        object.__setattr__(self, "_windows", {})
        object.__setattr__(self, "_open_days", {})

    # -- the two operations every clock uses ---------------------------------

    def add(self, start_us: int, amount_us: int) -> int:
        """The last instant at which business time since ``start_us`` is still
        ``amount_us``: the deadline of a goal.

        Business time reaches the goal inside an open interval and then stays
        flat while closed, so when the goal is used up exactly at closing time
        the deadline is the next opening: a follow-up at 08:59 the next morning
        has spent exactly the goal and is met.
        """
        if self.always_open:
            return start_us + amount_us
        remaining = amount_us
        windows = self._windows
        window = windows.get(start_us // DAY_US)
        if window is None:
            window = self._window(start_us // DAY_US)
        # The walk of _add_walk over the same intervals, without a generator.
        for a, b in window:
            if b > start_us:
                s = a if a > start_us else start_us
                avail = b - s
                if remaining < avail:
                    return s + remaining
                remaining -= avail
        return self._add_walk(start_us, amount_us)  # beyond the window

    def elapsed(self, start_us: int, end_us: int) -> int:
        """Business microseconds in ``[start_us, end_us)``."""
        if end_us <= start_us:
            return 0
        if self.always_open:
            return end_us - start_us
        total = 0
        window = self._windows.get(start_us // DAY_US)
        if window is None:
            window = self._window(start_us // DAY_US)
        for a, b in window:
            if b > start_us:
                if a >= end_us:
                    return total
                total += (b if b < end_us else end_us) - (a if a > start_us else start_us)
        return self._elapsed_walk(start_us, end_us)  # beyond the window

    def _add_walk(self, start_us: int, amount_us: int) -> int:
        """``add`` by walking the intervals day by day, with no window."""
        remaining = amount_us
        for a, b in self._intervals_from(start_us):
            s = max(a, start_us)
            avail = b - s
            if remaining < avail:
                return s + remaining
            remaining -= avail
        raise AssertionError("unreachable: _intervals_from is endless")

    def _elapsed_walk(self, start_us: int, end_us: int) -> int:
        """``elapsed`` (of a non-empty span) by walking the intervals day by day."""
        total = 0
        for a, b in self._intervals_from(start_us):
            if a >= end_us:
                break
            total += min(b, end_us) - max(a, start_us)
        return total

    def add_days(self, start_us: int, days: int) -> int:
        """The same business instant ``days`` open days after ``start_us``
        (epoch µs, UTC): the deadline of a goal in business days (``3bd``).

        The business instant of ``start_us`` is its open day (the day it
        falls in, or the next open day when it falls after that day's hours
        or on a closed day) and the business time already spent in that day.
        The result is the instant with that much business time spent in the
        open day ``days`` later; a shorter day (a half-day) ends at its
        closing. Monday 10:00 in a Monday–Friday 09:00–18:00 calendar plus 3
        is Thursday 10:00; Friday 20:00 plus 1 is Tuesday 09:00. An always-open
        calendar counts 24 h per day. Raises ``ValueError`` for a calendar with
        no open hours within ``MAX_CLOSED_DAYS`` days.
        """
        if self.always_open:
            return start_us + days * DAY_US
        u = start_us // DAY_US
        open_days = self._open_days.get(u)
        if open_days is None:
            open_days = self._open_days_window(u)
        # The open day of start_us is the first whose hours end after it. Every
        # day before its local date ended before it (offsets differ by at most
        # 24 h), so looking from the window's first day finds what the walk
        # from its local date finds.
        i = 0
        for _, ivs in open_days:
            if ivs[-1][1] > start_us:
                break
            i += 1
        else:
            return self._add_days_walk(start_us, days)
        offset = 0
        for a, b in ivs:
            if a < start_us:
                offset += (b if b < start_us else start_us) - a
        if i + days < len(open_days):
            ivs = open_days[i + days][1]
        else:
            n = open_days[-1][0]
            for _ in range(i + days - len(open_days) + 1):
                n, ivs = self._open_ordinal(n + 1)
        return _at_offset(ivs, offset)

    def _add_days_walk(self, start_us: int, days: int) -> int:
        """``add_days`` by walking day by day from the local date of ``start_us``."""
        n, ivs = self._open_ordinal(self._local_date(start_us).toordinal())
        while ivs[-1][1] <= start_us:  # that day's hours are over: the next open day
            n, ivs = self._open_ordinal(n + 1)
        offset = 0
        for a, b in ivs:
            if a < start_us:
                offset += (b if b < start_us else start_us) - a
        for _ in range(days):
            n, ivs = self._open_ordinal(n + 1)
        return _at_offset(ivs, offset)

    def nominal_day_us(self) -> int:
        """An open day's length (µs) on average over the week: the weekly open
        hours divided by the open weekdays (24 h for an always-open calendar).
        What one business day means where a single figure is needed (a goal
        in business days as seconds, on dashboards)."""
        if self.always_open:
            return DAY_US
        lengths = []
        for ranges in self.hours:
            total = 0
            for start, end in ranges:
                end_s = 86_400 if end is None else end.hour * 3600 + end.minute * 60 + end.second
                total += max(0, end_s - (start.hour * 3600 + start.minute * 60 + start.second))
            if total:
                lengths.append(total)
        return round(sum(lengths) / len(lengths)) * US if lengths else DAY_US

    # -- intervals --------------------------------------------------------------

    def _open_ordinal(self, n: int) -> tuple[int, tuple[tuple[int, int], ...]]:
        """The date ordinal ``n`` or, when that day is closed, the next open
        day's, with its intervals. Raises ValueError when none is open within
        ``MAX_CLOSED_DAYS`` days, OverflowError past the last date."""
        days = self._days
        for _ in range(MAX_CLOSED_DAYS + 1):
            if n > _MAX_ORDINAL:
                raise OverflowError("date value out of range")
            ivs = days.get(n)
            if ivs is None:
                ivs = self._day_by_ordinal(n)
            if ivs:
                return n, ivs
            n += 1
        raise ValueError(f"calendar {self.name!r} has no open hours for {MAX_CLOSED_DAYS} days")

    def _window_days(self, first: int) -> Iterator[tuple[int, tuple[tuple[int, int], ...]]]:
        """(date ordinal, open intervals) of the ``_WINDOW_DAYS`` local days
        from ordinal ``first``, each from the day cache; none near the end
        of the date range (the windows are then empty and callers walk)."""
        if first + _WINDOW_DAYS + 2 >= _MAX_ORDINAL:
            return
        days = self._days
        for n in range(first, first + _WINDOW_DAYS):
            ivs = days.get(n)
            yield n, (self._day_by_ordinal(n) if ivs is None else ivs)

    def _open_days_window(self, u: int) -> tuple[tuple[int, tuple[tuple[int, int], ...]], ...]:
        """Build the open days of UTC day ``u``'s window (see ``_open_days``):
        (date ordinal, intervals) of each open day among the ``_WINDOW_DAYS``
        local days from the first one an instant of that UTC day can fall in;
        () at the end of the date range (callers walk)."""
        out = [(n, ivs) for n, ivs in self._window_days(self._first_ordinal(u * DAY_US)) if ivs]
        open_days = tuple(out)
        _put(self._open_days, u, open_days)
        return open_days

    def _window(self, u: int) -> tuple[tuple[int, int], ...]:
        """Build the window of UTC day ``u`` (see ``_windows``): the intervals
        ``_intervals_from`` yields from that day's first instant, over
        ``_WINDOW_DAYS`` local days, so that the ones ending after any instant
        of the day are exactly what ``_intervals_from`` yields for it. That
        holds when each day's last interval is the one that ends last
        (``_intervals_from`` skips a day by its last end); for a day where a
        DST gap breaks that, and at the end of the date range, the window is
        () and callers walk."""
        t0 = u * DAY_US
        out: list[tuple[int, int]] = []
        for _, ivs in self._window_days(self._first_ordinal(t0)):
            if ivs and ivs[-1][1] != max(b for _, b in ivs):
                out = []
                break
            out.extend(iv for iv in ivs if iv[1] > t0)
        window = tuple(out)
        _put(self._windows, u, window)
        return window

    def _intervals_from(self, t_us: int) -> Iterator[tuple[int, int]]:
        """Open intervals, in order, that end after ``t_us``. Touching intervals
        are not merged (``add`` and ``elapsed`` do not need it), so a calendar
        open around the clock still yields one interval per day."""
        n = self._first_ordinal(t_us)
        days = self._days
        closed_days = 0
        while True:
            ivs = days.get(n)
            if ivs is None:
                ivs = self._day_by_ordinal(n)
            if not ivs:
                closed_days += 1
                if closed_days > MAX_CLOSED_DAYS:
                    raise ValueError(f"calendar {self.name!r} has no open hours for {MAX_CLOSED_DAYS} days")
            else:
                closed_days = 0
                if ivs[-1][1] > t_us:
                    for a, b in ivs:
                        if b > t_us:
                            yield a, b
            n += 1

    def day_intervals(self, day: date) -> tuple[tuple[int, int], ...]:
        """The open intervals of a local date, as UTC instants (epoch µs)."""
        ivs = self._days.get(day.toordinal())
        return self._day_by_ordinal(day.toordinal()) if ivs is None else ivs

    def _day_by_ordinal(self, n: int) -> tuple[tuple[int, int], ...]:
        ivs = _day_intervals(self, date.fromordinal(n))
        _put(self._days, n, ivs)
        return ivs

    def _first_ordinal(self, t_us: int) -> int:
        """The ordinal of a local date at or before the one ``t_us`` falls on,
        without a time-zone conversion: UTC offsets are within ±14 h (local
        dates within a day of the UTC date), and one more day back covers an
        interval of the day before that is still open (hours ending at
        midnight). Starting early only costs skipping a closed day or two."""
        return max(_MIN_ORDINAL, _EPOCH_ORDINAL + t_us // DAY_US - 2)

    def _local_date(self, t_us: int) -> date:
        # Integer arithmetic, no float seconds; at the ends of datetime's range
        # (year 1, year 9999) the local date is the UTC one rather than an error.
        utc = _EPOCH_NAIVE + timedelta(microseconds=t_us)
        try:
            day = self._zone.fromutc(utc.replace(tzinfo=self._zone)).date()
        except OverflowError:
            day = utc.date()
        # Start one day early: an interval of the previous local date can still
        # be open (only for hours ending at midnight, but it is cheap to be safe).
        return day - timedelta(days=1) if day > date.min else day

    def is_open(self, t_us: int) -> bool:
        if self.always_open:
            return True
        for a, b in self._intervals_from(t_us):
            return a <= t_us < b
        return False


ALWAYS_OPEN = Calendar(name="24x7", always_open=True)

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MIN_ORDINAL = date.min.toordinal()
_MAX_ORDINAL = date.max.toordinal()
_V = TypeVar("_V")
_DAYS_KEPT = 4096  # days of intervals (and windows) a calendar keeps (about 11 years)
# Local days in a window: a goal of 5bd over a weekend and a holiday or two
# still ends inside one, and the longest goals take the general walk.
_WINDOW_DAYS = 16


def _at_offset(ivs: tuple[tuple[int, int], ...], offset: int) -> int:
    """The instant ``offset`` business µs into a day's intervals (its closing if the day is shorter)."""
    for a, b in ivs:
        if offset < b - a:
            return a + offset
        offset -= b - a
    return ivs[-1][1]


def _put(cache: dict[int, _V], key: int, value: _V) -> None:
    """Store in a day cache of at most ``_DAYS_KEPT`` entries: when full, the
    oldest quarter goes (dicts keep insertion order), so a worker running for
    years keeps the days it still uses."""
    if len(cache) >= _DAYS_KEPT:
        for old in list(itertools.islice(cache, _DAYS_KEPT // 4)):
            cache.pop(old, None)  # gone already if a second thread evicted first
    cache[key] = value


_EPOCH_NAIVE = datetime(1970, 1, 1)


@lru_cache(maxsize=65_536)
def _day_intervals(cal: Calendar, day: date) -> tuple[tuple[int, int], ...]:
    if day in cal.holidays:
        return ()
    out = []
    for start, end in cal.hours[day.weekday()]:
        a = _local_to_us(cal, day, start)
        b = _local_to_us(cal, day + timedelta(days=1), time(0)) if end is None else _local_to_us(cal, day, end)
        if b > a:
            out.append((a, b))
    return tuple(out)


def _local_to_us(cal: Calendar, day: date, t: time) -> int:
    # fold=0 picks the first of two ambiguous instants; a local time skipped by
    # a spring-forward gap maps forward, which zoneinfo does for fold=0 too.
    # Local wall time minus its UTC offset, in integers: the same instant as
    # astimezone(UTC), without its overflow on the first and last days.
    offset = datetime.combine(day, t, tzinfo=cal._zone).utcoffset() or timedelta(0)
    delta = datetime.combine(day, t) - _EPOCH_NAIVE - offset
    return (delta.days * 86_400 + delta.seconds) * US + delta.microseconds
