"""SLA clocks: the pure event-time state machine (``apply``, ``advance``,
``next_wake``) and its effects. Time is epoch microseconds; the watermark is
always passed in."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadsla.models.clock import (
    IDLE,
    PAUSED,
    RUNNING,
    AtRisk,
    ClockRef,
    ClockStarted,
    Decision,
    Handoff,
    LateStop,
    LeadState,
    PauseExpired,
    Touch,
    decision_id,
    next_wake,
    open_clocks,
)
from leadsla.models.events import LeadEvent
from leadsla.models.policy import PolicySet
from tests.models.conftest import MINIMAL_YAML, OFFICE_CALENDAR_YAML, D, H, Lead, M, decision_key, ev, pol, ts

T0 = ts("2026-11-23T10:00:00Z")  # a Monday
MINIMAL = pol(MINIMAL_YAML)
RESTART = pol(MINIMAL_YAML + "    on_restart: restart\n")
PAUSING = pol(
    """
    policies:
      - name: first_touch
        start: lead.handed_off
        stop: [lead.contact_attempt, lead.connected]
        pause: lead.recycled
        resume: lead.mql
        goal: 1h
    """
)
OFFICE = pol(
    OFFICE_CALENDAR_YAML
    + """
policies:
  - name: first_touch
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected]
    goal: 1h
    calendar: office
"""
)
SEVERAL = pol(
    OFFICE_CALENDAR_YAML
    + """
policies:
  - name: first_touch
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected, lead.disqualified, lead.recycled]
    goal: 1h
  - name: acceptance
    start: lead.handed_off
    stop: [lead.accepted, lead.disqualified]
    goal: 2d
  - name: office_connect
    start: lead.handed_off
    stop: lead.connected
    goal: 4h
    calendar: office
