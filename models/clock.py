"""SLA clocks: a pure, event-time state machine per lead and policy.

``LeadState`` holds every clock of one lead plus a small buffer of events that
the watermark has not reached yet. Two operations change it, both in place and
both returning the effects they caused:

- ``apply(state, event, ...)`` takes one accepted event (in any arrival order);
- ``advance(state, ...)`` moves the lead to a new watermark.

Events are buffered until the watermark passes their ``occurred_at`` and are
then applied in event-time order (ties broken by event id), so any arrival
order within the allowed lateness yields the same decisions. A running clock
is breached when the watermark passes its deadline with no stop applied before
it. Events older than the watermark on arrival ("late") are applied at once:
a late stop for a clock already breached becomes a correction, never a rewrite.
"""

from __future__ import annotations

import hashlib
from bisect import insort
from dataclasses import dataclass, field

from leadsla.models.events import EventType, LeadEvent
from leadsla.models.policy import PAUSE, RESUME, START, STOP, Policy, PolicySet

IDLE, RUNNING, PAUSED = 0, 1, 2
STATUS_NAMES = ("idle", "running", "paused")  # by status value
MET, BREACHED, CORRECTED = "met", "breached", "corrected"

SEEN_IDS_PER_LEAD = 64  # dedupe memory per lead: the last N event ids
ORPHAN_STOPS = 4  # stops seen with no clock running, kept for late starts
BUFFER_LIMIT = 256  # events waiting for the watermark, per lead

_HANDOFF = EventType.HANDED_OFF.value
_TOUCHES = frozenset({EventType.CONTACT_ATTEMPT.value, EventType.CONNECTED.value})


def id_hash(text: str) -> int:
    """A stable 63-bit hash (Python's own ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") >> 1


# -- state ---------------------------------------------------------------------


@dataclass(slots=True)
class Clock:
    """One policy's clock for one lead, plus what is left of its last cycle."""

    cycle: int = 0
    status: int = IDLE
    started_at: int = 0
    deadline: int = 0
    at_risk_at: int = 0
    at_risk: bool = False
    consumed: int = 0  # business time counted before the current running segment
    resumed_at: int = 0
    paused: bool = False  # the cycle has been paused at least once
    team: str | None = None
    rep: str | None = None
    # The last decided cycle, kept so a late stop can become a correction.
    last_outcome: str | None = None
    last_started: int = 0
    last_deadline: int = 0
    last_open: bool = False  # breached, and no stop for it seen yet
    last_paused: bool = False
    orphans: list[int] = field(default_factory=list)
    last_end: int = 0  # where the last decided cycle ended: its stop, or its deadline
    paused_at: int = 0
    pause_limit: int = 0  # the policy's max_pause when the pause began (0: none)


# A buffered event: (occurred_at, tie, type, roles, team, rep); roles are
# (policy name, role) pairs computed once on arrival.
Buffered = tuple[int, int, str, tuple[tuple[str, str], ...], str | None, str | None]


@dataclass(slots=True)
class LeadState:
    seen: list[int] = field(default_factory=list)
    buffer: list[Buffered] = field(default_factory=list)
    clocks: dict[str, Clock] = field(default_factory=dict)
    last_event_at: int = 0
    owner_team: str | None = None
    owner_rep: str | None = None
    handoff_at: int | None = None  # the last handoff applied, for follow-up latency
    touched: bool = True  # a touch was applied since that handoff

    def is_quiet(self) -> bool:
        """Nothing running, buffered or awaiting a correction."""
        return not self.buffer and all(c.status == IDLE and not c.last_open for c in self.clocks.values())


# -- effects -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """A decided clock or a correction: one record on ``sla-outcomes``."""

    lead_id: str
    policy: str
    outcome: str
    cycle: int
    started_at: int
    deadline: int
    decided_at: int  # processing time (the ``now`` passed in)
    watermark: int
    stopped_at: int | None
    elapsed_us: int | None
    team: str | None
    rep: str | None
    was_at_risk: bool
    decision_id: str


@dataclass(frozen=True, slots=True)
class ClockStarted:
    policy: str
    team: str | None
    rep: str | None = None


@dataclass(frozen=True, slots=True)
class AtRisk:
    policy: str
    team: str | None


