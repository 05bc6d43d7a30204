"""Late arrivals: every role's rule for an event older than the watermark
(the README's table), and properties over any arrival order at any lateness.
Time is epoch microseconds; the watermark and processing time are passed in."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from leadsla.models.clock import IDLE, PAUSED, RUNNING, TooLate, id_hash, next_wake, open_clocks
from leadsla.models.events import LeadEvent
from tests.models.conftest import MINIMAL_YAML, D, H, Lead, M, S, decision_key, ev, pol, ts

T0 = ts("2026-11-23T10:00:00Z")
LATENESS = 2 * M
HANDOFF, ATTEMPT, CONNECTED, RECYCLED, QUALIFIED = (
    "lead.handed_off", "lead.contact_attempt", "lead.connected", "lead.recycled", "lead.qualified")
MINIMAL = pol(MINIMAL_YAML)
PAUSING = pol("""
policies:
  - name: disposition
    start: lead.handed_off
    stop: lead.qualified
    pause: lead.recycled
    resume: lead.connected
    goal: 2h
""")


def outcomes(lead: Lead) -> list[tuple[Any, ...]]:
    return [(d.policy, d.outcome, d.started_at, d.deadline, d.stopped_at, d.team) for d in lead.decisions]


# -- pause and resume arriving late --------------------------------------------------


def test_a_late_pause_before_an_applied_resume_is_run_in_event_time_order() -> None:
    """Handoff 10:00, resume 11:30, then a pause dated 10:30 arriving 70
    minutes late: in time order 30 minutes were used before the pause and the
    clock resumed at 11:30 with 90 minutes left, so it is breached at 13:00,
    never paused for ever."""
    lead = Lead(PAUSING)
    lead.apply(ev(HANDOFF, T0, "h"), T0 - 1)
    lead.apply(ev(CONNECTED, T0 + 90 * M, "r"), T0 + 90 * M - 1)
    lead.advance(T0 + 90 * M)
    lead.apply(ev(RECYCLED, T0 + 30 * M, "p"), T0 + 100 * M)  # 70 minutes behind the watermark
    c = lead.state.clocks["disposition"]
    assert (c.status, c.consumed, c.deadline) == (RUNNING, 30 * M, T0 + 3 * H)
    assert next_wake(lead.state) == T0 + 156 * M  # at risk at 96 of 120 minutes used
    lead.advance(T0 + 3 * H)
    assert lead.decisions == []
    lead.advance(T0 + 3 * H + 1)
    assert outcomes(lead) == [("disposition", "breached", T0, T0 + 3 * H, None, None)]
    assert lead.gauges() == {} and open_clocks(lead.state) == {}


def test_a_late_resume_resumes_a_clock_paused_before_it() -> None:
    lead = Lead(PAUSING)
    lead.apply(ev(HANDOFF, T0, "h"), T0 - 1)
    lead.apply(ev(RECYCLED, T0 + 30 * M, "p"), T0 + 30 * M - 1)
    lead.advance(T0 + 5 * H)
    assert lead.state.clocks["disposition"].status == PAUSED
    lead.apply(ev(CONNECTED, T0 + H, "r"), T0 + 5 * H)  # resumed at 11:00 in event time
    # 30 minutes used, 90 left from 11:00: due 12:30, and the watermark is past it
    assert outcomes(lead) == [("disposition", "breached", T0, T0 + 150 * M, None, None)]


def test_a_late_stop_inside_the_open_cycle_stops_it_at_its_time() -> None:
    lead = Lead(PAUSING)
    lead.apply(ev(HANDOFF, T0, "h"), T0 - 1)
    lead.apply(ev(RECYCLED, T0 + 30 * M, "p"), T0 + 30 * M - 1)
    lead.advance(T0 + 3 * H)
    lead.apply(ev(QUALIFIED, T0 + 20 * M, "q"), T0 + 3 * H)  # before the pause
    assert [(d.outcome, d.stopped_at, d.elapsed_us) for d in lead.decisions] == [("met", T0 + 20 * M, 20 * M)]
    assert lead.state.clocks["disposition"].status == IDLE


# -- starts arriving late ---------------------------------------------------------------


def test_a_history_import_of_a_handoff_and_its_follow_up_is_met() -> None:
    """A handoff dated two days ago and its follow-up 20 minutes later are
    published together into a live monitor: the handoff's clock is overdue on
    arrival, but it is judged only one allowed lateness after it arrived, so
    the follow-up counts."""
    now = T0 + 2 * D
    lead = Lead(MINIMAL, now=now)
    w = now - LATENESS
    lead.apply(ev(HANDOFF, T0, "h", team="emea"), w)
    assert lead.decisions == []
    assert next_wake(lead.state) == now + 1  # judged once the watermark reaches its arrival
    lead.apply(ev(ATTEMPT, T0 + 20 * M, "a"), w + S)
    lead.advance(now + LATENESS)
    assert outcomes(lead) == [("first_touch", "met", T0, T0 + H, T0 + 20 * M, "emea")]
    assert [d.outcome for d in lead.decisions] == ["met"]  # no breach, no correction


def test_a_late_start_without_its_follow_up_is_breached_after_one_lateness() -> None:
    now = T0 + 2 * D
    lead = Lead(MINIMAL, now=now)
    lead.apply(ev(HANDOFF, T0, "h"), now - LATENESS)
    lead.advance(now)
    assert lead.decisions == []
    lead.advance(now + 1)
    assert outcomes(lead) == [("first_touch", "breached", T0, T0 + H, None, None)]


def test_a_late_start_before_the_running_one_moves_the_start_back() -> None:
    lead = Lead(MINIMAL)
    lead.apply(ev(HANDOFF, T0 + 30 * M, "h2", team="emea"), T0 + 30 * M - 1)
    lead.advance(T0 + 40 * M)
    lead.apply(ev(HANDOFF, T0, "h1", team="emea"), T0 + 40 * M)
    assert lead.state.clocks["first_touch"].started_at == T0
    lead.advance(T0 + 2 * H)
    assert outcomes(lead) == [("first_touch", "breached", T0, T0 + H, None, "emea")]
    assert len(lead.of_started()) == 1


def test_a_late_older_handoff_never_takes_the_clock_from_a_newer_owner() -> None:
    lead = Lead(MINIMAL)
    lead.apply(ev(HANDOFF, T0, "h1", team="emea", rep="anna"), T0 - 1)
    lead.apply(ev(HANDOFF, T0 + 10 * M, "h2", team="apac", rep="bo"), T0 + 10 * M - 1)
    lead.advance(T0 + 20 * M)
    lead.apply(ev(HANDOFF, T0 + 5 * M, "h-old", team="latam", rep="cy"), T0 + 20 * M)  # late, older
    c = lead.state.clocks["first_touch"]
    assert (c.team, c.rep) == ("apac", "bo")
    assert (lead.state.owner_team, lead.state.owner_rep) == ("apac", "bo")
    assert open_clocks(lead.state) == {"first_touch": "apac"}
    lead.advance(T0 + 2 * H)
    (d,) = lead.decisions
    assert (d.outcome, d.team, d.rep) == ("breached", "apac", "bo")
    assert lead.gauges() == {}


def test_a_late_stop_splits_the_open_cycle_and_a_later_start_begins_the_next() -> None:
    lead = Lead(MINIMAL)
    lead.apply(ev(HANDOFF, T0, "h1"), T0 - 1)
    lead.apply(ev(HANDOFF, T0 + 40 * M, "h2"), T0 + 40 * M - 1)  # a repeated start, for now
    lead.advance(T0 + 50 * M)
    lead.apply(ev(ATTEMPT, T0 + 30 * M, "a1"), T0 + 50 * M)  # late: the first cycle ended at 10:30
    assert [(d.outcome, d.cycle, d.stopped_at) for d in lead.decisions] == [("met", 1, T0 + 30 * M)]
    c = lead.state.clocks["first_touch"]
    assert (c.status, c.cycle, c.started_at) == (RUNNING, 2, T0 + 40 * M)
    lead.advance(T0 + 3 * H)
    assert [(d.outcome, d.cycle) for d in lead.decisions] == [("met", 1), ("breached", 2)]


# -- too late: inside or before a decided cycle ---------------------------------------


def test_events_inside_a_decided_cycle_are_counted_and_kept_in_the_timeline() -> None:
    lead = Lead(PAUSING)
    lead.apply(ev(HANDOFF, T0, "h"), T0 - 1)
    lead.apply(ev(QUALIFIED, T0 + H, "q"), T0 + H - 1)
    lead.advance(T0 + 2 * H)
    assert [d.outcome for d in lead.decisions] == ["met"]
    lead.apply(ev(RECYCLED, T0 + 10 * M, "p"), T0 + 2 * H)
    lead.apply(ev(CONNECTED, T0 + 20 * M, "r"), T0 + 2 * H)
    lead.apply(ev(HANDOFF, T0 + 30 * M, "h-resent"), T0 + 2 * H)
    lead.apply(ev(QUALIFIED, T0 + 40 * M, "q2"), T0 + 2 * H)
    assert lead.of(TooLate) == [
        TooLate("disposition", "pause", T0 + 10 * M),
        TooLate("disposition", "resume", T0 + 20 * M),
        TooLate("disposition", "start", T0 + 30 * M),
        TooLate("disposition", "stop", T0 + 40 * M),
    ]
    assert [(t, p, r) for t, p, r in lead.state.too_late] == [
        (T0 + 10 * M, "disposition", "pause"), (T0 + 20 * M, "disposition", "resume"),
        (T0 + 30 * M, "disposition", "start"), (T0 + 40 * M, "disposition", "stop")]
    assert [d.outcome for d in lead.decisions] == ["met"]
    assert lead.gauges() == {}


def test_a_late_stop_before_a_breached_deadline_is_still_a_correction() -> None:
    lead = Lead(MINIMAL)
    lead.apply(ev(HANDOFF, T0, "h"), T0 - 1)
    lead.advance(T0 + 2 * H)
    lead.apply(ev(ATTEMPT, T0 + 30 * M, "a"), T0 + 2 * H)
    assert [d.outcome for d in lead.decisions] == ["breached", "corrected"]
    assert lead.of(TooLate) == []


# -- properties --------------------------------------------------------------------------

# Every pause ends (max_pause), so at a far watermark every clock is decided.
ENDING = pol("""
calendars:
  office:
    timezone: Europe/Berlin
    hours: {mon-fri: "09:00-17:00"}