"""
)

HANDOFF, ATTEMPT, CONNECTED, RECYCLED, MQL = (
    "lead.handed_off",
    "lead.contact_attempt",
    "lead.connected",
    "lead.recycled",
    "lead.mql",
)


def decided(
    outcome: str,
    started_at: int,
    deadline: int,
    stopped_at: int | None,
    elapsed: int | None,
    *,
    policy: str = "first_touch",
    cycle: int = 1,
) -> tuple[Any, ...]:
    """The expected ``decision_key`` of a decision (the id is checked separately)."""
    return (policy, outcome, cycle, started_at, deadline, stopped_at, elapsed)


def keys(lead: Lead) -> list[tuple[Any, ...]]:
    return [decision_key(d)[:-1] for d in lead.decisions]


def timely(lead: Lead, event: LeadEvent) -> list[Any] | None:
    """Deliver an event on time: the watermark is just below its occurred_at."""
    return lead.apply(event, event.occurred_at - 1)


# -- met, breached, exact boundaries --------------------------------------------------


def test_timely_stop_is_met_with_its_elapsed_time() -> None:
    lead = Lead(MINIMAL)
    assert timely(lead, ev(HANDOFF, T0, "h1")) == []  # buffered until the watermark passes it
    assert timely(lead, ev(ATTEMPT, T0 + 20 * M, "a1", channel="call")) == [
        Handoff(None, T0),
        ClockStarted("first_touch", None),
    ]
    out = lead.advance(T0 + 20 * M)
    assert out[0] == Touch(None, T0 + 20 * M, 20 * M)
    d = out[1]
    assert isinstance(d, Decision)
    assert d == Decision(
        lead_id="L1",
        policy="first_touch",
        outcome="met",
        cycle=1,
        started_at=T0,
        deadline=T0 + H,
        decided_at=lead.now,
        watermark=T0 + 20 * M,
        stopped_at=T0 + 20 * M,
        elapsed_us=20 * M,
        team=None,
        rep=None,
        was_at_risk=False,
        decision_id=d.decision_id,
    )
    assert len(out) == 2
    assert lead.transitions[-1].quiet
    assert next_wake(lead.state) is None
    assert lead.advance(T0 + 30 * D) == []


@pytest.mark.parametrize(
    ("stop_after", "expected"),
    [
        (0, [decided("met", T0, T0 + H, T0, 0)]),
        (1, [decided("met", T0, T0 + H, T0 + 1, 1)]),
        (59 * M, [decided("met", T0, T0 + H, T0 + 59 * M, 59 * M)]),
        (H - 1, [decided("met", T0, T0 + H, T0 + H - 1, H - 1)]),
        (H, [decided("met", T0, T0 + H, T0 + H, H)]),  # exactly at the deadline: met
        (H + 1, [decided("breached", T0, T0 + H, None, None)]),  # the breach is decided first
        (3 * H, [decided("breached", T0, T0 + H, None, None)]),
    ],
)
def test_stop_relative_to_the_deadline(stop_after: int, expected: list[tuple[Any, ...]]) -> None:
    lead = Lead(MINIMAL)
    timely(lead, ev(HANDOFF, T0, "h1"))
    timely(lead, ev(CONNECTED, T0 + stop_after, "c1"))
    lead.advance(T0 + 30 * D)
    assert keys(lead) == expected
    late = lead.of(LateStop)
    assert late == ([LateStop("first_touch", None, stop_after)] if stop_after > H else [])


def test_no_stop_is_breached_only_when_the_watermark_is_strictly_past_the_deadline() -> None:
    lead = Lead(MINIMAL)
    timely(lead, ev(HANDOFF, T0, "h1"))
    assert lead.advance(T0) == [Handoff(None, T0), ClockStarted("first_touch", None)]
    assert next_wake(lead.state) == T0 + 48 * M  # at-risk at 80 % of the goal
    assert lead.advance(T0 + 48 * M) == [AtRisk("first_touch", None)]
    assert next_wake(lead.state) == T0 + H + 1
    assert lead.advance(T0 + H) == []
    (d,) = lead.advance(T0 + H + 1)
    assert isinstance(d, Decision)
    assert decision_key(d)[:-1] == decided("breached", T0, T0 + H, None, None)
    assert d.was_at_risk is True
    assert d.watermark == T0 + H + 1
    assert next_wake(lead.state) is None
    assert lead.advance(T0 + 30 * D) == []
    # Nothing scheduled: the lead stays until its state TTL, so a late stop
    # can still correct the breach.
    assert lead.transitions[-1].quiet and lead.state.clocks["first_touch"].last_open


def test_breach_without_any_event_even_when_the_watermark_jumps() -> None:
    lead = Lead(MINIMAL)
    timely(lead, ev(HANDOFF, T0, "h1"))
    out = lead.advance(T0 + 5 * D)
    assert out[:3] == [Handoff(None, T0), ClockStarted("first_touch", None), AtRisk("first_touch", None)]
    (d,) = out[3:]
    assert isinstance(d, Decision)
    assert decision_key(d)[:-1] == decided("breached", T0, T0 + H, None, None)


# -- arrival order ------------------------------------------------------------------


def test_stop_arriving_before_its_start_within_lateness_is_met() -> None:
    lead = Lead(MINIMAL)
    lead.apply(ev(CONNECTED, T0 + 10 * M, "c1"), T0 - 5 * M)
    lead.apply(ev(HANDOFF, T0, "h1"), T0 - 1)
    lead.advance(T0 + 30 * D)
    assert keys(lead) == [decided("met", T0, T0 + H, T0 + 10 * M, 10 * M)]


def test_stop_applied_before_a_late_start_is_still_matched() -> None:
    """The stop passed the watermark with no clock running (kept in the
    lead's log); the start arrives late, older than the watermark, and the
    clock is run in event-time order: the stop stops it."""
    lead = Lead(MINIMAL)
    lead.apply(ev(CONNECTED, T0 + 10 * M, "c1"), T0)
    lead.advance(T0 + 11 * M)
    assert lead.decisions == []
    lead.apply(ev(HANDOFF, T0, "h1"), T0 + 12 * M)
    assert keys(lead) == [decided("met", T0, T0 + H, T0 + 10 * M, 10 * M)]


def test_same_instant_start_and_stop_is_met_in_either_order() -> None:
    for ids in (("h1", "c1"), ("c1", "h1"), ("zz", "aa"), ("aa", "zz")):
        lead = Lead(MINIMAL)
        lead.apply(ev(HANDOFF, T0, ids[0]), T0 - 1)
        lead.apply(ev(CONNECTED, T0, ids[1]), T0 - 1)
        lead.advance(T0 + 30 * D)
        assert keys(lead) == [decided("met", T0, T0 + H, T0, 0)], ids


# -- duplicates -----------------------------------------------------------------------


@pytest.mark.parametrize("watermark", [T0 - 1, T0 + 5 * M, T0 + 2 * H])
def test_duplicate_event_id_is_ignored(watermark: int) -> None:
    lead = Lead(MINIMAL)
    timely(lead, ev(HANDOFF, T0, "h1"))
    lead.apply(ev(CONNECTED, T0 + 10 * M, "c1"), watermark)
    before = copy.deepcopy(lead.state)
    effects = list(lead.effects)
    assert lead.apply(ev(CONNECTED, T0 + 10 * M, "c1"), watermark) is None
    assert lead.apply(ev(HANDOFF, T0 + 20 * M, "c1"), watermark) is None  # same id, other payload
    assert lead.apply(ev(HANDOFF, T0, "h1"), watermark) is None
    assert lead.state == before
    assert lead.effects == effects


def test_duplicates_count_once() -> None:
    lead = Lead(MINIMAL)
    for _ in range(3):
        timely(lead, ev(HANDOFF, T0, "h1"))
        timely(lead, ev(ATTEMPT, T0 + 2 * H, "a1"))
    lead.advance(T0 + 30 * D)
    assert keys(lead) == [decided("breached", T0, T0 + H, None, None)]
    assert lead.of(ClockStarted) == [ClockStarted("first_touch", None)]
    assert lead.of(LateStop) == [LateStop("first_touch", None, 2 * H)]


# -- repeated starts and cycles ------------------------------------------------------


def test_repeated_start_does_not_reset_the_clock_with_keep() -> None:
    lead = Lead(MINIMAL)
    timely(lead, ev(HANDOFF, T0, "h1", team="emea"))
    timely(lead, ev(HANDOFF, T0 + 30 * M, "h2", team="emea"))
    timely(lead, ev(ATTEMPT, T0 + 80 * M, "a1"))
    lead.advance(T0 + 30 * D)
    assert keys(lead) == [decided("breached", T0, T0 + H, None, None)]
    assert lead.of(ClockStarted) == [ClockStarted("first_touch", "emea")]
    assert lead.of(LateStop) == [LateStop("first_touch", "emea", 80 * M)]


def test_repeated_start_restarts_the_clock_with_restart() -> None:
    lead = Lead(RESTART)
    timely(lead, ev(HANDOFF, T0, "h1"))
    timely(lead, ev(HANDOFF, T0 + 50 * M, "h2"))  # after the at-risk point (48m)
    timely(lead, ev(ATTEMPT, T0 + 80 * M, "a1"))
    lead.advance(T0 + 30 * D)
    assert keys(lead) == [decided("met", T0 + 50 * M, T0 + 110 * M, T0 + 80 * M, 30 * M)]
    assert lead.of(ClockStarted) == [ClockStarted("first_touch", None)]
    assert lead.of(AtRisk) == [AtRisk("first_touch", None)]
    # the restart cleared the at-risk flag on the gauges
    risky, calm = (ClockRef("first_touch", None, None, RUNNING, r) for r in (True, False))
    assert any(tr.closed == [risky] and tr.opened == [calm] for tr in lead.transitions)
    assert lead.gauges() == {}
    assert lead.decisions[0].was_at_risk is False


def test_re_handoff_to_another_team_moves_the_running_clock() -> None:
    lead = Lead(MINIMAL)
    timely(lead, ev(HANDOFF, T0, "h1", team="emea", rep="anna"))
    timely(lead, ev(HANDOFF, T0 + 10 * M, "h2", team="apac", rep="bo"))
    timely(lead, ev(ATTEMPT, T0 + 20 * M, "a1"))
    lead.advance(T0 + 30 * D)
    moves = [(tr.closed, tr.opened) for tr in lead.transitions if tr.closed and tr.opened]
    assert ([ClockRef("first_touch", "emea", "anna", RUNNING, False)],
            [ClockRef("first_touch", "apac", "bo", RUNNING, False)]) in moves
    assert lead.gauges() == {}
    assert lead.of(Handoff) == [Handoff("emea", T0), Handoff("apac", T0 + 10 * M)]
    assert lead.of(Touch) == [Touch("apac", T0 + 20 * M, 10 * M)]  # latency since the last handoff
    (d,) = lead.decisions
    assert (d.outcome, d.started_at, d.team, d.rep) == ("met", T0, "apac", "bo")


def test_a_later_start_after_a_decision_begins_a_new_cycle() -> None:
    lead = Lead(MINIMAL)
    timely(lead, ev(HANDOFF, T0, "h1"))
    timely(lead, ev(ATTEMPT, T0 + 10 * M, "a1"))
    timely(lead, ev(HANDOFF, T0 + 3 * H, "h2"))
    timely(lead, ev(ATTEMPT, T0 + 5 * H, "a2"))
    lead.advance(T0 + 30 * D)
    assert keys(lead) == [
        decided("met", T0, T0 + H, T0 + 10 * M, 10 * M),
        decided("breached", T0 + 3 * H, T0 + 4 * H, None, None, cycle=2),
    ]
    first, second = lead.decisions
    assert first.decision_id != second.decision_id
    assert lead.of(ClockStarted) == [ClockStarted("first_touch", None)] * 2


def test_a_late_resent_handoff_inside_a_decided_cycle_starts_nothing() -> None:
    """A CRM re-sends an old handoff under a new event id after its cycle was
    decided: in time order it was a repeated start, so no phantom breach."""
    lead = Lead(MINIMAL)
    timely(lead, ev(HANDOFF, T0, "h1"))
    timely(lead, ev(ATTEMPT, T0 + 10 * M, "a1"))
    lead.advance(T0 + 2 * H)
    assert [d.outcome for d in lead.decisions] == ["met"]
    out = lead.apply(ev(HANDOFF, T0 + 5 * M, "h1-resent"), T0 + 3 * H)
    assert out is not None and not [e for e in out if isinstance(e, (ClockStarted, Decision))]
    lead.advance(T0 + 30 * D)
    assert [d.outcome for d in lead.decisions] == ["met"]
    assert lead.of(ClockStarted) == [ClockStarted("first_touch", None)]


def test_two_cycles_starting_at_the_same_instant_get_different_ids() -> None:
    """A zero-length cycle (start and stop at one instant) followed by another
    start at that instant: each decided cycle has its own decision id."""
    lead = Lead(MINIMAL)
    for event in (ev(HANDOFF, T0, "h1"), ev(ATTEMPT, T0, "a1"), ev(HANDOFF, T0, "h2")):
        lead.apply(event, T0 - 1)
    lead.advance(T0 + 30 * D)
    ids = [d.decision_id for d in lead.decisions]
    assert len(ids) == len(set(ids))
    assert len(lead.decisions) == len(lead.of(ClockStarted))


# -- late stops: corrections and late stops ----------------------------------------


def test_late_stop_before_the_deadline_is_a_correction_not_a_rewrite() -> None:
    lead = Lead(MINIMAL)
    timely(lead, ev(HANDOFF, T0, "h1"))
    (breach,) = [e for e in lead.advance(T0 + H + 2 * M) if isinstance(e, Decision)]
    assert (breach.outcome, breach.stopped_at) == ("breached", None)

    out = lead.apply(ev(CONNECTED, T0 + 30 * M, "c1"), T0 + H + 3 * M)
    assert out is not None
    assert out[0] == Touch(None, T0 + 30 * M, 30 * M)
    corr = out[1]
    assert isinstance(corr, Decision)
    assert corr == Decision(
        lead_id="L1",
        policy="first_touch",
        outcome="corrected",
        cycle=1,
        started_at=T0,
        deadline=T0 + H,
        decided_at=lead.now,
        watermark=T0 + H + 3 * M,
        stopped_at=T0 + 30 * M,
        elapsed_us=30 * M,
        team=None,
        rep=None,
        was_at_risk=False,
        decision_id=corr.decision_id,
    )
    assert len(out) == 2
    assert corr.decision_id != breach.decision_id
    assert [d.outcome for d in lead.decisions] == ["breached", "corrected"]
    assert lead.transitions[-1].quiet
    # Only the first late stop corrects; the decision itself is never re-sent.
    lead.apply(ev(ATTEMPT, T0 + 40 * M, "a1"), T0 + H + 4 * M)
    lead.advance(T0 + 30 * D)
    assert [d.outcome for d in lead.decisions] == ["breached", "corrected"]


def test_late_stop_after_the_deadline_is_a_late_stop_without_a_decision() -> None:
    lead = Lead(MINIMAL)
    timely(lead, ev(HANDOFF, T0, "h1", team="emea"))
    lead.advance(T0 + 3 * H)
    out = lead.apply(ev(CONNECTED, T0 + 2 * H, "c1"), T0 + 3 * H)
    assert out == [Touch("emea", T0 + 2 * H, 2 * H), LateStop("first_touch", "emea", 2 * H)]
    assert [d.outcome for d in lead.decisions] == ["breached"]
    assert lead.transitions[-1].quiet


def test_correction_of_a_cycle_after_a_new_cycle_started_names_the_old_cycle() -> None:
    lead = Lead(MINIMAL)
    timely(lead, ev(HANDOFF, T0, "h1"))
    timely(lead, ev(HANDOFF, T0 + 2 * H, "h2"))
    lead.advance(T0 + 2 * H + M)
    out = lead.apply(ev(CONNECTED, T0 + 30 * M, "c1"), T0 + 2 * H + M)
    assert out is not None
    (corr,) = [e for e in out if isinstance(e, Decision)]
    assert decision_key(corr)[:-1] == decided("corrected", T0, T0 + H, T0 + 30 * M, 30 * M, cycle=1)
    lead.advance(T0 + 30 * D)
    assert keys(lead) == [
        decided("breached", T0, T0 + H, None, None),
        decided("corrected", T0, T0 + H, T0 + 30 * M, 30 * M),
        decided("breached", T0 + 2 * H, T0 + 3 * H, None, None, cycle=2),
    ]


def test_a_late_event_is_judged_at_its_arrival_watermark() -> None:
    """The lead's timer had not run when the late stop arrived: everything due
    at the arrival watermark happens first (the breach), then the late stop."""
    lead = Lead(MINIMAL)
    timely(lead, ev(HANDOFF, T0, "h1"))
    lead.apply(ev(CONNECTED, T0 + 30 * M, "c1"), T0 + 2 * H)
    assert keys(lead) == [
        decided("breached", T0, T0 + H, None, None),
        decided("corrected", T0, T0 + H, T0 + 30 * M, 30 * M),
    ]


# -- pause and resume -------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (  # paused 30 minutes: the deadline moves by 30 minutes
            [(RECYCLED, 10 * M), (MQL, 40 * M), (CONNECTED, 80 * M)],
            [decided("met", T0, T0 + 90 * M, T0 + 80 * M, 50 * M)],
        ),
        (
            [(RECYCLED, 10 * M), (MQL, 40 * M), (CONNECTED, 90 * M)],
            [decided("met", T0, T0 + 90 * M, T0 + 90 * M, H)],
        ),
        (
            [(RECYCLED, 10 * M), (MQL, 40 * M)],
            [decided("breached", T0, T0 + 90 * M, None, None)],
        ),
        (  # two pauses
            [(RECYCLED, 10 * M), (MQL, 20 * M), (RECYCLED, 30 * M), (MQL, 50 * M), (CONNECTED, 85 * M)],
            [decided("met", T0, T0 + 90 * M, T0 + 85 * M, 55 * M)],
        ),
        (  # stopped while paused: the time counted before the pause
            [(RECYCLED, 25 * M), (CONNECTED, 5 * H)],
            [decided("met", T0, T0 + H, T0 + 5 * H, 25 * M)],
        ),
        (  # a resume while running and a pause before the start change nothing
            [(MQL, 10 * M), (CONNECTED, 20 * M)],
            [decided("met", T0, T0 + H, T0 + 20 * M, 20 * M)],
        ),
    ],
)
def test_pause_and_resume(events: list[tuple[str, int]], expected: list[tuple[Any, ...]]) -> None:
    lead = Lead(PAUSING)
    timely(lead, ev(HANDOFF, T0, "h"))
    for i, (etype, at) in enumerate(events):
        timely(lead, ev(etype, T0 + at, f"e{i}"))
    lead.advance(T0 + 30 * D)
    assert keys(lead) == expected


def test_a_paused_clock_is_not_breached() -> None:
    lead = Lead(PAUSING)
    timely(lead, ev(HANDOFF, T0, "h"))
    timely(lead, ev(RECYCLED, T0 + 10 * M, "p"))
    assert lead.advance(T0 + 30 * D) == []
    assert lead.decisions == []
    assert lead.state.clocks["first_touch"].status == PAUSED
    assert next_wake(lead.state) is None


# -- business calendar --------------------------------------------------------------

FRI_1630 = ts("2026-11-27T16:30:00+01:00")
MON_0930 = ts("2026-11-30T09:30:00+01:00")


def test_business_hours_deadline_is_monday_morning() -> None:
    lead = Lead(OFFICE)
    timely(lead, ev(HANDOFF, FRI_1630, "h1"))
    lead.advance(FRI_1630)
    assert lead.state.clocks["first_touch"].deadline == MON_0930
    assert next_wake(lead.state) == ts("2026-11-30T09:18:00+01:00")  # 48 business minutes
    timely(lead, ev(ATTEMPT, ts("2026-11-30T09:15:00+01:00"), "a1"))
    lead.advance(ts("2026-12-01T00:00:00Z"))
    assert keys(lead) == [decided("met", FRI_1630, MON_0930, ts("2026-11-30T09:15:00+01:00"), 45 * M)]


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ("2026-11-28T12:00:00+01:00", ("met", 30 * M)),  # Saturday: no business time
        ("2026-11-30T09:30:00+01:00", ("met", H)),
        ("2026-11-30T09:30:00.000001+01:00", ("breached", None)),
    ],
)
def test_business_hours_outcomes(stop: str, expected: tuple[str, int | None]) -> None:
    lead = Lead(OFFICE)
    timely(lead, ev(HANDOFF, FRI_1630, "h1"))
    timely(lead, ev(CONNECTED, ts(stop), "c1"))
    lead.advance(ts("2026-12-05T00:00:00Z"))
    (d,) = lead.decisions
    assert (d.outcome, d.elapsed_us, d.deadline) == (*expected, MON_0930)


def test_business_hours_breach_needs_the_watermark_past_monday() -> None:
    lead = Lead(OFFICE)
    timely(lead, ev(HANDOFF, FRI_1630, "h1"))
    lead.advance(MON_0930)
    assert lead.decisions == []
    lead.advance(MON_0930 + 1)
    assert keys(lead) == [decided("breached", FRI_1630, MON_0930, None, None)]


# -- at risk ---------------------------------------------------------------------------


def test_at_risk_is_emitted_once() -> None:
    lead = Lead(MINIMAL)
    timely(lead, ev(HANDOFF, T0, "h1"))
    assert lead.advance(T0 + 48 * M - 1) == [Handoff(None, T0), ClockStarted("first_touch", None)]
    assert lead.advance(T0 + 48 * M) == [AtRisk("first_touch", None)]
    assert lead.advance(T0 + 50 * M) == []
    timely(lead, ev(ATTEMPT, T0 + 55 * M, "a1"))
    lead.advance(T0 + 30 * D)
    assert lead.of(AtRisk) == [AtRisk("first_touch", None)]
    (d,) = lead.decisions
    assert (d.outcome, d.was_at_risk) == ("met", True)


def test_stop_before_the_at_risk_point_never_warns() -> None:
    lead = Lead(MINIMAL)
    timely(lead, ev(HANDOFF, T0, "h1"))
    timely(lead, ev(ATTEMPT, T0 + 48 * M, "a1"))  # events at an instant come before the warning
    lead.advance(T0 + 30 * D)
    assert lead.of(AtRisk) == []
    assert lead.decisions[0].was_at_risk is False


def test_at_risk_fraction_is_read_from_the_policy() -> None:
    ps = pol(MINIMAL_YAML + "    at_risk: 0.25\n")
    lead = Lead(ps)
    timely(lead, ev(HANDOFF, T0, "h1"))
    lead.advance(T0)
    assert next_wake(lead.state) == T0 + 15 * M


# -- decision ids and several policies ---------------------------------------------


def _run(policies: PolicySet, lead_id: str, start: int, stop: int | None) -> list[Decision]:
    lead = Lead(policies, lead_id=lead_id)
    timely(lead, ev(HANDOFF, start, "h1", lead_id=lead_id))
    if stop is not None:
        timely(lead, ev(CONNECTED, stop, "c1", lead_id=lead_id))
    lead.advance(start + 30 * D)
    return lead.decisions


def test_decision_id_is_stable_and_distinct() -> None:
    a = _run(MINIMAL, "L1", T0, T0 + M)
    assert a == _run(MINIMAL, "L1", T0, T0 + M)  # same inputs, same id (and same decision)
    assert a[0].decision_id == _run(MINIMAL, "L1", T0, T0 + 2 * M)[0].decision_id  # same clock
    ids = {
        a[0].decision_id,
        _run(MINIMAL, "L2", T0, T0 + M)[0].decision_id,
        _run(MINIMAL, "L1", T0 + 1, T0 + M)[0].decision_id,
    }
    assert len(ids) == 3
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    several = _run(SEVERAL, "L1", T0, T0 + M)
    assert len({d.decision_id for d in several}) == 3
    assert decision_id("L1", "first_touch", T0, "decided") != decision_id("L1", "acceptance", T0, "decided")


def test_several_policies_each_get_their_own_clock_from_one_handoff() -> None:
    lead = Lead(SEVERAL)
    timely(lead, ev(HANDOFF, T0, "h1", team="emea"))  # Monday 11:00 Berlin
    timely(lead, ev(CONNECTED, T0 + 30 * M, "c1"))
    timely(lead, ev("lead.accepted", T0 + D, "a1"))
    lead.advance(T0 + 30 * D)
    assert lead.of(ClockStarted) == [
        ClockStarted("first_touch", "emea"),
        ClockStarted("acceptance", "emea"),
        ClockStarted("office_connect", "emea"),
    ]
    assert sorted(keys(lead)) == sorted(
        [
            decided("met", T0, T0 + H, T0 + 30 * M, 30 * M),
            decided("met", T0, T0 + 4 * H, T0 + 30 * M, 30 * M, policy="office_connect"),
            decided("met", T0, T0 + 2 * D, T0 + D, D, policy="acceptance"),
        ]
    )
    assert {d.team for d in lead.decisions} == {"emea"}


def test_irrelevant_events_change_nothing() -> None:
    lead = Lead(MINIMAL)
    assert timely(lead, ev("deal.won", T0, "w1", amount=10.0, currency="EUR")) == []
    assert lead.state.buffer == () and lead.state.clocks == {}
    assert timely(lead, ev("deal.won", T0, "w1")) is None  # but it was seen


# -- properties -------------------------------------------------------------------------

PROPERTY_POLICIES = pol(
    OFFICE_CALENDAR_YAML
    + """
policies:
  - name: first_touch
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected, lead.disqualified, lead.recycled]
    goal: 1h
  - name: paused_touch
    start: lead.handed_off
    stop: lead.connected
    pause: lead.recycled
    resume: lead.mql
    goal: 90m
  - name: restarting
    start: [lead.handed_off, lead.mql]
    stop: lead.contact_attempt
    goal: 45m
    on_restart: restart
    at_risk: 0.5
  - name: office_touch
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected]
    goal: 2h
    calendar: office