@dataclass(frozen=True, slots=True)
class PauseExpired:
    """A pause outlasted the policy's max_pause: the clock counts again."""

    policy: str
    team: str | None


@dataclass(frozen=True, slots=True)
class AtRiskCleared:
    """A restarted clock is no longer at risk."""

    policy: str
    team: str | None


@dataclass(frozen=True, slots=True)
class OwnerChanged:
    """A running clock moved to another team (a re-handoff)."""

    policy: str
    old_team: str | None
    new_team: str | None
    at_risk: bool


@dataclass(frozen=True, slots=True)
class LateStop:
    """A clock already breached stopped after its deadline: its elapsed time."""

    policy: str
    team: str | None
    elapsed_us: int


@dataclass(frozen=True, slots=True)
class Handoff:
    team: str | None
    at: int


@dataclass(frozen=True, slots=True)
class Touch:
    """A follow-up attempt; ``latency_us`` is set on the first after a handoff."""

    team: str | None
    at: int
    latency_us: int | None


Effect = Decision | ClockStarted | AtRisk | AtRiskCleared | PauseExpired | OwnerChanged | LateStop | Handoff | Touch


def decision_id(lead_id: str, policy: str, started_at: int, kind: str, cycle: int = 1) -> str:
    """Stable across re-sends: the same clock decided again gets the same id.

    The cycle is part of it: a zero-length cycle and the next one can start at
    the same instant, and each is decided once."""
    raw = f"{lead_id}\x1f{policy}\x1f{started_at}\x1f{kind}\x1f{cycle}".encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


# -- the two operations --------------------------------------------------------


def apply(
    st: LeadState,
    event: LeadEvent,
    policies: PolicySet,
    watermark: int,
    now: int,
) -> list[Effect] | None:
    """Apply one accepted event. Returns None for a duplicate (nothing changed)."""
    h = id_hash(event.event_id)
    if h in st.seen:
        return None
    st.seen.append(h)
    if len(st.seen) > SEEN_IDS_PER_LEAD:
        del st.seen[0]
    if event.occurred_at > st.last_event_at:
        st.last_event_at = event.occurred_at
    roles = tuple(
        (policy.name, role)
        for policy in (policies.policies[i] for i in policies.for_type(event.type))
        for role in policy.roles(event)
    )
    if not roles and event.type != _HANDOFF and event.type not in _TOUCHES:
        return []
    item: Buffered = (event.occurred_at, h, event.type.value, roles, event.team, event.rep)
    effects: list[Effect] = []
    if event.occurred_at > watermark:
        insort(st.buffer, item)
        if len(st.buffer) > BUFFER_LIMIT:
            # A lead flooding events into the future: apply the oldest now
            # rather than grow without bound.
            _apply_one(st, st.buffer.pop(0), policies, event.lead_id, watermark, now, effects)
    else:
        # A late event: first everything the watermark already reached (due
        # events, breaches), as if the lead's timer had run, so the result does
        # not depend on when it last ran; then the late event itself.
        _advance(st, policies, event.lead_id, watermark, now, effects)
        _apply_one(st, item, policies, event.lead_id, watermark, now, effects)
    _advance(st, policies, event.lead_id, watermark, now, effects)
    return effects


def advance(st: LeadState, policies: PolicySet, lead_id: str, watermark: int, now: int) -> list[Effect]:
    """Move one lead to ``watermark``: apply due events, flag at-risk, breach."""
    effects: list[Effect] = []
    _advance(st, policies, lead_id, watermark, now, effects)
    return effects


def open_clocks(st: LeadState) -> dict[str, str | None]:
    """Policies with a clock started and not decided, with its team.

    That is a running or paused clock, and also a start already received that
    the watermark has not reached yet: it will start a clock (it is not inside
    a cycle already decided), and to the people watching, the lead was handed
    off and waits. So the gauge of open clocks does not lag by the lateness.
    """
    out = {name: c.team for name, c in st.clocks.items() if c.status != IDLE}
    for t, _, _, roles, team, _ in st.buffer:
        for name, role in roles:
            if role == START and name not in out:
                c = st.clocks.get(name)
                if c is None or not c.cycle or t > c.last_end:
                    out[name] = team or st.owner_team
    return out


