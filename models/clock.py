"""SLA clocks: a pure, event-time state machine per lead and policy.

``LeadState`` holds every clock of one lead, the events the watermark has not
reached yet (the buffer) and a short log of the events already applied. Two
operations change it, in place, and each returns one ``Transition`` that says
everything that changed:

- ``apply(state, event, ...)`` takes one accepted event, in any arrival order;
- ``advance(state, ...)`` moves the lead to a new watermark.

Time is always an argument: instants are epoch microseconds (UTC), the
watermark is the event time up to which input is taken as complete, and ``now``
is the processing time of the call. Nothing here reads a clock.

Events newer than the watermark are buffered and applied in event-time order
(ties broken by event id) once the watermark passes them, so any arrival order
within the allowed lateness yields the same decisions. A running clock is
breached when the watermark passes its deadline with no stop applied before
it; no further event is needed.

Events older than the watermark on arrival are *late*. Each role has a rule
(the README's table of late-arrival rules):

- dated after the clock's last decided cycle ended: the open part of the
  clock's history is re-run from that point in event-time order, the late
  event in its place, so pauses, resumes, re-handoffs and stops count exactly
  as if they had come on time; nothing already decided is touched;
- a late *start* whose clock would already be overdue is judged only once the
  watermark reaches the instant it arrived (``now``): with the watermark at
  ``now − allowed lateness`` that gives its follow-up one allowed lateness to
  arrive, so a history import of a handoff and its follow-up is met;
- dated inside or before a decided cycle: it cannot change that decision. A
  stop before a breached cycle's deadline becomes a correction, a stop after
  it is a late stop (its elapsed time is still observed); anything else is
  counted as too late and kept in the lead's timeline.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right, insort
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from leadsla.models.events import EventType, LeadEvent
from leadsla.models.periods import period_of
from leadsla.models.policy import ATTEMPT, GIVE_UP, PAUSE, RESUME, START, STOP, Policy, PolicySet, Target

IDLE, RUNNING, PAUSED, PENDING = 0, 1, 2, 3
STATUS_NAMES = ("idle", "running", "paused", "pending")  # by status value
MET, BREACHED, CORRECTED = "met", "breached", "corrected"

SEEN_IDS_PER_LEAD = 64  # dedupe memory per lead: the last N event ids
BUFFER_LIMIT = 256  # events waiting for the watermark, per lead
LOG_LIMIT = 32  # applied events kept per lead to re-run an open cycle
TOO_LATE_KEPT = 8  # the lead's most recent too-late events, for its timeline
NEVER = -(1 << 62)  # before any instant
_R = TypeVar("_R")
_V = TypeVar("_V")

# Equal immutable values that many leads hold, kept once: an event's roles
# (a handful of distinct tuples per policies file), team and rep names, what
# a clock shows on the gauges, delivery keys, goals in business µs. Built or
# decoded per event, each was an object of its own in every lead: about a
# fifth of an open lead's memory. Bounded (cleared when full: that costs
# sharing, never a value). Only strings, ints and tuples go in (of strings,
# ints and bools whose types follow from their position; never a bare bool
# or float), so an equal key is always an equal value.
_SHARED: dict[Any, Any] = {}
_SHARED_KEPT = 65_536

_HANDOFF = EventType.HANDED_OFF.value
_WON = EventType.DEAL_WON.value
_TOUCHES = frozenset({EventType.CONTACT_ATTEMPT.value, EventType.CONNECTED.value})
# Clock changes that the watermark brings, in the order they win a tie.
_RISK, _BREACH, _EXPIRE = 1, 2, 3


def id_hash(text: str) -> int:
    """A stable 63-bit hash of an id (Python's own ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") >> 1


def shared(value: _V) -> _V:
    """``value``, or an equal one already held (see ``_SHARED``: a string,
    an int, or a tuple such as an event's roles or a ``Shown``; None stays
    None). Values are immutable, so any lead can hold the one copy."""
    if len(_SHARED) >= _SHARED_KEPT:
        _SHARED.clear()
    kept: _V = _SHARED.setdefault(value, value)
    return kept


# -- state ---------------------------------------------------------------------


@dataclass(slots=True)
class Clock:
    """One policy's clock for one lead, plus what is left of its last decided
    cycle. Instants and durations are epoch / business microseconds."""

    cycle: int = 0  # cycles begun so far (the open one included)
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
    last_end: int = 0  # where the last decided cycle ended: its stop, or its deadline
    paused_at: int = 0
    pause_limit: int = 0  # the policy's max_pause when the pause began (0: none)
    hold: int = 0  # a late start's clock is not breached before the watermark reaches this
    opened_at: int = 0  # occurred_at of the start that began the open cycle
    attempts: int = 0  # depth policies: attempts in the open cycle, or the last decided one
    first_outcome: str | None = None  # the first cycle's decision: what a won deal's revenue is linked to
    corrected_at: int = 0  # the stop a correction of the last decided cycle found (0: not corrected)
    # The open (or last) cycle's goal in business µs, fixed when it started:
    # a goal in business days is longer over a weekend. 0 in state written
    # before it was kept: the policy's goal_us then.
    goal: int = 0
    timing: int = 0  # Policy.timing of the policy the deadlines were set by (0: not known)

    @property
    def decided(self) -> int:
        """Cycles decided so far."""
        return self.cycle - (self.status != IDLE)

    @property
    def floor(self) -> int:
        """No event dated at or before this instant can change the clock any
        more: the end of its last decided cycle (``NEVER`` before the first)."""
        return self.last_end if self.decided else NEVER


Roles = tuple[tuple[str, str], ...]  # (policy name, role) pairs, computed once on arrival
# An event as the clocks keep it: (occurred_at, tie, type, roles, team, rep).
Buffered = tuple[int, int, str, Roles, str | None, str | None]
# What a lead shows on the gauges for one policy: (team, rep, status, at_risk).
Shown = tuple[str | None, str | None, int, bool]


@dataclass(slots=True)
class LeadState:
    """Everything leadsla keeps of one lead; a plain value (compares by value).

    The buffer and the too-late events are tuples, replaced on a change: both
    are empty for nearly every lead, and the empty tuple is one object where
    each empty list is 56 bytes. (Their repr spells them as lists still.)"""

    seen: list[int] = field(default_factory=list)
    buffer: tuple[Buffered, ...] = ()  # events the watermark has not reached, by (time, tie)
    log: list[Buffered] = field(default_factory=list)  # applied events with roles, by (time, tie)
    clocks: dict[str, Clock] = field(default_factory=dict)
    last_event_at: int = 0
    owner_team: str | None = None
    owner_rep: str | None = None
    owner_at: int = NEVER  # occurred_at of the handoff that set the owner
    handoff_at: int | None = None  # the last handoff applied, for follow-up latency
    touched: bool = True  # a touch was applied since that handoff
    shown: dict[str, Shown] = field(default_factory=dict)
    too_late: tuple[tuple[int, str, str], ...] = ()  # (occurred_at, policy, role), the last TOO_LATE_KEPT
    # Delivery targets: "target|period" -> (occurred_at, value) of the event
    # that delivered the lead in that period (its first by event time).
    delivered: dict[str, tuple[int, float]] = field(default_factory=dict)
    # The watermark (epoch µs) when the lead last received an event. Its
    # state TTL counts from the later of this and last_event_at: a history
    # import of month-old events must keep the lead (its dedupe memory and
    # the stops that wait for a late start) as long as a live lead's.
    received_w: int = 0

    @property
    def quiet_since(self) -> int:
        """Where the lead's state TTL starts (epoch µs): its last event, or
        the watermark when that event arrived if later."""
        return max(self.last_event_at, self.received_w)

    def __repr__(self) -> str:
        # The dataclass's repr, sequences spelled as lists: the text of a
        # state does not depend on which sequence type holds a field.
        fields = ", ".join(
            f"{name}={list(v) if isinstance(v, tuple) else v!r}"
            for name in _LEAD_FIELDS
            for v in (getattr(self, name),)
        )
        return f"LeadState({fields})"


_LEAD_FIELDS = tuple(f.name for f in fields(LeadState))


# -- what a transition reports ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """A decided clock or a correction: one record on ``sla-outcomes``.
    Instants are epoch µs; ``elapsed_us`` is business µs."""

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
    # Depth policies: attempts made, when the clock was decided without the
    # lead being reached (by enough attempts, a give-up or the goal passing).
    attempts: int | None = None
    goal_us: int = field(default=0, compare=False)  # the cycle's goal in business µs (0: the policy's goal_us)


@dataclass(frozen=True, slots=True)
class ClockStarted:
    """A cycle began (a start applied at its event time)."""

    policy: str
    team: str | None
    rep: str | None = None
    cycle: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class ClockRef:
    """A lead's contribution to the clock gauges for one policy."""

    policy: str
    team: str | None
    rep: str | None
    status: int  # RUNNING, PAUSED or PENDING (a start received, not reached by the watermark)
    at_risk: bool


@dataclass(frozen=True, slots=True)
class AtRisk:
    """A running clock crossed its at-risk threshold."""

    policy: str
    team: str | None
    cycle: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class PauseExpired:
    """A pause outlasted the policy's max_pause: the clock counts again."""

    policy: str
    team: str | None
    cycle: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class LateStop:
    """A clock already breached stopped after its deadline: its elapsed business µs."""

    policy: str
    team: str | None
    elapsed_us: int


@dataclass(frozen=True, slots=True)
class TooLate:
    """An event too late to change anything for a policy: dated inside or
    before a cycle already decided (a stop there is a correction or a late stop
    instead)."""

    policy: str
    role: str
    occurred_at: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """A change to a target's count: ``count`` +1 for a lead delivered,
    -1 where a delivery moved (an earlier delivering event arrived late),
    with ``value`` the lead's weighted value (negated with -1). ``day`` is the
    day of the period (1 on its first), ``period_start`` its start (epoch µs)."""

    target: str
    period: str
    period_start: int
    day: int
    count: int
    value: float
    period_end: int = field(default=0, compare=False)  # the period's end (epoch µs)


@dataclass(frozen=True, slots=True)
class Won:
    """Revenue won on a lead (a ``deal.won`` with an ``amount``), linked to
    what became of the lead's first clock of ``policy``: ``met``,
    ``breached``, ``open`` (not decided yet) or ``none`` (never started)."""

    policy: str
    outcome: str
    amount: float


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


@dataclass(slots=True)
class Transition:
    """Everything one ``apply`` or ``advance`` changed, for the runtime to act
    on once: outcome records, counters, gauges and the deadline index.

    ``opened`` and ``closed`` are changes of what the lead shows on the clock
    gauges: a clock that begins or stops counting as open (pending, running or
    paused), or whose owner, status or at-risk flag changed (closed with the
    old values, opened with the new). ``wake`` is the smallest watermark at
    which ``advance`` would change something (None: nothing is scheduled, and
    the lead may be forgotten once its state TTL has passed).
    """

    duplicate: bool = False
    decisions: list[Decision] = field(default_factory=list)
    started: list[ClockStarted] = field(default_factory=list)
    opened: list[ClockRef] = field(default_factory=list)
    closed: list[ClockRef] = field(default_factory=list)
    at_risk: list[AtRisk] = field(default_factory=list)
    pauses_expired: list[PauseExpired] = field(default_factory=list)
    late_stops: list[LateStop] = field(default_factory=list)
    too_late: list[TooLate] = field(default_factory=list)
    handoffs: list[Handoff] = field(default_factory=list)
    touches: list[Touch] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    wins: list[Won] = field(default_factory=list)
    wake: int | None = None

    @property
    def quiet(self) -> bool:
        """Nothing scheduled: the lead may be forgotten after its state TTL."""
        return self.wake is None


def _transition() -> Transition:
    """``Transition()``, built without its dataclass's default factories:
    one is made for every apply and advance."""
    res = object.__new__(Transition)
    res.duplicate = False
    res.decisions, res.started, res.opened, res.closed = [], [], [], []
    res.at_risk, res.pauses_expired, res.late_stops, res.too_late = [], [], [], []
    res.handoffs, res.touches, res.deliveries, res.wins = [], [], [], []
    res.wake = None
    return res


def decision_id(lead_id: str, policy: str, started_at: int, kind: str, cycle: int = 1) -> str:
    """Stable across re-sends: the same clock decided again gets the same id.

    The cycle is part of it: a zero-length cycle and the next one can start at
    the same instant, and each is decided once."""
    raw = f"{lead_id}\x1f{policy}\x1f{started_at}\x1f{kind}\x1f{cycle}".encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


# -- the operations ----------------------------------------------------------------


def apply(st: LeadState, event: LeadEvent, policies: PolicySet, watermark: int, now: int) -> Transition:
    """Apply one accepted event at ``watermark`` (epoch µs), processing time
    ``now`` (epoch µs). A duplicate event id changes nothing and is reported
    as ``duplicate``."""
    res = _transition()
    h = id_hash(event.event_id)
    if h in st.seen:
        res.duplicate = True
        res.wake = next_wake(st)
        return res
    st.seen.append(h)
    if len(st.seen) > SEEN_IDS_PER_LEAD:
        del st.seen[0]
    if event.occurred_at > st.last_event_at:
        st.last_event_at = event.occurred_at
    for target in policies.targets_for(event.type):
        if target.delivers(event):
            _deliver(st, target, event, res)
    if event.type == _WON and event.amount:
        # Revenue at risk: what the lead's SLA clocks had come to when it was won.
        for policy in policies.policies:
            c = st.clocks.get(policy.name)
            if c is not None and c.cycle:
                outcome = c.first_outcome or "open"
            else:  # a start still waiting for the watermark is an open clock too
                outcome = "open" if policy.name in st.shown else "none"
            res.wins.append(Won(policy.name, outcome, event.amount))
    roles = policies.roles(event)
    if not roles and event.type != _HANDOFF and event.type not in _TOUCHES:
        res.wake = next_wake(st)
        return res
    # Kept in the log, and the owner in the lead and its clocks: shared values.
    item: Buffered = (event.occurred_at, h, event.type.value, shared(roles), shared(event.team), shared(event.rep))
    lead_id = event.lead_id
    if event.occurred_at > watermark:
        buffer = st.buffer
        if not buffer or buffer[-1] <= item:
            st.buffer = buffer = (*buffer, item)
        else:
            i = bisect_right(buffer, item)
            st.buffer = buffer = (*buffer[:i], item, *buffer[i:])
        if len(buffer) > BUFFER_LIMIT:
            # A lead flooding events into the future: apply the oldest now
            # rather than grow without bound.
            st.buffer = buffer[1:]
            _apply_item(st, buffer[0], policies, lead_id, watermark, now, res)
    else:
        # First everything the watermark already reached (due events,
        # breaches), as if the lead's timer had just run, so the result does
        # not depend on when it last ran; then the late event by its rule.
        _advance(st, policies, lead_id, watermark, now, res)
        _apply_late(st, item, policies, lead_id, watermark, now, res)
    _advance(st, policies, lead_id, watermark, now, res)
    _finish(st, policies, res)
    return res


def advance(st: LeadState, policies: PolicySet, lead_id: str, watermark: int, now: int) -> Transition:
    """Move one lead to ``watermark`` (epoch µs): apply due buffered events,
    flag at-risk clocks, end expired pauses, breach overdue clocks."""
    res = _transition()
    _advance(st, policies, lead_id, watermark, now, res)
    _finish(st, policies, res)
    return res


def forget(st: LeadState) -> Transition:
    """The lead is dropped (its state TTL passed, or its partition moved away):
    everything it showed on the gauges is closed."""
    res = Transition()
    for name, (team, rep, status, risk) in st.shown.items():
        res.closed.append(ClockRef(name, team, rep, status, risk))
    st.shown.clear()
    return res


def open_clocks(st: LeadState) -> dict[str, str | None]:
    """Policies with a clock started and not decided, with its team.

    That is a running or paused clock, and also a start already received that
    the watermark has not reached yet and that will begin a cycle: to the
    people watching, the lead was handed off and waits, so the gauge of open
    clocks does not lag by the allowed lateness."""
    return {name: team for name, (team, _, _, _) in st.shown.items()}


def next_wake(st: LeadState) -> int | None:
    """The smallest watermark (epoch µs) at which ``advance`` would change
    something, or None when nothing is scheduled."""
    wake = st.buffer[0][0] if st.buffer else None
    for c in st.clocks.values():
        if c.status == RUNNING:
            risk_ahead = not c.at_risk and c.at_risk_at < c.deadline
            t = c.at_risk_at if risk_ahead else max(c.deadline + 1, c.hold)
        elif c.status == PAUSED and c.pause_limit:
            t = c.paused_at + c.pause_limit
        else:
            continue
        if wake is None or t < wake:
            wake = t
    return wake


@dataclass(frozen=True, slots=True)
class Rebased:
    """A running or paused clock that a changed policies file moved (see
    ``rebase``): its goal and deadline before and after, business µs and
    epoch µs (``old_goal`` 0: not known, state from before goals were kept).
    ``removed``: the policy is gone and the clock was closed."""

    policy: str
    old_goal: int
    new_goal: int
    old_deadline: int
    new_deadline: int
    removed: bool = False


def rebase(st: LeadState, policies: PolicySet) -> list[Rebased]:
    """Bring a recovered lead's open clocks under the policies in force now.

    The rule for a file changed between runs (the README's "A changed
    policies file"): **the new goal applies from each clock's start**. A
    running clock's goal, deadline and at-risk instant are computed again from
    its start with the policy as it is now (its goal, calendar and at-risk
    share; business time already counted before a pause stays counted), so a
    clock already past the new goal is breached by the next timer pass, at
    the new deadline. A paused clock takes the new goal and ``max_pause``
    and gets its deadline when it resumes. A clock whose policy left the file
    is closed without a decision: no outcome record (the agreement it
    measured is gone), off the gauges at once. Selectors apply to the events
    that arrive from then on; decided cycles are never touched.

    Changes ``st`` in place and returns one ``Rebased`` per clock whose goal,
    deadline or at-risk instant moved (none when what decides them did not
    change: such clocks are skipped by their ``timing`` digest).
    """
    out: list[Rebased] = []
    for name in list(st.clocks):
        c = st.clocks[name]
        policy = _policy(policies, name)
        if policy is None:
            if c.status != IDLE:
                out.append(Rebased(name, c.goal, 0, c.deadline, 0, removed=True))
            del st.clocks[name]
            continue
        if c.status == IDLE or c.timing == policy.timing:
            continue  # the same goal, calendar and shares: the same deadlines
        c.timing = policy.timing
        goal = shared(policy.goal_from(c.started_at))
        old_goal, old_deadline, old_risk = c.goal, c.deadline, c.at_risk_at
        c.goal = goal
        if c.status == RUNNING:
            _set_deadlines(c, policy, c.resumed_at)
        else:
            c.pause_limit = policy.max_pause_us or 0
        if (goal != old_goal and old_goal) or c.deadline != old_deadline or c.at_risk_at != old_risk:
            out.append(Rebased(name, old_goal, goal, old_deadline, c.deadline))
    names = set(policies.names)
    # Buffered and logged events keep the roles they were given on arrival:
    # a removed policy's roles go with it (roles for a policy added since
    # are not given to events already received).
    st.buffer = tuple(_without_removed(x, names) for x in st.buffer)
    st.log = [_without_removed(x, names) for x in st.log]
    if any(n not in names for n in st.shown):
        _finish(st, policies, Transition())
    return out


def _without_removed(item: Buffered, names: set[str]) -> Buffered:
    t, tie, etype, roles, team, rep = item
    if all(n in names for n, _ in roles):
        return item
    return (t, tie, etype, shared(tuple(r for r in roles if r[0] in names)), team, rep)


def restore_shown(st: LeadState, policies: PolicySet) -> None:
    """Recompute what the lead shows on the gauges from its clocks and buffer,
    without reporting it (for state written before ``shown`` was kept)."""
    _finish(st, policies, Transition())


def compact(st: LeadState) -> None:
    """Make ``st`` hold one copy of what it repeats, and share with other
    leads what they repeat (``shared``), as ``apply`` builds a state: for a
    state decoded from bytes, where every string, tuple and instant is an
    object of its own (read back, an open lead took about twice the memory).
    Changes no value."""
    if len(_SHARED) >= _SHARED_KEPT:
        _SHARED.clear()
    # shared(), as one C call per value: this runs for every state recovered.
    # (The table may pass its bound by one state's values until the next call.)
    keep = _SHARED.setdefault
    team, rep, at = st.owner_team, st.owner_rep, st.owner_at
    st.owner_team, st.owner_rep = keep(team, team), keep(rep, rep)
    if st.handoff_at == at:
        st.handoff_at = at
    if st.last_event_at == at:
        st.last_event_at = at
    if st.log:
        st.log = [(at if t == at else t, h, keep(e, e), keep(r, r), keep(tm, tm), keep(rp, rp))
                  for t, h, e, r, tm, rp in st.log]
    if st.buffer:
        st.buffer = tuple((t, h, keep(e, e), keep(r, r), keep(tm, tm), keep(rp, rp)) for t, h, e, r, tm, rp in st.buffer)
    for c in st.clocks.values():
        team, rep, goal, timing = c.team, c.rep, c.goal, c.timing
        c.team, c.rep, c.goal, c.timing = keep(team, team), keep(rep, rep), keep(goal, goal), keep(timing, timing)
        started = c.started_at
        if started == at:
            c.started_at = started = at
        if c.resumed_at == started:
            c.resumed_at = started
        if c.opened_at == started:
            c.opened_at = started
        if c.cycle > (c.status != IDLE):  # a cycle decided
            outcome, first = c.last_outcome, c.first_outcome
            c.last_outcome, c.first_outcome = keep(outcome, outcome), keep(first, first)
            if c.last_started == started:
                c.last_started = started
            deadline = c.deadline
            if c.last_deadline == deadline:
                c.last_deadline = deadline
            if c.last_end == deadline:
                c.last_end = deadline
    shown = st.shown
    for name, v in shown.items():
        shown[name] = keep(v, v)  # a value replaced, no key added: the iteration stays valid
    if st.too_late:
        st.too_late = tuple((t, keep(name, name), keep(role, role)) for t, name, role in st.too_late)
    if st.delivered:
        st.delivered = {keep(k, k): v for k, v in st.delivered.items()}


# -- internals -----------------------------------------------------------------


def _deliver(st: LeadState, target: Target, event: LeadEvent, res: Transition) -> None:
    """Count a lead once per target and period, by its first delivering event
    in event time (contract §7). Delivery counts by ``occurred_at`` on arrival:
    it waits for no watermark, and a late earlier event moves the count."""
    t = event.occurred_at
    period = period_of(t, target.period, target.timezone)
    key = shared(f"{target.name}|{period.label}")
    value = target.value_of(event)
    prev = st.delivered.get(key)
    if prev is not None:
        if t >= prev[0]:
            return
        res.deliveries.append(Delivery(target.name, period.label, period.start_us,
                                       period.day_of(prev[0], target.timezone), -1, -prev[1], period.end_us))
    st.delivered[key] = (t, value)
    res.deliveries.append(Delivery(target.name, period.label, period.start_us,
                                   period.day_of(t, target.timezone), 1, value, period.end_us))


def _policy(policies: PolicySet, name: str) -> Policy | None:
    """A policy by name; None for one no longer in the file (state written
    before a reload can still name it)."""
    return policies.get(name)


def _due(c: Clock, w: int, hold_w: int) -> tuple[int, int] | None:
    """The clock's earliest change due at watermark ``w``: (event time, kind).

    A change at an instant comes after the events at that instant: a stop
    exactly at the deadline is met. A breach also waits for the clock's hold
    (compared with ``hold_w``, the real watermark)."""
    if c.status == RUNNING:
        if not c.at_risk and c.at_risk_at < c.deadline:
            return (c.at_risk_at, _RISK) if c.at_risk_at <= w else None
        if c.deadline < w and c.hold <= hold_w:
            return (c.deadline, _BREACH)
        return None
    if c.status == PAUSED and c.pause_limit:
        ends = c.paused_at + c.pause_limit
        return (ends, _EXPIRE) if ends <= w else None
    return None


def _change(
    st: LeadState, c: Clock, policy: Policy, kind: int, t: int, lead_id: str, w: int, now: int, res: Transition
) -> None:
    if kind == _RISK:
        c.at_risk = True
        res.at_risk.append(_at_risk_record(policy.name, c.team, c.cycle))
    elif kind == _BREACH:
        _decide(st, c, policy.name, lead_id, BREACHED, None, None, w, now, res, policy if policy.is_depth else None)
    else:
        # A pause that outlasts the policy's max_pause ends by itself.
        c.status, c.resumed_at = RUNNING, t
        _set_deadlines(c, policy, t)
        res.pauses_expired.append(PauseExpired(policy.name, c.team, c.cycle))


def _advance(st: LeadState, policies: PolicySet, lead_id: str, w: int, now: int, res: Transition) -> None:
    # Walk forward in event time: the next due event or clock change,
    # whichever is earliest; events at an instant come first. The clocks'
    # due changes are _due's, inlined: this loop runs for every event and
    # every due lead.
    clocks = st.clocks
    while True:
        best_name: str | None = None
        best_t = best_kind = 0
        for name, c in clocks.items():
            status = c.status
            if status == RUNNING:
                if not c.at_risk and c.at_risk_at < c.deadline:
                    if c.at_risk_at > w:
                        continue
                    t, kind = c.at_risk_at, _RISK
                elif c.deadline < w and c.hold <= w:
                    t, kind = c.deadline, _BREACH
                else:
                    continue
            elif status == PAUSED and c.pause_limit:
                t = c.paused_at + c.pause_limit
                if t > w:
                    continue
                kind = _EXPIRE
            else:
                continue
            if best_name is None or t < best_t or (t == best_t and kind < best_kind):
                best_name, best_t, best_kind = name, t, kind
        buffer = st.buffer
        if buffer and buffer[0][0] <= w and (best_name is None or buffer[0][0] <= best_t):
            st.buffer = buffer[1:]
            _apply_item(st, buffer[0], policies, lead_id, w, now, res)
            continue
        if best_name is None:
            return
        policy = policies.get(best_name)
        if policy is None:
            # A policy removed from the file: its clock runs out silently.
            del clocks[best_name]
            continue
        _change(st, clocks[best_name], policy, best_kind, best_t, lead_id, w, now, res)


def _lead_level(st: LeadState, item: Buffered, res: Transition) -> None:
    """Handoffs and touches, for follow-up speed; the owner follows event time."""
    t, _, etype, _, team, rep = item
    if etype == _HANDOFF:
        if t >= st.owner_at:
            st.owner_team = team or st.owner_team
            st.owner_rep = rep or st.owner_rep
            st.owner_at = t
        if st.handoff_at is None or t >= st.handoff_at:
            st.handoff_at, st.touched = t, False
        res.handoffs.append(Handoff(team or st.owner_team, t))
    elif etype in _TOUCHES:
        first = not st.touched and st.handoff_at is not None and t >= st.handoff_at
        if first:
            st.touched = True
        latency = t - st.handoff_at if first and st.handoff_at is not None else None
        res.touches.append(Touch(team or st.owner_team, t, latency))


def _targets(st: LeadState, item: Buffered, policies: PolicySet) -> Iterator[tuple[str, Policy, Clock]]:
    """Log an event with roles, then yield its (role, policy, clock) for
    each policy it plays a role in. A clock is created by a start only: a
    stop or pause with no clock stays in the log, where a late start finds it."""
    roles = item[3]
    if roles:
        _log(st, item)
    for name, role in roles:
        policy = _policy(policies, name)
        if policy is None:
            continue
        c = st.clocks.get(name)
        if c is None:
            if role != START:
                continue
            c = st.clocks[name] = Clock()
        yield role, policy, c


def _apply_item(
    st: LeadState, item: Buffered, policies: PolicySet, lead_id: str, w: int, now: int, res: Transition
) -> None:
    """An event in event-time order (after everything already applied)."""
    _lead_level(st, item, res)
    t, _, _, roles, team, rep = item
    if not roles:
        return
    # _targets, unrolled: this runs for every event the watermark reaches.
    _log(st, item)
    clocks = st.clocks
    for name, role in roles:
        policy = policies.get(name)
        if policy is None:
            continue
        c = clocks.get(name)
        if c is None:
            if role != START:
                continue
            c = clocks[name] = Clock()
        _step(st, c, policy, role, t, team, rep, lead_id, w, now, res)


def _apply_late(
    st: LeadState, item: Buffered, policies: PolicySet, lead_id: str, w: int, now: int, res: Transition
) -> None:
    """An event older than the watermark, by the late-arrival rules."""
    _lead_level(st, item, res)
    t, _, _, _, team, rep = item
    for role, policy, c in _targets(st, item, policies):
        name = policy.name
        if t > c.floor and (c.status == IDLE or _history_kept(st, c, name)):
            _rerun(st, c, policy, item, lead_id, w, now, res)
        elif t > c.floor:
            # The open cycle's history is not in the log (state from an older
            # release, or a lead with more events than the log keeps): the
            # late event is applied to the clock as it stands.
            _step(st, c, policy, role, t, team, rep, lead_id, w, now, res)
        elif role in (STOP, ATTEMPT) and c.last_open and c.last_started <= t:
            _step(st, c, policy, role, t, team, rep, lead_id, w, now, res)
        else:
            res.too_late.append(TooLate(name, role, t))
            st.too_late = (*st.too_late, (t, name, role))[-TOO_LATE_KEPT:]


def _history_kept(st: LeadState, c: Clock, name: str) -> bool:
    """Does the log still hold the start that began the open cycle?"""
    return any(x[0] == c.opened_at and (name, START) in x[3] for x in st.log)


def _rerun(
    st: LeadState, c: Clock, policy: Policy, late: Buffered, lead_id: str, w: int, now: int, res: Transition
) -> None:
    """Re-run the clock from its last decision, in event-time order, with a
    late event in its place. Only the open part of its history is re-run, so
    no decision already made changes; what the first run already reported
    for the open cycle (its start, at-risk crossing, pause expiry) is not
    reported again."""
    name = policy.name
    was_open = c.status != IDLE
    open_cycle = c.cycle if was_open else 0
    was_risk = was_open and c.at_risk
    old_hold = c.hold
    floor = c.floor
    if was_open:
        c.cycle -= 1
    c.status, c.at_risk, c.paused, c.hold = IDLE, False, False, 0
    scratch = Transition()
    for item in st.log:
        t = item[0]
        if t <= floor:
            continue
        mine = [role for n, role in item[3] if n == name]
        if not mine:
            continue
        _run_clock(st, c, policy, t, w, lead_id, now, scratch, strict=True)
        for role in mine:
            before = c.cycle
            _step(st, c, policy, role, t, item[4], item[5], lead_id, w, now, scratch)
            if c.cycle != before and c.status != IDLE:
                # A cycle begun by the late start is judged once the watermark
                # reaches its arrival; the open cycle keeps the hold it had.
                c.hold = now if item is late else (old_hold if c.cycle == open_cycle else 0)
    _run_clock(st, c, policy, w, w, lead_id, now, scratch, strict=False)
    res.decisions += scratch.decisions
    res.late_stops += scratch.late_stops
    res.started += [s for s in scratch.started if s.cycle != open_cycle]
    res.at_risk += [a for a in scratch.at_risk if not (was_risk and a.cycle == open_cycle)]
    res.pauses_expired += [p for p in scratch.pauses_expired if p.cycle != open_cycle]


def _run_clock(
    st: LeadState, c: Clock, policy: Policy, upto: int, w: int, lead_id: str, now: int, res: Transition, strict: bool
) -> None:
    """Apply one clock's own changes up to ``upto`` (before an event there
    when ``strict``, else up to and including it as a watermark)."""
    while True:
        due = _due(c, upto - 1 if strict else upto, w)
        if due is None:
            return
        _change(st, c, policy, due[1], due[0], lead_id, w, now, res)


def _step(
    st: LeadState,
    c: Clock,
    policy: Policy,
    role: str,
    t: int,
    team: str | None,
    rep: str | None,
    lead_id: str,
    w: int,
    now: int,
    res: Transition,
) -> None:
    if role == START:
        _start(st, c, policy, lead_id, t, team, rep, w, now, res)
    elif role == STOP:
        _stop(st, c, policy, lead_id, t, w, now, res)
    elif role == PAUSE and c.status == RUNNING and t >= c.started_at:
        c.consumed += policy.calendar.elapsed(c.resumed_at, t)
        c.status, c.paused, c.paused_at = PAUSED, True, t
        c.pause_limit = policy.max_pause_us or 0
    elif role == RESUME and c.status == PAUSED and t >= c.started_at:
        c.status, c.resumed_at = RUNNING, t
        _set_deadlines(c, policy, t)
    elif role == ATTEMPT:
        _attempt(st, c, policy, lead_id, t, w, now, res)
    elif role == GIVE_UP and c.status != IDLE and t >= c.started_at:
        # The lead was dropped before it was reached or had its attempts.
        _decide(st, c, policy.name, lead_id, BREACHED, t, _elapsed(c, policy, t), w, now, res, policy)


def _elapsed(c: Clock, policy: Policy, t: int) -> int:
    """Business µs the open cycle has used by ``t``."""
    if c.status == RUNNING:
        return c.consumed + policy.calendar.elapsed(c.resumed_at, t)
    return c.consumed


def _attempt(st: LeadState, c: Clock, policy: Policy, lead_id: str, t: int, w: int, now: int, res: Transition) -> None:
    """A follow-up attempt on a depth policy: the ``min_attempts``-th within
    the goal meets the clock (after the goal it is breached, counted late)."""
    need = policy.min_attempts
    if need is None:
        return
    if c.status != IDLE and t >= c.started_at:
        c.attempts += 1
        if c.attempts >= need:
            outcome = MET if c.status == PAUSED or t <= c.deadline else BREACHED
            _decide(st, c, policy.name, lead_id, outcome, t, _elapsed(c, policy, t), w, now, res, policy)
        return
    if c.status == IDLE and c.last_open and c.last_started <= t <= c.last_deadline:
        # A late attempt of a cycle the timer breached: enough of them before
        # the deadline make a correction, as a late stop does.
        c.attempts += 1
        if c.attempts >= need:
            _correct(c, policy, lead_id, t, w, now, res)


def _goal(c: Clock, policy: Policy) -> int:
    """The cycle's goal in business µs (state from before it was kept: the policy's)."""
    return c.goal or policy.goal_us


def _set_deadlines(c: Clock, policy: Policy, t: int) -> None:
    """Deadline and at-risk instant of a cycle that (re)starts counting at ``t``."""
    goal = c.goal or policy.goal_us  # _goal(c, policy), inlined
    remaining = max(0, goal - c.consumed)
    c.deadline = policy.calendar.add(t, remaining)
    risk_left = round(goal * policy.at_risk) - c.consumed
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
    res: Transition,
) -> None:
    if c.status == IDLE and c.cycle and t <= c.last_end:  # idle and decided before
        # A start inside a cycle already decided (a re-sent handoff): in time
        # order it was a repeated start of that cycle, not a new one.
        return
    if c.status == IDLE:
        c.cycle += 1
        c.status, c.started_at, c.resumed_at, c.consumed = RUNNING, t, t, 0
        c.at_risk = c.paused = False
        c.hold, c.opened_at, c.attempts = 0, t, 0
        c.team, c.rep = team or st.owner_team, rep or st.owner_rep
        # A goal in business days is computed per start: the few distinct values are shared.
        c.goal, c.timing = shared(policy.goal_from(t)), policy.timing
        _set_deadlines(c, policy, t)
        res.started.append(_started_record(policy.name, c.team, c.rep, c.cycle))
        # A stop at the same instant applied just before (a smaller tie).
        for x in reversed(st.log):
            if x[0] < t:
                break
            if x[0] == t and (policy.name, STOP) in x[3]:
                _stop(st, c, policy, lead_id, t, w, now, res)
                return
        return
    # A repeated start while the clock runs: a re-handoff. Applied in event
    # time order, so the newest handoff owns the clock.
    if team is not None:
        c.team = team
    if rep is not None:
        c.rep = rep
    if policy.on_restart == "restart" and t > c.started_at and c.status == RUNNING:
        c.started_at, c.resumed_at, c.consumed = t, t, 0
        c.at_risk = False
        c.goal = shared(policy.goal_from(t))
        _set_deadlines(c, policy, t)