"""
)
BASE = ts("2026-11-27T15:00:00+01:00")  # Friday afternoon: office clocks cross the weekend
FAR = BASE + 30 * D
TYPES = [HANDOFF, HANDOFF, ATTEMPT, CONNECTED, RECYCLED, MQL, "lead.disqualified", "deal.won"]

# (type, offset) pairs: offsets on a 5-minute grid (many ties and exact
# deadlines) or anywhere within a few hours.
event_specs = st.lists(
    st.tuples(
        st.sampled_from(TYPES),
        st.one_of(st.integers(0, 5 * 12).map(lambda k: k * 5 * M), st.integers(0, 5 * H)),
    ),
    min_size=1,
    max_size=12,
)


def make_events(specs: list[tuple[str, int]]) -> list[LeadEvent]:
    return [ev(t, BASE + off, f"evt-{i}") for i, (t, off) in enumerate(specs)]


def effect_key(e: Any) -> Any:
    return decision_key(e) if isinstance(e, Decision) else e


def in_time_order(policies: PolicySet, events: list[LeadEvent]) -> Lead:
    lead = Lead(policies)
    for e in sorted(events, key=lambda e: e.occurred_at):
        lead.apply(e, e.occurred_at - 1)
    lead.advance(FAR)
    return lead


@settings(max_examples=250, deadline=None)
@given(event_specs, st.data())
def test_any_arrival_order_within_lateness_gives_the_same_decisions(
    specs: list[tuple[str, int]], data: st.DataObject
) -> None:
    events = make_events(specs)
    reference = in_time_order(PROPERTY_POLICIES, events)

    order = data.draw(st.permutations(events))
    lead = Lead(PROPERTY_POLICIES)
    w = BASE - H
    for i, e in enumerate(order):
        # The watermark only moves forward and stays below every event still to come.
        limit = min(x.occurred_at for x in order[i:]) - 1
        w = data.draw(st.integers(w, max(w, limit)))
        if data.draw(st.booleans()):
            lead.advance(w)
        lead.apply(e, w)
    lead.advance(FAR)

    assert Counter(map(decision_key, lead.decisions)) == Counter(map(decision_key, reference.decisions))
    assert Counter(map(effect_key, lead.effects)) == Counter(map(effect_key, reference.effects))


@settings(max_examples=250, deadline=None)
@given(event_specs, st.data())
def test_each_clock_cycle_is_decided_exactly_once(specs: list[tuple[str, int]], data: st.DataObject) -> None:
    events = data.draw(st.permutations(make_events(specs)))
    lead = Lead(PROPERTY_POLICIES)
    w = BASE - H
    for e in events:
        # any arrival, late ones included
        w = data.draw(st.integers(w, w + 2 * H))
        lead.apply(e, w)
    lead.advance(FAR)

    decisions = [d for d in lead.decisions if d.outcome != "corrected"]
    ids = [d.decision_id for d in decisions]
    assert len(ids) == len(set(ids))
    for name in PROPERTY_POLICIES.names:
        started = sum(1 for e in lead.of(ClockStarted) if e.policy == name)
        open_now = int(lead.state.clocks.get(name) is not None and lead.state.clocks[name].status != IDLE)
        assert sum(1 for d in decisions if d.policy == name) == started - open_now
        cycles = [d.cycle for d in decisions if d.policy == name]
        assert sorted(cycles) == list(range(1, len(cycles) + 1))
    # after advancing far, only a paused clock may still be open
    assert all(c.status != RUNNING for c in lead.state.clocks.values())
    # a correction only ever follows a breach of the same clock, once
    corrections = [d for d in lead.decisions if d.outcome == "corrected"]
    breaches = {
        (d.policy, d.cycle, d.started_at)
        for d in decisions
        if d.outcome == "breached" and d.stopped_at is None
    }
    assert {(d.policy, d.cycle, d.started_at) for d in corrections} <= breaches
    assert len({(d.policy, d.cycle) for d in corrections}) == len(corrections)
    assert len({d.decision_id for d in corrections}) == len(corrections)
    assert all(d.stopped_at is not None and d.stopped_at <= d.deadline for d in corrections)


def oracle(events: list[LeadEvent], goal: int) -> list[tuple[Any, ...]]:
    """The contract's minimal form, written out: one clock, 24x7, event-time order."""
    starts = {HANDOFF}
    stops = {ATTEMPT, CONNECTED, "lead.disqualified", RECYCLED}
    out: list[tuple[Any, ...]] = []
    running: int | None = None
    cycle = 0
    for e in sorted(events, key=lambda e: e.occurred_at):
        t = e.occurred_at
        if running is not None and t > running + goal:
            out.append(decided("breached", running, running + goal, None, None, cycle=cycle))
            running = None
        if e.type in starts and running is None:
            running, cycle = t, cycle + 1
        elif e.type in stops and running is not None:
            out.append(decided("met", running, running + goal, t, t - running, cycle=cycle))
            running = None
    if running is not None:
        out.append(decided("breached", running, running + goal, None, None, cycle=cycle))
    return out


