"""Business-hours calendars: ``add`` (deadlines) and ``elapsed`` (business
time), weekends, holidays, split days and DST, plus the properties that make a
deadline mean "met iff elapsed <= goal"."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadsla.models.calendar import ALWAYS_OPEN, Calendar
from tests.models.conftest import H, M, S, ts

NINE_TO_FIVE = ((time(9), time(17)),)
SPLIT_DAY = ((time(9), time(12)), (time(13), time(17)))
AROUND_THE_CLOCK = ((time(0), None),)
NIGHT = ((time(1), time(4)),)  # spans the 02:00-03:00 DST transitions


def weekdays(
    ranges: tuple[tuple[time, time | None], ...],
) -> tuple[tuple[tuple[time, time | None], ...], ...]:
    return (ranges,) * 5 + ((), ())


OFFICE = Calendar(
    "office",
    "Europe/Berlin",
    weekdays(NINE_TO_FIVE),
    holidays=frozenset({date(2026, 12, 25), date(2027, 1, 1)}),
)
OFFICE_NY = Calendar("office_ny", "America/New_York", weekdays(NINE_TO_FIVE))
SPLIT = Calendar("split", "Europe/Berlin", weekdays(SPLIT_DAY))
BERLIN_24H = Calendar("berlin_24h", "Europe/Berlin", (AROUND_THE_CLOCK,) * 7)
NY_24H = Calendar("ny_24h", "America/New_York", (AROUND_THE_CLOCK,) * 7)
BERLIN_NIGHT = Calendar("berlin_night", "Europe/Berlin", (NIGHT,) * 7)
NY_NIGHT = Calendar("ny_night", "America/New_York", (NIGHT,) * 7)

# Local Berlin wall time in winter (+01:00) and summer (+02:00).
MON = "2026-11-23T{}:00+01:00"
FRI = "2026-11-27T{}:00+01:00"
SAT = "2026-11-28T{}:00+01:00"
TUE = "2026-11-24T{}:00+01:00"
NEXT_MON = "2026-11-30T{}:00+01:00"


@pytest.mark.parametrize(
    ("case", "start", "goal", "deadline"),
    [
        ("before opening", MON.format("07:00"), H, MON.format("10:00")),
        ("at opening", MON.format("09:00"), H, MON.format("10:00")),
        ("inside", MON.format("10:00"), H, MON.format("11:00")),
        ("inside, odd start", "2026-11-23T10:17:31.25+01:00", 90 * S, "2026-11-23T10:19:01.25+01:00"),
        ("crosses closing", MON.format("16:30"), H, TUE.format("09:30")),
        ("at closing", MON.format("17:00"), H, TUE.format("10:00")),
        ("after closing", MON.format("20:00"), H, TUE.format("10:00")),
        ("just before midnight", "2026-11-23T23:59:59+01:00", H, TUE.format("10:00")),
        ("over the weekend", FRI.format("16:30"), H, NEXT_MON.format("09:30")),
        ("on saturday", SAT.format("12:00"), H, NEXT_MON.format("10:00")),
        ("over a holiday", "2026-12-24T16:30:00+01:00", H, "2026-12-28T09:30:00+01:00"),
        ("on a holiday", "2026-12-25T10:00:00+01:00", H, "2026-12-28T10:00:00+01:00"),
        ("over new year", "2026-12-31T16:00:00+01:00", 2 * H, "2027-01-04T10:00:00+01:00"),
        ("used up exactly at closing", MON.format("09:00"), 8 * H, TUE.format("09:00")),
        ("used up at closing, late start", MON.format("10:00"), 7 * H, TUE.format("09:00")),
        ("used up at friday closing", FRI.format("09:00"), 8 * H, NEXT_MON.format("09:00")),
        ("a whole week", MON.format("09:00"), 40 * H, NEXT_MON.format("09:00")),
        ("2d of business time", MON.format("10:00"), 48 * H, "2026-12-01T10:00:00+01:00"),
        ("zero goal inside", MON.format("10:00"), 0, MON.format("10:00")),
        ("zero goal when closed", SAT.format("12:00"), 0, NEXT_MON.format("09:00")),
        ("one microsecond before closing", "2026-11-23T16:59:59.999999+01:00", 1, TUE.format("09:00")),
    ],
)
def test_office_add(case: str, start: str, goal: int, deadline: str) -> None:
    assert OFFICE.add(ts(start), goal) == ts(deadline), case
    assert OFFICE.elapsed(ts(start), ts(deadline)) == goal, case


@pytest.mark.parametrize(
    ("case", "start", "end", "elapsed"),
    [
        ("before opening", MON.format("07:00"), MON.format("10:00"), H),
        ("inside", MON.format("10:00"), MON.format("12:30"), 2 * H + 30 * M),
        ("same instant", MON.format("10:00"), MON.format("10:00"), 0),
        ("end before start", MON.format("12:00"), MON.format("10:00"), 0),
        ("closed all the time", MON.format("17:00"), TUE.format("09:00"), 0),
        ("evening to morning", MON.format("16:00"), TUE.format("10:00"), 2 * H),
        ("whole day", MON.format("00:00"), TUE.format("00:00"), 8 * H),
        ("weekend only", SAT.format("00:00"), NEXT_MON.format("00:00"), 0),
        ("friday to monday", FRI.format("16:30"), NEXT_MON.format("09:30"), H),
        ("a whole week", MON.format("00:00"), NEXT_MON.format("00:00"), 40 * H),
        ("holiday week", "2026-12-21T00:00:00+01:00", "2026-12-28T00:00:00+01:00", 32 * H),
        ("over a holiday", "2026-12-24T16:30:00+01:00", "2026-12-28T09:30:00+01:00", H),
        ("one microsecond in", MON.format("09:00"), "2026-11-23T09:00:00.000001+01:00", 1),
        ("one microsecond before opening", "2026-11-23T08:59:59.999999+01:00", MON.format("09:00"), 0),
    ],
)
def test_office_elapsed(case: str, start: str, end: str, elapsed: int) -> None:
    assert OFFICE.elapsed(ts(start), ts(end)) == elapsed, case


@pytest.mark.parametrize(
    ("at", "is_open"),
    [
        (MON.format("08:59"), False),
        (MON.format("09:00"), True),
        ("2026-11-23T16:59:59.999999+01:00", True),
        (MON.format("17:00"), False),
        (SAT.format("12:00"), False),
        ("2026-12-25T12:00:00+01:00", False),
        ("2026-12-24T12:00:00+01:00", True),
    ],
)
def test_office_is_open(at: str, is_open: bool) -> None:
    assert OFFICE.is_open(ts(at)) is is_open


def test_deadline_at_closing_is_next_opening_and_met_until_then() -> None:
    """Goal used up exactly at 17:00: a follow-up at 08:59 next morning spent
    exactly the goal (met); at 09:00:00.000001 it spent more (breached)."""
    start = ts(MON.format("09:00"))
    deadline = OFFICE.add(start, 8 * H)
    assert deadline == ts(TUE.format("09:00"))
    assert OFFICE.elapsed(start, ts(TUE.format("08:59"))) == 8 * H
    assert OFFICE.elapsed(start, deadline) == 8 * H
    assert OFFICE.elapsed(start, deadline + 1) == 8 * H + 1


@pytest.mark.parametrize(
    ("case", "start", "goal", "deadline"),
    [
        ("inside the morning", "2026-11-23T09:30:00+01:00", H, "2026-11-23T10:30:00+01:00"),
        ("across lunch", "2026-11-23T11:30:00+01:00", H, "2026-11-23T13:30:00+01:00"),
        ("used up at lunch", "2026-11-23T11:00:00+01:00", H, "2026-11-23T13:00:00+01:00"),
        ("during lunch", "2026-11-23T12:15:00+01:00", H, "2026-11-23T14:00:00+01:00"),
        ("whole day", "2026-11-23T09:00:00+01:00", 7 * H, "2026-11-24T09:00:00+01:00"),
        ("afternoon into next day", "2026-11-23T16:00:00+01:00", 3 * H, "2026-11-24T11:00:00+01:00"),
        ("friday afternoon", "2026-11-27T16:00:00+01:00", 4 * H, "2026-11-30T13:00:00+01:00"),
    ],
)
def test_split_day_add(case: str, start: str, goal: int, deadline: str) -> None:
    assert SPLIT.add(ts(start), goal) == ts(deadline), case
    assert SPLIT.elapsed(ts(start), ts(deadline)) == goal, case


@pytest.mark.parametrize(
    ("start", "end", "elapsed"),
    [
        ("2026-11-23T11:00:00+01:00", "2026-11-23T12:30:00+01:00", H),
        ("2026-11-23T11:00:00+01:00", "2026-11-23T13:30:00+01:00", H + 30 * M),
        ("2026-11-23T12:00:00+01:00", "2026-11-23T13:00:00+01:00", 0),
        ("2026-11-23T00:00:00+01:00", "2026-11-24T00:00:00+01:00", 7 * H),
    ],
)
def test_split_day_elapsed(start: str, end: str, elapsed: int) -> None:
    assert SPLIT.elapsed(ts(start), ts(end)) == elapsed


# -- DST ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cal", "start", "end", "elapsed"),
    [
        # 24-hour calendars: a local day is 23 h in spring and 25 h in autumn.
        (BERLIN_24H, "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", 23 * H),
        (BERLIN_24H, "2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00", 25 * H),
        (BERLIN_24H, "2026-11-23T00:00:00+01:00", "2026-11-24T00:00:00+01:00", 24 * H),
        (BERLIN_24H, "2026-03-28T12:00:00+01:00", "2026-03-29T12:00:00+02:00", 23 * H),
        (NY_24H, "2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00", 23 * H),
        (NY_24H, "2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00", 25 * H),
        (NY_24H, "2026-01-01T00:00:00-05:00", "2027-01-01T00:00:00-05:00", 365 * 24 * H),
        # A 01:00-04:00 window that contains the 02:00-03:00 switch counts real time.
        (BERLIN_NIGHT, "2026-03-29T00:00:00+01:00", "2026-03-29T12:00:00+02:00", 2 * H),
        (BERLIN_NIGHT, "2026-10-25T00:00:00+02:00", "2026-10-25T12:00:00+01:00", 4 * H),
        (BERLIN_NIGHT, "2026-11-23T00:00:00+01:00", "2026-11-23T12:00:00+01:00", 3 * H),
        (NY_NIGHT, "2026-03-08T00:00:00-05:00", "2026-03-08T12:00:00-04:00", 2 * H),
        (NY_NIGHT, "2026-11-01T00:00:00-04:00", "2026-11-01T12:00:00-05:00", 4 * H),
        # Inside the repeated hour of an autumn night: 01:30 CEST to 02:30 CET is 2 h real time.
        (BERLIN_NIGHT, "2026-10-25T01:30:00+02:00", "2026-10-25T02:30:00+01:00", 2 * H),
        # Office hours stay 09:00-17:00 local across the switch.
        (OFFICE, "2026-03-27T16:30:00+01:00", "2026-03-30T09:30:00+02:00", H),
        (OFFICE_NY, "2026-03-06T16:30:00-05:00", "2026-03-09T09:30:00-04:00", H),
        (OFFICE_NY, "2026-10-30T16:30:00-04:00", "2026-11-02T09:30:00-05:00", H),
    ],
)
def test_dst_elapsed_is_real_time(cal: Calendar, start: str, end: str, elapsed: int) -> None:
    assert cal.elapsed(ts(start), ts(end)) == elapsed


@pytest.mark.parametrize(
    ("cal", "start", "goal", "deadline"),
    [
        (BERLIN_24H, "2026-03-29T00:00:00+01:00", 24 * H, "2026-03-30T01:00:00+02:00"),
        (BERLIN_24H, "2026-10-25T00:00:00+02:00", 24 * H, "2026-10-25T23:00:00+01:00"),
        (BERLIN_24H, "2026-03-29T01:30:00+01:00", H, "2026-03-29T03:30:00+02:00"),
        (NY_24H, "2026-03-08T00:00:00-05:00", 24 * H, "2026-03-09T01:00:00-04:00"),
        (NY_24H, "2026-11-01T00:00:00-04:00", 24 * H, "2026-11-01T23:00:00-05:00"),
        (NY_24H, "2026-11-01T01:30:00-04:00", H, "2026-11-01T01:30:00-05:00"),
        # the spring night is 2 h long: 2 h used up at its closing -> next night's opening
        (BERLIN_NIGHT, "2026-03-29T00:00:00+01:00", 2 * H, "2026-03-30T01:00:00+02:00"),
        (BERLIN_NIGHT, "2026-03-29T00:00:00+01:00", 150 * M, "2026-03-30T01:30:00+02:00"),
        # the autumn night is 4 h long
        (BERLIN_NIGHT, "2026-10-25T00:00:00+02:00", 3 * H, "2026-10-25T03:00:00+01:00"),
        (BERLIN_NIGHT, "2026-10-25T00:00:00+02:00", 4 * H, "2026-10-26T01:00:00+01:00"),
        (NY_NIGHT, "2026-03-08T00:00:00-05:00", 2 * H, "2026-03-09T01:00:00-04:00"),
        (NY_NIGHT, "2026-11-01T00:00:00-04:00", 3 * H + 30 * M, "2026-11-01T03:30:00-05:00"),
        (OFFICE, "2026-03-27T16:30:00+01:00", H, "2026-03-30T09:30:00+02:00"),
        (OFFICE_NY, "2026-03-06T16:30:00-05:00", H, "2026-03-09T09:30:00-04:00"),
    ],
)
def test_dst_add(cal: Calendar, start: str, goal: int, deadline: str) -> None:
    assert cal.add(ts(start), goal) == ts(deadline)
    assert cal.elapsed(ts(start), ts(deadline)) == goal


def test_around_the_clock_calendar_is_open_everywhere() -> None:
    """A zone-aware 24x7 calendar: intervals touch at every local midnight."""
    t = ts("2026-11-23T23:59:59.999999+01:00")
    assert BERLIN_24H.is_open(t) and BERLIN_24H.is_open(t + 1)
    assert BERLIN_24H.add(t, 2) == t + 2
    assert BERLIN_24H.add(ts("2026-01-01T00:00:00Z"), 400 * 24 * H) == ts("2027-02-05T00:00:00Z")


def test_always_open_is_plain_arithmetic() -> None:
    t = ts("2026-03-29T01:30:00+01:00")
    assert ALWAYS_OPEN.add(t, 3 * H) == t + 3 * H
    assert ALWAYS_OPEN.elapsed(t, t + 3 * H) == 3 * H
    assert ALWAYS_OPEN.elapsed(t + 3 * H, t) == 0
    assert ALWAYS_OPEN.is_open(t)


def test_calendar_that_never_opens_is_refused_not_looped() -> None:
    closed = Calendar(
        "closed",
        "UTC",
        weekdays(NINE_TO_FIVE),
        holidays=frozenset(date.fromordinal(date(2026, 1, 1).toordinal() + i) for i in range(800)),
    )
    with pytest.raises(ValueError, match="has no open hours for 400 days"):
        closed.add(ts("2026-01-01T00:00:00Z"), H)


# -- properties --------------------------------------------------------------------

CALENDARS = [OFFICE, OFFICE_NY, SPLIT, BERLIN_24H, NY_24H, BERLIN_NIGHT, NY_NIGHT, ALWAYS_OPEN]
_LO = ts("2026-01-01T00:00:00Z")
_HI = ts("2027-01-01T00:00:00Z")

calendars = st.sampled_from(CALENDARS)
# Instants: on a 15-minute grid (hits openings, closings and DST switches
# exactly) or anywhere to the microsecond.
instants = st.one_of(
    st.integers(0, (_HI - _LO) // (15 * M)).map(lambda k: _LO + k * 15 * M),
    st.integers(_LO, _HI),
)
goals = st.one_of(
    st.integers(0, 60).map(lambda k: k * 30 * M),
    st.integers(0, 100 * H),
)


@settings(max_examples=300, deadline=None)
@given(calendars, instants, goals)
def test_elapsed_until_add_is_the_goal(cal: Calendar, t: int, g: int) -> None:
    deadline = cal.add(t, g)
    assert deadline >= t
    assert cal.elapsed(t, deadline) == g


@settings(max_examples=300, deadline=None)
@given(calendars, st.lists(instants, min_size=3, max_size=3).map(sorted))
def test_elapsed_is_additive(cal: Calendar, abc: list[int]) -> None:
    a, b, c = abc
    assert cal.elapsed(a, b) + cal.elapsed(b, c) == cal.elapsed(a, c)
    assert 0 <= cal.elapsed(a, c) <= c - a


@settings(max_examples=300, deadline=None)
@given(
    calendars,
    instants,
    goals,
    st.one_of(st.integers(-3, 3), st.integers(-50 * H, 50 * H)),
)
def test_met_iff_elapsed_within_goal(cal: Calendar, t0: int, g: int, delta: int) -> None:
    """The deadline is exactly the last instant with elapsed <= goal."""
    deadline = cal.add(t0, g)
    t1 = max(t0, deadline + delta)
    if t1 <= deadline:
        assert cal.elapsed(t0, t1) <= g
    else:
        assert cal.elapsed(t0, t1) > g


@settings(max_examples=200, deadline=None)
@given(calendars, instants, goals, goals)
def test_add_is_monotone_and_composes(cal: Calendar, t: int, g1: int, g2: int) -> None:
    lo, hi = sorted((g1, g2))
    assert cal.add(t, lo) <= cal.add(t, hi)
    if lo < hi:
        assert cal.add(t, lo) < cal.add(t, hi)
    # Spending g1 then g2 is spending g1 + g2.
    assert cal.add(cal.add(t, g1), g2) == cal.add(t, g1 + g2)


def test_business_hours_work_on_the_first_and_last_days_an_event_can_carry() -> None:
    """The event model accepts 0001-01-01T00:00:00Z; a business-hours calendar
    must not overflow there, in a zone either side of UTC (in year 1 zones
    keep their local mean time, so only Berlin's answer is checked exactly)."""
    from leadsla.models.events import MAX_TIMESTAMP_US, MIN_TIMESTAMP_US

    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/Berlin"):
        cal = Calendar(name="x", timezone=zone, hours=tuple([((time(0), None),)] * 7))
        assert cal.is_open(MIN_TIMESTAMP_US) in (True, False)
        assert cal.add(MIN_TIMESTAMP_US, 3_600_000_000) >= MIN_TIMESTAMP_US + 3_600_000_000
        assert cal.elapsed(MIN_TIMESTAMP_US, MIN_TIMESTAMP_US + 86_400_000_000) > 0
        assert cal.is_open(MAX_TIMESTAMP_US - 86_400_000_000 * 3)
    berlin = Calendar(name="b", timezone="Europe/Berlin", hours=tuple([((time(0), None),)] * 7))
    assert berlin.is_open(MIN_TIMESTAMP_US)
    assert berlin.add(MIN_TIMESTAMP_US, 3_600_000_000) == MIN_TIMESTAMP_US + 3_600_000_000


def test_the_day_cache_is_bounded_and_answers_as_without_it() -> None:
    from leadsla.models.calendar import _DAYS_KEPT

    cal = Calendar(name="office", timezone="Asia/Kathmandu",  # +05:45: local midnight is not on a UTC hour
                   hours=(((time(9), time(17)),),) * 5 + ((),) * 2)
    fresh = Calendar(name="office", timezone="Asia/Kathmandu", hours=cal.hours)
    start = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
    for i in range(0, 2 * _DAYS_KEPT, 7):
        t = start + i * 86_400_000_000 + 3_600_000_000 * (i % 24)
        assert cal.add(t, 3_600_000_000) == fresh.add(t, 3_600_000_000)
        assert len(cal._days) <= _DAYS_KEPT
        fresh._days.clear()  # the reference answers from a cold cache every time


# -- the window cache ----------------------------------------------------------------

KATHMANDU = Calendar("kathmandu", "Asia/Kathmandu", weekdays(SPLIT_DAY))  # +05:45
# Berlin's spring-forward gap (02:00-03:00) moves 02:50 to 03:50 CEST, after the
# day's last interval (03:00-03:40): a day whose last interval is not the one
# that ends last, which the walk skips by its last end.
GAPPED = Calendar("gapped", "Europe/Berlin", (((time(1), time(2, 50)), (time(3), time(3, 40))),) * 7)
WINDOWED = [*CALENDARS[:-1], KATHMANDU, GAPPED]
# Around DST switches, holidays and year ends, on a 5-minute grid or anywhere.
_SPOTS = [ts(x) for x in ("2026-03-08T00:00:00Z", "2026-03-28T12:00:00Z", "2026-10-24T12:00:00Z",
                          "2026-10-31T12:00:00Z", "2026-12-23T12:00:00Z", "2026-12-30T12:00:00Z")]
near_switches = st.tuples(st.sampled_from(_SPOTS), st.integers(0, 4 * 24 * 12)).map(lambda x: x[0] + x[1] * 5 * M)
any_instant = st.one_of(instants, near_switches)
spans = st.one_of(st.integers(0, 3 * H), st.integers(0, 40 * 24 * H))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(WINDOWED), any_instant, spans)
def test_windowed_answers_equal_the_day_by_day_walk(cal: Calendar, t: int, span: int) -> None:
    """``add`` and ``elapsed`` answer from a cached window of intervals; the
    answer is the walk's over DST switches, holidays, day boundaries and
    spans longer than a window."""
    assert cal.add(t, span) == cal._add_walk(t, span)
    if span:
        assert cal.elapsed(t, t + span) == cal._elapsed_walk(t, t + span)
    deadline = cal.add(t, span)
    if deadline > t:
        assert cal.elapsed(t, deadline) == cal._elapsed_walk(t, deadline)