def _stop(st: LeadState, c: Clock, policy: Policy, lead_id: str, t: int, w: int, now: int, res: Transition) -> None:
    if c.status != IDLE and t >= c.started_at:
        outcome = MET if c.status == PAUSED or t <= c.deadline else BREACHED
        # A stop on a depth policy is the lead reached: no attempt count.
        _decide(st, c, policy.name, lead_id, outcome, t, _elapsed(c, policy, t), w, now, res)
        return
    if c.last_open and c.last_started <= t:
        if t <= c.last_deadline:
            _correct(c, policy, lead_id, t, w, now, res)
        else:
            c.last_open = False
            res.late_stops.append(LateStop(policy.name, c.team, _goal(c, policy) + policy.calendar.elapsed(c.last_deadline, t)))


def _correct(c: Clock, policy: Policy, lead_id: str, t: int, w: int, now: int, res: Transition) -> None:
    """The last cycle, breached by the timer, had in fact stopped at ``t``
    before its deadline: a correction record, never a rewrite."""
    c.last_open = False
    c.corrected_at = t
    corrected_elapsed = None if c.last_paused else policy.calendar.elapsed(c.last_started, t)
    cycle = c.decided
    res.decisions.append(
        Decision(
            lead_id, policy.name, CORRECTED, cycle, c.last_started, c.last_deadline, now, w, t, corrected_elapsed,
            c.team, c.rep, False, decision_id(lead_id, policy.name, c.last_started, CORRECTED, cycle),
            goal_us=_goal(c, policy),
        )
    )


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
    res: Transition,
    depth: Policy | None = None,
) -> None:
    """Decide the open cycle. ``depth`` is given when a depth policy's lead
    was not reached: the decision then carries its attempt count."""
    res.decisions.append(
        Decision(
            lead_id, name, outcome, c.cycle, c.started_at, c.deadline, now, w, stopped_at, elapsed,
            c.team, c.rep, c.at_risk, decision_id(lead_id, name, c.started_at, "decided", c.cycle),
            c.attempts if depth is not None else None, c.goal,
        )
    )
    c.status = IDLE
    c.hold = 0
    if c.cycle == 1:
        c.first_outcome = outcome
    c.last_outcome, c.last_started, c.last_deadline = outcome, c.started_at, c.deadline
    c.last_open = outcome == BREACHED and stopped_at is None
    c.corrected_at = 0
    c.last_paused = c.paused
    c.last_end = c.deadline if stopped_at is None else stopped_at