distinct_specs = st.lists(
    st.tuples(st.sampled_from(TYPES), st.integers(0, 6 * 12)),
    min_size=1,
    max_size=12,
    unique_by=lambda x: x[1],
).map(lambda xs: [(t, k * 5 * M + (k % 7)) for t, k in xs])


@settings(max_examples=300, deadline=None)
@given(distinct_specs, st.data())
def test_minimal_policy_met_iff_elapsed_within_goal(
    specs: list[tuple[str, int]], data: st.DataObject
) -> None:
    events = make_events(specs)
    order = data.draw(st.permutations(events))
    lead = Lead(MINIMAL)
    w = BASE - H
    for i, e in enumerate(order):
        w = max(w, min(x.occurred_at for x in order[i:]) - 1)
        lead.apply(e, w)
    lead.advance(FAR)

    goal = MINIMAL.policies[0].goal_us
    for d in lead.decisions:
        assert d.deadline == d.started_at + goal
        if d.outcome == "met":
            assert d.elapsed_us is not None and d.stopped_at is not None
            assert d.elapsed_us == d.stopped_at - d.started_at <= goal
        else:
            assert d.outcome == "breached"
            assert d.elapsed_us is None or d.elapsed_us > goal
    assert [decision_key(d)[:-1] for d in lead.decisions] == oracle(events, goal)
    late = [e.elapsed_us for e in lead.of(LateStop)]
    assert all(x > goal for x in late)