def next_wake(st: LeadState) -> int | None:
    """The smallest watermark at which ``advance`` would change something."""
    wake = st.buffer[0][0] if st.buffer else None
    for c in st.clocks.values():
        if c.status == RUNNING:
            t = c.at_risk_at if not c.at_risk and c.at_risk_at < c.deadline else c.deadline + 1
        elif c.status == PAUSED and c.pause_limit:
            t = c.paused_at + c.pause_limit
        else:
            continue
        if wake is None or t < wake:
            wake = t
    return wake


# -- internals -----------------------------------------------------------------


def _advance(
    st: LeadState, policies: PolicySet, lead_id: str, w: int, now: int, effects: list[Effect]
) -> None:
    # Walk forward in event time: the next due event, at-risk crossing or
    # breach, whichever is earliest. Events at an instant come before the
    # at-risk flag and the breach at that instant: a stop exactly at the
    # deadline is met.
    while True:
        ev_t = st.buffer[0][0] if st.buffer and st.buffer[0][0] <= w else None
        best_t, best_kind, best_name = None, 0, ""
        for name, c in st.clocks.items():
            if c.status == PAUSED and c.pause_limit:
                # A pause that outlasts the policy's max_pause ends by itself.
                ends = c.paused_at + c.pause_limit
                if ends <= w and (best_t is None or (ends, 3) < (best_t, best_kind)):
                    best_t, best_kind, best_name = ends, 3, name
            if c.status != RUNNING:
                continue
            if (
                not c.at_risk
                and c.at_risk_at <= w
                and c.at_risk_at < c.deadline
                and (best_t is None or (c.at_risk_at, 1) < (best_t, best_kind))
            ):
                best_t, best_kind, best_name = c.at_risk_at, 1, name
            if c.deadline < w and (best_t is None or (c.deadline, 2) < (best_t, best_kind)):
                best_t, best_kind, best_name = c.deadline, 2, name
        if ev_t is not None and (best_t is None or ev_t <= best_t):
            _apply_one(st, st.buffer.pop(0), policies, lead_id, w, now, effects)
        elif best_kind == 1:
            c = st.clocks[best_name]
            c.at_risk = True
            effects.append(AtRisk(best_name, c.team))
        elif best_kind == 2:
            c = st.clocks[best_name]
            _decide(st, c, best_name, lead_id, BREACHED, None, None, w, now, effects)
        elif best_kind == 3:
            c = st.clocks[best_name]
            assert best_t is not None
            c.status, c.resumed_at = RUNNING, best_t
            _set_deadlines(c, policies.by_name(best_name), best_t)
            effects.append(PauseExpired(best_name, c.team))
        else:
            return


def _apply_one(
    st: LeadState, item: Buffered, policies: PolicySet, lead_id: str, w: int, now: int, effects: list[Effect]
) -> None:
    t, _, etype, roles, team, rep = item
    if etype == _HANDOFF:
        st.handoff_at, st.touched = t, False
        st.owner_team = team or st.owner_team
        st.owner_rep = rep or st.owner_rep
        effects.append(Handoff(st.owner_team, t))
    elif etype in _TOUCHES:
        first = not st.touched and st.handoff_at is not None and t >= st.handoff_at
        if first:
            st.touched = True
        latency = t - st.handoff_at if first and st.handoff_at is not None else None
        effects.append(Touch(team or st.owner_team, t, latency))
    for name, role in roles:
        try:
            policy = policies.by_name(name)
        except KeyError:
            continue
        c = st.clocks.get(name)
        if c is None:
            if role not in (START, STOP):
                continue
            c = st.clocks[name] = Clock()
        if role == START:
            _start(st, c, policy, lead_id, t, team, rep, w, now, effects)
        elif role == STOP:
            _stop(st, c, policy, lead_id, t, w, now, effects)
        elif role == PAUSE and c.status == RUNNING and t >= c.started_at:
            c.consumed += policy.calendar.elapsed(c.resumed_at, t)
            c.status, c.paused, c.paused_at = PAUSED, True, t
            c.pause_limit = policy.max_pause_us or 0
        elif role == RESUME and c.status == PAUSED and t >= c.started_at:
            c.status, c.resumed_at = RUNNING, t
            _set_deadlines(c, policy, t)