def _log(st: LeadState, item: Buffered) -> None:
    log = st.log
    if not log or log[-1] <= item:
        log.append(item)
    else:
        insort(log, item)
    if len(log) > LOG_LIMIT:
        del log[0]


def _finish(st: LeadState, policies: PolicySet, res: Transition) -> None:
    """Report changes of what the lead shows on the gauges, drop log entries
    no clock can use any more, and schedule the next wake-up."""
    shown = st.shown
    clocks = st.clocks
    # The first buffered start of each policy (the buffer is in event-time
    # order): a clock shows as pending from its start's arrival. One pass over
    # the buffer answers every question below.
    first_start: dict[str, Buffered] = {}
    for item in st.buffer:
        for name, role in item[3]:
            if role == START and name not in first_start:
                first_start[name] = item
    for name, c in clocks.items():
        old = shown.get(name)
        if c.status != IDLE:
            # Field by field rather than building the tuple: most calls change nothing.
            if old is None or old[2] != c.status or old[3] != c.at_risk or old[0] != c.team or old[1] != c.rep:
                _show(shown, name, shared((c.team, c.rep, c.status, c.at_risk)), res)
            continue
        want: Shown | None = None
        start = first_start.get(name)
        if start is not None:
            floor = c.floor
            want = _pending(st, start) if start[0] > floor else _pending_after(st, name, floor)
        if old != want:
            _show(shown, name, want, res)
    for name, start in first_start.items():  # pending starts of policies with no clock yet
        if name not in clocks and name not in shown and policies.get(name) is not None:
            _show(shown, name, _pending(st, start), res)
    if not shown.keys() <= clocks.keys():
        for name in [n for n in shown if n not in clocks and n not in first_start]:
            _show(shown, name, None, res)
    if res.closed and not shown:
        # An emptied dict keeps its table (184 bytes, against 64 for a new
        # one), and a decided lead is kept until its state TTL.
        st.shown = {}
    if res.decisions and st.log:
        st.log = _still_needed(st.log, clocks)
    res.wake = next_wake(st)


