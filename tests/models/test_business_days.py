"""Goals in business days (``3bd``): the same business instant N open days of
the calendar later. Instants are epoch µs; the calendar is Monday–Friday
09:00–17:00 in Berlin with 2026-12-25 closed."""

from __future__ import annotations

import pytest

from leadsla.models.calendar import ALWAYS_OPEN
from leadsla.models.clock import BREACHED, MET
from leadsla.models.policy import PolicyError
from tests.models.conftest import OFFICE_CALENDAR_YAML, D, H, Lead, ev, pol, ts

POLICIES = OFFICE_CALENDAR_YAML + """
policies:
  - name: three
    start: lead.handed_off
    stop: lead.contact_attempt
    goal: 3bd
    calendar: office
  - name: two
    start: lead.handed_off
    stop: lead.contact_attempt
    goal: 2bd
    calendar: office
  - name: days
    start: lead.handed_off
    stop: lead.contact_attempt
    goal: 3d
    calendar: office
"""
PS = pol(POLICIES)
CAL = PS.by_name("three").calendar


@pytest.mark.parametrize(("start", "days", "due"), [
    ("2026-12-07T10:00:00+01:00", 3, "2026-12-10T10:00:00+01:00"),  # Monday 10:00 -> Thursday 10:00
    ("2026-12-07T10:00:00+01:00", 2, "2026-12-09T10:00:00+01:00"),
    ("2026-12-10T16:30:00+01:00", 2, "2026-12-14T16:30:00+01:00"),  # Thursday -> over the weekend -> Monday
    ("2026-12-04T20:00:00+01:00", 1, "2026-12-08T09:00:00+01:00"),  # Friday after hours = Monday 09:00, +1
    ("2026-12-07T07:00:00+01:00", 1, "2026-12-08T09:00:00+01:00"),  # before opening = 09:00 that day
    ("2026-12-05T12:00:00+01:00", 1, "2026-12-08T09:00:00+01:00"),  # a Saturday = Monday 09:00
    ("2026-12-23T11:00:00+01:00", 2, "2026-12-28T11:00:00+01:00"),  # the 25th is a holiday
])
def test_add_days_is_the_same_business_instant_n_open_days_later(start: str, days: int, due: str) -> None:
    assert CAL.add_days(ts(start), days) == ts(due)


def test_add_days_on_a_24x7_calendar_counts_whole_days() -> None:
    assert ALWAYS_OPEN.add_days(ts("2026-12-05T12:00:00Z"), 3) == ts("2026-12-08T12:00:00Z")


def test_a_shorter_open_day_ends_at_its_closing() -> None:
    half = pol("""
        calendars:
          shop: {timezone: UTC, hours: {mon-thu: "09:00-17:00", fri: "09:00-13:00"}}
        policies:
          - {name: p, start: lead.handed_off, stop: lead.connected, goal: 1bd, calendar: shop}
        """).by_name("p").calendar
    # Thursday 15:00 is six business hours into its day; Friday has only four.
    assert half.add_days(ts("2026-12-10T15:00:00Z"), 1) == ts("2026-12-11T13:00:00Z")
    # The nominal open day of that calendar: (4 × 8 h + 4 h) / 5 days.
    assert half.nominal_day_us() == round((4 * 8 + 4) / 5 * 3600) * 1_000_000


def test_a_goal_in_business_days_is_parsed_with_its_nominal_length() -> None:
    three = PS.by_name("three")
    assert three.goal_days == 3
    assert three.goal_text == "3bd"
    assert three.goal_us == 3 * 8 * H  # three 8-hour open days
    days = PS.by_name("days")
    assert days.goal_days is None
    assert days.goal_us == 3 * D  # 3d keeps meaning 72 business hours
    assert days.goal_text == "3d"


def test_a_clock_goal_in_business_days_depends_on_its_start() -> None:
    three = PS.by_name("three")
    monday = ts("2026-12-07T10:00:00+01:00")
    thursday = ts("2026-12-10T10:00:00+01:00")
    assert three.goal_from(monday) == 24 * H  # Mon 7 h + Tue 8 h + Wed 8 h + Thu 1 h
    assert three.goal_from(thursday) == 24 * H  # over the weekend: the same business length
    assert CAL.add(thursday, three.goal_from(thursday)) == ts("2026-12-15T10:00:00+01:00")


@pytest.mark.parametrize("goal", ["0bd", "9999bd"])
def test_business_days_out_of_range_are_refused_with_their_place(goal: str) -> None:
    with pytest.raises(PolicyError, match=r"p\.yaml:\d+:\d+: policies\[0\]\.goal: a goal in business days must be"):
        pol(f"""
            policies:
              - {{name: p, start: lead.handed_off, stop: lead.connected, goal: {goal}}}
            """)


def test_3bd_meets_and_2bd_breaches_a_monday_to_wednesday_follow_up() -> None:
    lead = Lead(PS)
    handoff = ts("2026-12-07T10:00:00+01:00")  # Monday
    follow_up = ts("2026-12-09T14:00:00+01:00")  # Wednesday afternoon
    lead.apply(ev("lead.handed_off", handoff, "h1"), handoff)
    lead.apply(ev("lead.contact_attempt", follow_up, "a1"), follow_up)
    by_policy = {d.policy: d for d in lead.decisions}
    assert by_policy["three"].outcome == MET
    assert by_policy["three"].deadline == ts("2026-12-10T10:00:00+01:00")
    assert by_policy["two"].outcome == BREACHED
    assert by_policy["two"].deadline == ts("2026-12-09T10:00:00+01:00")
    assert by_policy["two"].goal_us == 16 * H
    # 3d under the calendar keeps meaning 72 business hours: nine open days.
    assert by_policy["days"].outcome == MET
    assert by_policy["days"].deadline == ts("2026-12-18T10:00:00+01:00")  # Friday of the next week


def test_2bd_breaches_by_the_timer_at_the_business_deadline() -> None:
    lead = Lead(PS)
    handoff = ts("2026-12-07T10:00:00+01:00")
    lead.apply(ev("lead.handed_off", handoff, "h1"), handoff)
    lead.advance(ts("2026-12-09T10:00:00+01:00"))
    assert lead.decisions == []  # at the deadline: not yet
    lead.advance(ts("2026-12-09T10:00:01+01:00"))
    assert [(d.policy, d.outcome) for d in lead.decisions] == [("two", BREACHED)]