@settings(max_examples=150, deadline=None)
@given(event_specs, st.lists(st.integers(0, 3 * H), min_size=12, max_size=12), st.data())
def test_extra_advance_calls_change_nothing(
    specs: list[tuple[str, int]], steps: list[int], data: st.DataObject
) -> None:
    """Whether the lead's timer ran before an event arrived (late or not) does
    not change any decision: only the (event, watermark) sequence matters."""
    events = data.draw(st.permutations(make_events(specs)))
    arrivals = []
    w = BASE - H
    for e, step in zip(events, steps, strict=False):
        w += step
        arrivals.append((e, w))

    plain, timed = Lead(PROPERTY_POLICIES), Lead(PROPERTY_POLICIES)
    prev = BASE - H
    for e, w in arrivals:
        plain.apply(e, w)
        timed.advance(data.draw(st.integers(prev, w)))
        timed.advance(w)
        timed.apply(e, w)
        prev = w
    plain.advance(FAR)
    timed.advance(FAR)
    assert Counter(map(effect_key, plain.effects)) == Counter(map(effect_key, timed.effects))


@settings(max_examples=100, deadline=None)
@given(event_specs, st.data())
def test_redelivering_everything_changes_nothing(specs: list[tuple[str, int]], data: st.DataObject) -> None:
    events = make_events(specs)
    reference = in_time_order(PROPERTY_POLICIES, events)
    lead = Lead(PROPERTY_POLICIES)
    for e in sorted(events + data.draw(st.permutations(events)), key=lambda e: e.occurred_at):
        lead.apply(e, e.occurred_at - 1)
    lead.advance(FAR)
    assert Counter(map(effect_key, lead.effects)) == Counter(map(effect_key, reference.effects))