def _still_needed(log: list[Buffered], clocks: dict[str, Clock]) -> list[Buffered]:
    """The logged events some clock can still use: dated after the last
    decided cycle of a policy they play a role in (any time, for a policy
    with no clock yet)."""
    floors = {name: (c.last_end if c.cycle - (c.status != IDLE) else NEVER) for name, c in clocks.items()}
    kept = []
    for x in log:
        t = x[0]
        for n, _ in x[3]:
            if t > floors.get(n, NEVER):
                kept.append(x)
                break
    return kept


def _pending(st: LeadState, start: Buffered) -> Shown:
    """What a policy shows while its buffered ``start`` waits for the watermark."""
    return shared((start[4] or st.owner_team, start[5] or st.owner_rep, PENDING, False))


def _pending_after(st: LeadState, name: str, floor: int) -> Shown | None:
    """What a policy shows for its first buffered start after ``floor`` (None: none)."""
    for item in st.buffer:
        if item[0] > floor and (name, START) in item[3]:
            return _pending(st, item)
    return None


def _show(shown: dict[str, Shown], name: str, want: Shown | None, res: Transition) -> None:
    old = shown.get(name)
    if old is not None:
        res.closed.append(_clock_ref(name, old))
    if want is None:
        shown.pop(name, None)
    else:
        shown[name] = want
        res.opened.append(_clock_ref(name, want))