def _set_deadlines(c: Clock, policy: Policy, t: int) -> None:
    remaining = max(0, policy.goal_us - c.consumed)
    c.deadline = policy.calendar.add(t, remaining)
    risk_left = round(policy.goal_us * policy.at_risk) - c.consumed
    c.at_risk_at = policy.calendar.add(t, risk_left) if risk_left > 0 else t


def _start(
    st: LeadState,
    c: Clock,
    policy: Policy,
    lead_id: str,
    t: int,
    team: str | None,
    rep: str | None,
    w: int,
    now: int,
    effects: list[Effect],
) -> None:
    if c.status == IDLE and c.cycle and t <= c.last_end:
        # A start inside a cycle already decided (a late or re-sent handoff):
        # in time order it was a repeated start of that cycle, not a new one.
        return
    if c.status == IDLE:
        c.cycle += 1
        c.status, c.started_at, c.resumed_at, c.consumed = RUNNING, t, t, 0
        c.at_risk = c.paused = False
        c.team, c.rep = team or st.owner_team, rep or st.owner_rep
        _set_deadlines(c, policy, t)
        effects.append(ClockStarted(policy.name, c.team, c.rep))
        # A stop that arrived before its start (or at the same instant).
        later = [s for s in c.orphans if s >= t]
        if later:
            s = min(later)
            c.orphans.remove(s)
            _stop(st, c, policy, lead_id, s, w, now, effects)
        return
    # A repeated start while the clock runs: a re-handoff.
    if team is not None and team != c.team:
        effects.append(OwnerChanged(policy.name, c.team, team, c.at_risk))
        c.team = team
    if rep is not None:
        c.rep = rep
    restart = policy.on_restart == "restart" and t > c.started_at
    # A start older than the running one (a late event) moves the start back.
    earlier = t < c.started_at and not c.paused
    if (restart or earlier) and c.status == RUNNING:
        c.started_at, c.resumed_at, c.consumed = t, t, 0
        if c.at_risk and restart:
            c.at_risk = False
            effects.append(AtRiskCleared(policy.name, c.team))
        _set_deadlines(c, policy, t)


def _stop(
    st: LeadState, c: Clock, policy: Policy, lead_id: str, t: int, w: int, now: int, effects: list[Effect]
) -> None:
    if c.status != IDLE and t >= c.started_at:
        if c.status == RUNNING:
            elapsed = c.consumed + policy.calendar.elapsed(c.resumed_at, t)
            outcome = MET if t <= c.deadline else BREACHED
        else:
            elapsed, outcome = c.consumed, MET
        _decide(st, c, policy.name, lead_id, outcome, t, elapsed, w, now, effects)
        return
    if c.last_open and c.last_started <= t:
        c.last_open = False
        if t <= c.last_deadline:
            corrected_elapsed = None if c.last_paused else policy.calendar.elapsed(c.last_started, t)
            cycle = c.cycle if c.status == IDLE else c.cycle - 1  # a newer cycle may be running
            effects.append(
                Decision(
                    lead_id, policy.name, CORRECTED, cycle, c.last_started, c.last_deadline, now, w, t, corrected_elapsed,
                    c.team, c.rep, False, decision_id(lead_id, policy.name, c.last_started, CORRECTED, cycle),
                )
            )
        else:
            effects.append(LateStop(policy.name, c.team, policy.goal_us + policy.calendar.elapsed(c.last_deadline, t)))
        return
    c.orphans.append(t)
    if len(c.orphans) > ORPHAN_STOPS:
        c.orphans.remove(min(c.orphans))


def _decide(
    st: LeadState,
    c: Clock,
    name: str,
    lead_id: str,
    outcome: str,
    stopped_at: int | None,
    elapsed: int | None,
    w: int,
    now: int,
    effects: list[Effect],
) -> None:
    effects.append(
        Decision(
            lead_id, name, outcome, c.cycle, c.started_at, c.deadline, now, w, stopped_at, elapsed,
            c.team, c.rep, c.at_risk, decision_id(lead_id, name, c.started_at, "decided", c.cycle),
        )
    )
    c.status = IDLE
    c.last_outcome, c.last_started, c.last_deadline = outcome, c.started_at, c.deadline
    c.last_open = outcome == BREACHED and stopped_at is None
    c.last_paused = c.paused
    c.last_end = c.deadline if stopped_at is None else stopped_at