def test_state_is_a_plain_value() -> None:
    """LeadState compares by value (the streams layer stores and restores it)."""
    a, b = Lead(MINIMAL), Lead(MINIMAL)
    for lead in (a, b):
        timely(lead, ev(HANDOFF, T0, "h1"))
        lead.advance(T0 + M)
    assert a.state == b.state
    assert a.state != LeadState()


# -- bounded memory and changed policies ----------------------------------------------


def test_dedupe_memory_is_the_last_64_event_ids() -> None:
    lead = Lead(MINIMAL)
    for i in range(64):
        assert timely(lead, ev("deal.won", T0 + i, f"w{i}")) == []
    assert timely(lead, ev("deal.won", T0, "w0")) is None
    assert timely(lead, ev("deal.won", T0 + 64, "w64")) == []
    assert timely(lead, ev("deal.won", T0, "w0")) == []  # forgotten: counts again
    assert timely(lead, ev("deal.won", T0 + 2, "w2")) is None


def test_buffer_is_bounded_by_applying_the_oldest_early() -> None:
    lead = Lead(MINIMAL)
    w = T0 - D
    assert lead.apply(ev(HANDOFF, T0, "h"), w) == []
    for i in range(255):
        assert lead.apply(ev(RECYCLED, T0 + H + i * M, f"r{i}"), w) == []
    assert len(lead.state.buffer) == 256
    out = lead.apply(ev(RECYCLED, T0 + 2 * D, "r-last"), w)
    assert out == [Handoff(None, T0), ClockStarted("first_touch", None)]
    assert len(lead.state.buffer) == 256