# The records a transition reports about a clock's gauges, starts and
# at-risk crossings (ClockRef, ClockStarted, AtRisk) repeat the same few
# combinations of policy, owner, status, flag and cycle across leads, and a
# frozen dataclass costs several times a dict lookup to build. Values are
# immutable and compare by value, so one instance serves every transition.
# Bounded (cleared when full).
_RECORDS: dict[tuple[Any, ...], Any] = {}
_RECORDS_KEPT = 65_536


def _clock_ref(name: str, shown: Shown) -> ClockRef:
    """``ClockRef(name, *shown)``, shared."""
    key = (name, shown)
    ref: ClockRef | None = _RECORDS.get(key)
    if ref is None:
        ref = _keep(key, ClockRef(name, shown[0], shown[1], shown[2], shown[3]))
    return ref


def _started_record(name: str, team: str | None, rep: str | None, cycle: int) -> ClockStarted:
    """``ClockStarted(name, team, rep, cycle)``, shared."""
    key = (ClockStarted, name, team, rep, cycle)
    rec: ClockStarted | None = _RECORDS.get(key)
    if rec is None:
        rec = _keep(key, ClockStarted(name, team, rep, cycle))
    return rec


def _at_risk_record(name: str, team: str | None, cycle: int) -> AtRisk:
    """``AtRisk(name, team, cycle)``, shared."""
    key = (AtRisk, name, team, cycle)
    rec: AtRisk | None = _RECORDS.get(key)
    if rec is None:
        rec = _keep(key, AtRisk(name, team, cycle))
    return rec


def _keep(key: tuple[Any, ...], record: _R) -> _R:
    if len(_RECORDS) >= _RECORDS_KEPT:
        _RECORDS.clear()
    _RECORDS[key] = record
    return record