policies:
  - name: first_touch
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected, lead.disqualified]
    goal: 1h
  - name: disposition
    start: lead.handed_off
    stop: [lead.qualified, lead.disqualified]
    pause: lead.recycled
    resume: lead.connected
    max_pause: 45m
    goal: 2h
  - name: restarting
    start: [lead.handed_off, lead.mql]
    stop: lead.contact_attempt
    goal: 45m
    on_restart: restart
    at_risk: 0.5
  - name: office_touch
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected]
    pause: lead.recycled
    resume: lead.mql
    max_pause: 3h
    goal: 2h
    calendar: office
  - name: depth
    start: lead.handed_off
    attempt: lead.contact_attempt
    min_attempts: 3
    stop: lead.connected
    give_up: [lead.disqualified, lead.qualified]
    goal: 2h
""")
BASE = ts("2026-11-27T15:00:00+01:00")
FAR = BASE + 40 * D
TYPES = [HANDOFF, HANDOFF, ATTEMPT, ATTEMPT, ATTEMPT, CONNECTED, RECYCLED, "lead.mql", QUALIFIED, "lead.disqualified",
         "deal.won"]
TEAMS = [None, "emea", "apac"]

specs = st.lists(
    st.tuples(
        st.sampled_from(TYPES),
        st.one_of(st.integers(0, 5 * 12).map(lambda k: k * 5 * M), st.integers(0, 6 * H)),
        st.sampled_from(TEAMS),
    ),
    min_size=1,
    max_size=14,
)


def make(spec: list[tuple[str, int, str | None]]) -> list[LeadEvent]:
    return [ev(t, BASE + off, f"e{i}", **({"team": team} if team else {})) for i, (t, off, team) in enumerate(spec)]


@settings(max_examples=300, deadline=None)
@given(specs, st.data())
def test_any_order_at_any_lateness_decides_every_started_clock_exactly_once(
    spec: list[tuple[str, int, str | None]], data: st.DataObject
) -> None:
    events = data.draw(st.permutations(make(spec)))
    lead = Lead(ENDING, now=BASE - D)
    w = BASE - H
    for e in events:
        # the watermark moves forward by anything from nothing to hours, so
        # events arrive on time, a little late or far too late
        w = data.draw(st.integers(w, w + 3 * H))
        if data.draw(st.booleans()):
            lead.advance(w)
        lead.now = max(lead.now, w + data.draw(st.integers(0, LATENESS)))  # processing time ≥ watermark
        lead.apply(e, w)
    lead.now = FAR - D
    lead.advance(FAR)

    # no clock is left undecided, and the gauges are back at zero
    assert all(c.status == IDLE for c in lead.state.clocks.values())
    assert lead.state.shown == {} and lead.gauges() == {}
    decided = [d for d in lead.decisions if d.outcome != "corrected"]
    assert len({d.decision_id for d in decided}) == len(decided)
    for name in ENDING.names:
        started = [s for s in lead.of_started() if s.policy == name]
        mine = [d for d in decided if d.policy == name]
        assert len(mine) == len(started), name
        assert sorted(d.cycle for d in mine) == list(range(1, len(mine) + 1))
    corrections = [d for d in lead.decisions if d.outcome == "corrected"]
    assert len({(d.policy, d.cycle) for d in corrections}) == len(corrections)


@settings(max_examples=200, deadline=None)
@given(specs, st.data())
def test_the_gauges_always_equal_the_open_clocks(spec: list[tuple[str, int, str | None]], data: st.DataObject) -> None:
    events = data.draw(st.permutations(make(spec)))
    lead = Lead(ENDING)
    w = BASE - H
    for e in events:
        w = data.draw(st.integers(w, w + 2 * H))
        lead.apply(e, w)
        opened = Counter({(p, t): 1 for p, t in open_clocks(lead.state).items()})
        assert lead.gauges() == dict(opened)
        running = {n for n, c in lead.state.clocks.items() if c.status in (RUNNING, PAUSED)}
        assert running <= set(open_clocks(lead.state))


@settings(max_examples=200, deadline=None)
@given(specs, st.data())
def test_late_events_in_event_time_order_match_the_time_ordered_run(
    spec: list[tuple[str, int, str | None]], data: st.DataObject
) -> None:
    """Events that all arrive behind the watermark, but in event-time order,
    decide exactly what the on-time run decides (each is dated after every
    decision already made)."""
    # event-time order as the clocks define it: ties by the event id's hash
    events = sorted(make(spec), key=lambda e: (e.occurred_at, id_hash(e.event_id)))
    on_time, late = Lead(ENDING), Lead(ENDING)
    for e in events:
        on_time.apply(e, e.occurred_at - 1)
        late.advance(e.occurred_at - 1)
        late.apply(e, e.occurred_at)
    on_time.advance(FAR)
    late.advance(FAR)
    assert sorted(map(decision_key, late.decisions)) == sorted(map(decision_key, on_time.decisions))


def test_a_late_stop_still_stops_a_clock_whose_history_outgrew_the_log() -> None:
    lead = Lead(PAUSING)
    lead.apply(ev(HANDOFF, T0, "h"), T0 - 1)
    for i in range(40):  # resumes while running change nothing, but fill the log
        lead.apply(ev(CONNECTED, T0 + (i + 2) * S, f"r{i}"), T0 + (i + 2) * S - 1)
    lead.advance(T0 + M)
    lead.apply(ev(QUALIFIED, T0 + S, "q"), T0 + M)  # late, dated before all of them
    assert [(d.outcome, d.stopped_at, d.elapsed_us) for d in lead.decisions] == [("met", T0 + S, S)]