def test_buffered_roles_of_a_policy_that_no_longer_exists_are_skipped() -> None:
    """Roles are computed on arrival; after a reload without that policy the
    buffered event is still applied, for the policies that remain."""
    lead = Lead(SEVERAL)
    timely(lead, ev(HANDOFF, T0, "h1"))
    lead.policies = MINIMAL
    lead.advance(T0 + 2 * H)
    assert lead.of(ClockStarted) == [ClockStarted("first_touch", None)]
    assert keys(lead) == [decided("breached", T0, T0 + H, None, None)]


def test_open_clocks_counts_received_starts_but_not_one_inside_a_decided_cycle() -> None:
    lead = Lead(MINIMAL)
    lead.apply(ev(HANDOFF, T0, "h1", team="emea"), T0 - M)  # buffered: the watermark is behind it
    assert open_clocks(lead.state) == {"first_touch": "emea"}
    lead.apply(ev(ATTEMPT, T0 + 10 * M, "a1"), T0 - M)
    assert open_clocks(lead.state) == {"first_touch": "emea"}  # stopped in event time, not decided yet
    lead.advance(T0 + H)
    assert [d.outcome for d in lead.decisions] == ["met"]
    assert open_clocks(lead.state) == {}
    lead.apply(ev(HANDOFF, T0 + 5 * M, "h1-resent", team="emea"), T0 + H)  # late, inside the decided cycle
    assert open_clocks(lead.state) == {}
    lead.apply(ev(HANDOFF, T0 + 2 * H, "h2", team="apac"), T0 + H)  # a new cycle, not reached yet
    assert open_clocks(lead.state) == {"first_touch": "apac"}