def test_a_day_the_walk_skips_by_its_last_end_is_never_in_a_window() -> None:
    t = ts("2026-03-29T01:45:00Z")  # 03:45 CEST: inside the first interval's end, after the last one's
    assert GAPPED._window(t // (24 * H)) == ()
    assert GAPPED.add(t, M) == GAPPED._add_walk(t, M)
    assert GAPPED.elapsed(t, t + 24 * H) == GAPPED._elapsed_walk(t, t + 24 * H)
    assert GAPPED.elapsed(t, t + 24 * H) == 2 * H + 30 * M  # the next night only (01:00-02:50, 03:00-03:40)


def test_the_window_cache_is_bounded() -> None:
    from leadsla.models.calendar import _DAYS_KEPT

    cal = Calendar("office", "Europe/Berlin", weekdays(NINE_TO_FIVE))
    for i in range(2 * _DAYS_KEPT):
        t = _LO + i * 24 * H
        assert cal.add(t, H) == cal._add_walk(t, H)
        assert cal.add_days(t, 2) == cal._add_days_walk(t, 2)
        assert max(len(cal._windows), len(cal._open_days), len(cal._days)) <= _DAYS_KEPT


def _add_days_by_dates(cal: Calendar, start_us: int, days: int) -> int:
    """``add_days`` as first written, with dates: the reference."""
    def open_day(day: date) -> tuple[date, tuple[tuple[int, int], ...]]:
        while not cal.day_intervals(day):
            day += timedelta(days=1)
        return day, cal.day_intervals(day)

    day, ivs = open_day(cal._local_date(start_us))
    while ivs[-1][1] <= start_us:
        day, ivs = open_day(day + timedelta(days=1))
    offset = sum(min(b, start_us) - a for a, b in ivs if a < start_us)
    for _ in range(days):
        day, ivs = open_day(day + timedelta(days=1))
    for a, b in ivs:
        if offset < b - a:
            return a + offset
        offset -= b - a
    return ivs[-1][1]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(WINDOWED), any_instant, st.integers(0, 30))
def test_add_days_from_the_window_equals_the_walk_by_dates(cal: Calendar, t: int, days: int) -> None:
    """``add_days`` steps over a cached window of open days (and past its end
    day by day): the answer is the date-by-date walk's from the local date."""
    assert cal.add_days(t, days) == _add_days_by_dates(cal, t, days) == cal._add_days_walk(t, days)
