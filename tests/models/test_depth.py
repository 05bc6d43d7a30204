"""Follow-up depth (contract §8): a depth clock is met when the lead is
reached or the min_attempts-th attempt happens within the goal, breached when
the goal passes first or the lead is given up before either."""

from __future__ import annotations

from typing import Any

import pytest

from leadsla.models.clock import TooLate
from tests.models.conftest import D, H, Lead, M, ev, pol, ts

T0 = ts("2026-11-23T09:00:00Z")
DEPTH = pol("""
policies:
  - name: follow_up_depth
    start: lead.handed_off
    attempt: lead.contact_attempt
    min_attempts: 6
    stop: lead.connected
    give_up: [lead.disqualified, lead.recycled]
    goal: 5d
""")
GOAL_END = T0 + 5 * D


def run(events: list[tuple[str, int]], until: int = T0 + 30 * D) -> list[tuple[Any, ...]]:
    lead = Lead(DEPTH)
    for i, (etype, at) in enumerate(events):
        lead.apply(ev(etype, at, f"e{i}"), at - 1)
    lead.advance(until)
    return [(d.outcome, d.stopped_at, d.attempts) for d in lead.decisions]


def test_met_by_the_sixth_attempt_within_the_goal() -> None:
    attempts = [("lead.contact_attempt", T0 + (i + 1) * H) for i in range(8)]
    assert run([("lead.handed_off", T0), *attempts]) == [("met", T0 + 6 * H, 6)]


def test_met_by_reaching_the_lead_before_enough_attempts() -> None:
    events = [("lead.handed_off", T0), ("lead.contact_attempt", T0 + H), ("lead.connected", T0 + 2 * H)]
    assert run(events) == [("met", T0 + 2 * H, None)]


def test_given_up_before_enough_attempts_is_breached() -> None:
    events = [("lead.handed_off", T0), ("lead.contact_attempt", T0 + H), ("lead.contact_attempt", T0 + 2 * H),
              ("lead.disqualified", T0 + 3 * H)]
    assert run(events) == [("breached", T0 + 3 * H, 2)]


def test_the_goal_passing_first_is_breached_by_the_timer_with_the_attempts_made() -> None:
    events = [("lead.handed_off", T0)] + [("lead.contact_attempt", T0 + (i + 1) * H) for i in range(3)]
    lead = Lead(DEPTH)
    for i, (etype, at) in enumerate(events):
        lead.apply(ev(etype, at, f"e{i}"), at - 1)
    lead.advance(GOAL_END)
    assert lead.decisions == []
    lead.advance(GOAL_END + 1)
    assert [(d.outcome, d.deadline, d.stopped_at, d.attempts) for d in lead.decisions] == [
        ("breached", GOAL_END, None, 3)]


def test_the_sixth_attempt_after_the_goal_is_breached() -> None:
    attempts = [("lead.contact_attempt", T0 + (i + 1) * H) for i in range(5)]
    late = ("lead.contact_attempt", GOAL_END + H)
    lead = Lead(DEPTH)
    for i, (etype, at) in enumerate([("lead.handed_off", T0), *attempts, late]):
        lead.apply(ev(etype, at, f"e{i}"), at - 1)  # on time: the goal passed before it
    lead.advance(T0 + 30 * D)
    assert [(d.outcome, d.attempts) for d in lead.decisions] == [("breached", 5)]


@pytest.mark.parametrize("order", [list(range(8)), [7, 6, 5, 4, 3, 2, 1, 0], [3, 0, 7, 1, 6, 2, 5, 4]])
def test_any_arrival_order_within_lateness_counts_the_same_attempts(order: list[int]) -> None:
    events = [("lead.handed_off", T0)] + [("lead.contact_attempt", T0 + (i + 1) * H) for i in range(7)]
    lead = Lead(DEPTH)
    for i in order:
        lead.apply(ev(events[i][0], events[i][1], f"e{i}"), T0 - 1)
    lead.advance(T0 + 30 * D)
    assert [(d.outcome, d.stopped_at, d.attempts) for d in lead.decisions] == [("met", T0 + 6 * H, 6)]


def test_late_attempts_before_the_deadline_correct_a_timer_breach() -> None:
    lead = Lead(DEPTH)
    lead.apply(ev("lead.handed_off", T0, "h"), T0 - 1)
    lead.advance(GOAL_END + H)
    assert [d.outcome for d in lead.decisions] == ["breached"]
    for i in range(6):  # a CRM sync delivers the week's attempts a day late
        lead.apply(ev("lead.contact_attempt", T0 + (i + 1) * H, f"a{i}"), GOAL_END + D)
    assert [(d.outcome, d.stopped_at) for d in lead.decisions] == [("breached", None), ("corrected", T0 + 6 * H)]
    assert lead.of(TooLate) == []


def test_a_late_attempt_in_the_open_cycle_is_counted_in_event_time() -> None:
    lead = Lead(DEPTH)
    lead.apply(ev("lead.handed_off", T0, "h"), T0 - 1)
    for i in range(5):
        lead.apply(ev("lead.contact_attempt", T0 + (i + 2) * H, f"a{i}"), T0 + (i + 2) * H - 1)
    lead.advance(T0 + 8 * H)
    lead.apply(ev("lead.contact_attempt", T0 + 30 * M, "early"), T0 + 8 * H)  # late, dated first
    assert [(d.outcome, d.stopped_at, d.attempts) for d in lead.decisions] == [("met", T0 + 6 * H, 6)]
