"""A policies file changed between runs: ``clock.rebase`` puts the recovered
running clocks under the new file by one rule (the goal in force applies from
each clock's start), so the deadline, the decision and the view agree."""

from __future__ import annotations

import copy

from leadsla.models.clock import BREACHED, MET, PAUSED, RUNNING, Rebased, advance, next_wake, rebase
from tests.models.conftest import OFFICE_CALENDAR_YAML, H, Lead, M, ev, pol, ts

T0 = ts("2026-11-23T10:00:00Z")  # a Monday


def policies(goal: str, extra: str = "") -> str:
    return f"""
policies:
  - name: first_touch
    start: lead.handed_off
    stop: lead.contact_attempt
    pause: lead.recycled
    resume: lead.mql
    goal: {goal}
{extra}"""


def started(goal: str = "3h") -> Lead:
    lead = Lead(pol(policies(goal)))
    lead.apply(ev("lead.handed_off", T0, "h1", team="emea"), T0)
    return lead


def test_a_shorter_goal_applies_from_the_clock_start_and_breaches_at_once() -> None:
    lead = started("3h")
    assert lead.state.clocks["first_touch"].deadline == T0 + 3 * H
    new = pol(policies("1h"))
    moved = rebase(lead.state, new)
    assert moved == [Rebased("first_touch", 3 * H, 1 * H, T0 + 3 * H, T0 + 1 * H)]
    c = lead.state.clocks["first_touch"]
    assert (c.status, c.goal, c.deadline) == (RUNNING, 1 * H, T0 + 1 * H)
    assert next_wake(lead.state) == T0 + 48 * M  # the index wakes the lead at the new at-risk instant
    tr = advance(lead.state, new, "L1", T0 + 2 * H, T0 + 2 * H)  # two hours on: past the new goal
    assert [(d.outcome, d.deadline, d.goal_us) for d in tr.decisions] == [(BREACHED, T0 + 1 * H, 1 * H)]


def test_a_longer_goal_gives_a_running_clock_more_time() -> None:
    lead = started("1h")
    new = pol(policies("3h"))
    rebase(lead.state, new)
    lead.policies = new
    lead.apply(ev("lead.contact_attempt", T0 + 2 * H, "a1"), T0 + 2 * H)
    assert [(d.outcome, d.elapsed_us) for d in lead.decisions] == [(MET, 2 * H)]


def test_an_unchanged_file_moves_nothing() -> None:
    lead = started("3h")
    before = copy.deepcopy(lead.state)
    assert rebase(lead.state, pol(policies("3h"))) == []
    assert lead.state == before


def test_a_calendar_change_moves_the_deadline_with_the_same_goal() -> None:
    lead = started("8h")
    office = pol(OFFICE_CALENDAR_YAML + policies("8h", "    calendar: office\n"))
    moved = rebase(lead.state, office)
    # Berlin office hours 09:00-17:00 (UTC+1): Monday 11:00 local, six hours
    # that day and two on Tuesday.
    assert moved == [Rebased("first_touch", 8 * H, 8 * H, T0 + 8 * H, ts("2026-11-24T11:00:00+01:00"))]


def test_business_time_counted_before_a_pause_stays_counted() -> None:
    lead = started("3h")
    lead.apply(ev("lead.recycled", T0 + 30 * M, "p1"), T0 + 30 * M)
    lead.apply(ev("lead.mql", T0 + 2 * H, "r1"), T0 + 2 * H)  # resumed, 30 min used
    new = pol(policies("1h"))
    rebase(lead.state, new)
    assert lead.state.clocks["first_touch"].deadline == T0 + 2 * H + 30 * M


def test_a_paused_clock_takes_the_new_goal_when_it_resumes() -> None:
    lead = started("3h")
    lead.apply(ev("lead.recycled", T0 + 30 * M, "p1"), T0 + 30 * M)
    new = pol(policies("1h"))
    rebase(lead.state, new)
    assert lead.state.clocks["first_touch"].status == PAUSED
    lead.policies = new
    lead.apply(ev("lead.mql", T0 + 2 * H, "r1"), T0 + 2 * H)
    assert lead.state.clocks["first_touch"].deadline == T0 + 2 * H + 30 * M


def test_a_removed_policy_closes_its_running_clock_without_a_decision() -> None:
    lead = started("3h")
    assert "first_touch" in lead.state.shown
    other = pol("""
        policies:
          - {name: disposition, start: lead.handed_off, stop: lead.qualified, goal: 2d}
        """)
    moved = rebase(lead.state, other)
    assert moved == [Rebased("first_touch", 3 * H, 0, T0 + 3 * H, 0, removed=True)]
    assert lead.state.clocks == {}
    assert lead.state.shown == {}  # off the open-clock gauges
    assert next_wake(lead.state) is None  # nothing left in the deadline index
    tr = advance(lead.state, other, "L1", T0 + 10 * H, T0 + 10 * H)
    assert tr.decisions == []


def test_a_pending_start_of_a_removed_policy_is_dropped_from_the_buffer() -> None:
    lead = Lead(pol(policies("1h")))
    lead.apply(ev("lead.handed_off", T0, "h1"), T0 - M)  # ahead of the watermark: buffered
    assert lead.state.shown["first_touch"][2] == 3  # pending
    other = pol("""
        policies:
          - {name: disposition, start: lead.qualified, stop: lead.disqualified, goal: 2d}
        """)
    rebase(lead.state, other)
    assert lead.state.shown == {}
    assert lead.state.buffer[0][3] == ()


def test_business_days_rebase_from_the_clock_start() -> None:
    lead = started("24h")
    office = pol(OFFICE_CALENDAR_YAML + policies("2bd", "    calendar: office\n"))
    rebase(lead.state, office)
    # Monday 11:00 Berlin, two open days later: Wednesday 11:00.
    assert lead.state.clocks["first_touch"].deadline == ts("2026-11-25T11:00:00+01:00")
    assert lead.state.clocks["first_touch"].goal == 16 * H


def test_a_clock_keeps_the_timing_digest_of_its_policy_so_recovery_skips_unchanged_ones() -> None:
    lead = started("3h")
    same, changed = pol(policies("3h")), pol(policies("3h", "    at_risk: 0.5\n"))
    assert lead.state.clocks["first_touch"].timing == same.by_name("first_touch").timing != 0
    assert changed.by_name("first_touch").timing != same.by_name("first_touch").timing
    moved = rebase(lead.state, changed)  # only the at-risk instant moves
    assert moved == [Rebased("first_touch", 3 * H, 3 * H, T0 + 3 * H, T0 + 3 * H)]
    assert lead.state.clocks["first_touch"].at_risk_at == T0 + 90 * M
    assert lead.state.clocks["first_touch"].timing == changed.by_name("first_touch").timing