MAX_PAUSE = pol("""
policies:
  - name: disposition
    start: lead.handed_off
    stop: lead.qualified
    pause: lead.accepted
    resume: lead.connected
    goal: 2h
    max_pause: 1h
""")


def test_a_pause_longer_than_max_pause_ends_by_itself() -> None:
    lead = Lead(MAX_PAUSE)
    timely(lead, ev(HANDOFF, T0, "h"))
    timely(lead, ev("lead.accepted", T0 + 30 * M, "p"))  # paused after 30 min, never resumed
    lead.advance(T0 + 90 * M)
    assert lead.of(PauseExpired) == [PauseExpired("disposition", None)]  # at 30 min + 1 h
    assert lead.decisions == []
    # 30 min used, the clock runs again from T0 + 90 min: 90 min left.
    lead.advance(T0 + 3 * H)
    assert lead.decisions == []
    lead.advance(T0 + 3 * H + 1_000_000)
    assert [(d.outcome, d.deadline) for d in lead.decisions] == [("breached", T0 + 3 * H)]


def test_a_resume_within_max_pause_is_an_ordinary_resume() -> None:
    lead = Lead(MAX_PAUSE)
    timely(lead, ev(HANDOFF, T0, "h"))
    timely(lead, ev("lead.accepted", T0 + 30 * M, "p"))
    timely(lead, ev("lead.connected", T0 + 60 * M, "r"))
    timely(lead, ev("lead.qualified", T0 + 140 * M, "q"))
    lead.advance(T0 + 10 * H)
    assert lead.of(PauseExpired) == []
    assert [(d.outcome, d.elapsed_us) for d in lead.decisions] == [("met", 110 * M)]


def test_the_empty_transition_the_clock_builds_equals_the_dataclass_default() -> None:
    """apply and advance start from _transition(), a faster Transition():
    every field set, all empty (a field added to Transition and not there
    fails here)."""
    from leadsla.models.clock import Transition, _transition

    built = _transition()
    assert built == Transition() and built.quiet and not built.duplicate
    assert built.decisions is not _transition().decisions


def test_clock_records_come_from_a_bounded_cache_and_equal_fresh_ones() -> None:
    from leadsla.models import clock as clock_module
    from leadsla.models.clock import (
        PENDING,
        RUNNING,
        AtRisk,
        ClockRef,
        ClockStarted,
        _at_risk_record,
        _clock_ref,
        _started_record,
    )

    for cycle in (1, 2):
        started = _started_record("first_touch", "emea", "r1", cycle)
        assert (started, started.cycle) == (ClockStarted("first_touch", "emea", "r1", cycle), cycle)
        risk = _at_risk_record("first_touch", None, cycle)
        assert (risk, risk.cycle) == (AtRisk("first_touch", None, cycle), cycle)

    shown = ("emea", "r1", RUNNING, True)
    assert _clock_ref("first_touch", shown) == ClockRef("first_touch", "emea", "r1", RUNNING, True)
    assert _clock_ref("first_touch", shown) is _clock_ref("first_touch", ("emea", "r1", RUNNING, True))
    assert _clock_ref("first_touch", ("emea", None, PENDING, False)) == ClockRef("first_touch", "emea", None, PENDING, False)
    for i in range(clock_module._RECORDS_KEPT + 10):
        assert _clock_ref("p", (f"team{i}", None, RUNNING, False)).team == f"team{i}"
    assert len(clock_module._RECORDS) <= clock_module._RECORDS_KEPT
