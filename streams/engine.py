"""The monitor's runtime, free of Faust: per-partition watermarks, the
deadline index, lead state in a mapping, effects turned into metrics,
outcome records, dead letters and window aggregates.

The Faust app (``streams.app``) feeds it records and timer ticks and gives it
a store (the table's data) and a sink (topics and changelogs); tests feed it
directly.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any, Protocol

from leadsla.models import clock
from leadsla.models.clock import (
    AtRisk,
    AtRiskCleared,
    ClockStarted,
    Decision,
    Effect,
    Handoff,
    LateStop,
    LeadState,
    OwnerChanged,
    PauseExpired,
    Touch,
)
from leadsla.models.events import EventType, format_timestamp_us
from leadsla.models.policy import PolicySet
from leadsla.streams.codec import Rejection, decode, outcome_record
from leadsla.streams.index import DeadlineIndex
from leadsla.streams.metrics import Metrics
from leadsla.streams.settings import Settings

log = logging.getLogger("leadsla")

NEVER = -(1 << 62)
_GONE = object()  # not in a lead's open clocks (None is a team: unknown)
# Tumbling event-time windows kept for dashboards: (size, label, retention).
WINDOWS = ((3600, "1h", 2 * 86400), (86400, "1d", 8 * 86400))


class LeadEntry:
    """A table value: a lead's state and the partition its events come from."""

    __slots__ = ("partition", "state")

    def __init__(self, partition: int, state: LeadState) -> None:
        self.partition = partition
        self.state = state


class Sink(Protocol):
    def persist(self, partition: int, lead_id: str, entry: LeadEntry | None) -> None: ...
    def outcome(self, lead_id: str, value: bytes) -> None: ...
    def dead_letter(self, key: bytes | None, value: bytes | None, reason: str, error: str) -> None: ...
    def window(self, partition: int, key: str, value: float | None) -> None: ...


class PartitionRuntime:
    """What one owned partition needs in memory: rebuilt after recovery,
    dropped on revocation."""

    __slots__ = ("partition", "index", "max_event_time", "watermark", "last_offset", "caught_up", "open", "at_risk", "windows", "dirty")

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.index = DeadlineIndex()
        self.max_event_time = NEVER
        self.watermark = NEVER
        self.last_offset = -1
        self.caught_up = False
        self.open: Counter[tuple[str, str]] = Counter()
        self.at_risk: Counter[tuple[str, str]] = Counter()
        # (window size s, window start s) -> (metric, team) -> value
        self.windows: dict[tuple[int, int], dict[tuple[str, str], float]] = {}
        self.dirty: set[tuple[int, int, str, str]] = set()


def window_key(size: int, start: int, metric: str, team: str, partition: int) -> str:
    return f"{size}|{start}|{metric}|{team}|{partition}"


class Engine:
    def __init__(
        self,
        settings: Settings,
        policies: PolicySet,
        metrics: Metrics,
        store: MutableMapping[str, LeadEntry],
        windows: MutableMapping[str, float],
        sink: Sink,
        highwater: Callable[[int], int | None] = lambda p: None,
        wall_us: Callable[[], int] = lambda: time.time_ns() // 1000,
    ) -> None:
        self.settings = settings
        self.policies = policies
        self.metrics = metrics
        self.store = store
        self.window_store = windows
        self.sink = sink
        self.highwater = highwater
        self.wall_us = wall_us
        self.runtimes: dict[int, PartitionRuntime] = {}
        self.ready = False
        self.started_wall = time.time()
        self.last_event_wall: float | None = None
        self._progress_at = 0  # wall time (us) of the last progress line
        self._was_caught_up: dict[int, bool] = {}
        self._lateness = settings.lateness_us
        self._replay_lag = max(self._lateness, round(settings.replay_horizon * 1_000_000))
        self._ttl = round(settings.state_ttl * 1_000_000)
        self._skew = round(settings.max_clock_skew * 1_000_000)
        self._goal = {p.name: p.goal_us for p in policies.policies}
        self._start_types = frozenset(s.type for p in policies.policies for s in p.selectors["start"])

    # -- partitions -------------------------------------------------------------

    def rebuild(self, partitions: Iterable[int], positions: dict[int, int | None] | None = None) -> None:
        """Index every lead of the given partitions (after table recovery)."""
        wanted = set(partitions)
        for p in wanted:
            self.runtimes[p] = PartitionRuntime(p)
            pos = (positions or {}).get(p)
            if pos is not None:
                self.runtimes[p].last_offset = pos - 1
        now = self.wall_us()
        for lead_id, entry in list(self.store.items()):
            rt = self.runtimes.get(entry.partition)
            if rt is None or entry.partition not in wanted:
                continue
            st = entry.state
            if st.last_event_at > rt.max_event_time:
                rt.max_event_time = st.last_event_at
            for name, team in clock.open_clocks(st).items():
                if name in self._goal:
                    rt.open[(name, self.metrics.team(team))] += 1
            for name, c in st.clocks.items():
                if c.status != clock.IDLE and name in self._goal:
                    self.metrics.prebind(name, c.team, c.rep)
                    if c.at_risk:
                        rt.at_risk[(name, self.metrics.team(c.team))] += 1
            rt.index.schedule(lead_id, self._wake(st))
        for key, value in list(self.window_store.items()):
            # The team is free text from events and may itself contain "|".
            size, start, metric, rest = key.split("|", 3)
            team, part = rest.rsplit("|", 1)
            rt = self.runtimes.get(int(part))
            if rt is not None and int(part) in wanted:
                rt.windows.setdefault((int(size), int(start)), {})[(metric, team)] = value
        for p in wanted:
            # Replay decisions happen at event time; start from the state's own time.
            self._advance_watermark(self.runtimes[p], now)
        self.ready = True
        log.info("owning partitions %s: %d leads indexed", sorted(wanted), sum(len(self.runtimes[p].index) for p in wanted))

    def revoke(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.runtimes.pop(p, None)

    def _runtime(self, partition: int) -> PartitionRuntime:
        rt = self.runtimes.get(partition)
        if rt is None:
            rt = self.runtimes[partition] = PartitionRuntime(partition)
        return rt

    # -- time -------------------------------------------------------------------

    def _advance_watermark(self, rt: PartitionRuntime, now_us: int, backlog: bool = False) -> int:
        """Event time while catching up on a backlog, wall clock once caught
        up; never ahead of the wall clock, never backwards.

        A backlog holds many leads' events interleaved, a lead's follow-up
        often far behind other leads' later events. So while catching up the
        watermark trails the backlog's event time by the replay horizon (at
        least the allowed lateness): a clock is judged once its follow-up,
        wherever it sits in the backlog, has been read, or the backlog ends.
        ``backlog`` keeps event time for a record that ends a backlog.
        """
        hw = self.highwater(rt.partition)
        rt.caught_up = hw is not None and rt.last_offset + 1 >= hw
        live = now_us - self._lateness
        candidate = live if rt.caught_up and not backlog else min(rt.max_event_time - self._replay_lag, live)
        if candidate > rt.watermark:
            rt.watermark = candidate
        return rt.watermark

    def _wake(self, st: LeadState) -> int | None:
        wake = clock.next_wake(st)
        if wake is None:
            # Nothing running or waiting: forget the lead (and its dedupe
            # memory) once it has been quiet for the state TTL.
            return st.last_event_at + self._ttl
        return wake

    # -- the two entry points ---------------------------------------------------

    def handle(self, partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        """One record of lead-events."""
        now = self.wall_us()
        rt = self._runtime(partition)
        was_caught_up = rt.caught_up
        rt.last_offset = offset
        self.last_event_wall = now / 1_000_000
        result = decode(key, value, self.settings.max_event_bytes, now, self._skew)
        if isinstance(result, Rejection):
            self.metrics.reject(result.reason).inc()
            self.sink.dead_letter(key, value, result.reason, result.error)
            return
        event = result
        if event.occurred_at > rt.max_event_time:
            rt.max_event_time = event.occurred_at
        # The record that ends a backlog still belongs to it: were the watermark
        # to jump to the wall clock before it is applied, a handoff buffered
        # earlier in the backlog would be breached ahead of its own follow-up
        # (this record), which would then become a correction. The next tick
        # makes the jump, with every record of the backlog applied.
        w = self._advance_watermark(rt, now, backlog=not was_caught_up)
        entry = self.store.get(event.lead_id)
        if entry is None:
            entry = LeadEntry(partition, LeadState())
            self.store[event.lead_id] = entry
        if event.type in self._start_types or event.type == EventType.HANDED_OFF:
            self._prebind(event, entry.state)
        before = clock.open_clocks(entry.state)
        effects = clock.apply(entry.state, event, self.policies, w, now)
        if effects is None:
            self.metrics.duplicates.inc()
            return
        self._open_moved(rt, before, clock.open_clocks(entry.state))
        self.metrics.event(event.type).inc()
        if event.occurred_at <= w:
            self.metrics.late.inc()
        entry.partition = partition
        self._effects(rt, effects, now)
        rt.index.schedule(event.lead_id, self._wake(entry.state))
        self.sink.persist(partition, event.lead_id, entry)

    def _prebind(self, event: Any, st: LeadState) -> None:
        # Outcome series exist (at 0) from the moment a start arrives, at least
        # one lateness before its clock can be decided: Prometheus' increase()
        # never counts a series' first sample.
        if event.type == EventType.HANDED_OFF:
            self.metrics.prebind_team(event.team or st.owner_team)
        for i in self.policies.for_type(event.type):
            p = self.policies.policies[i]
            if "start" in p.roles(event):
                self.metrics.prebind(p.name, event.team or st.owner_team, event.rep or st.owner_rep)

    def tick(self, limit: int | None = None) -> int:
        """Decide what the watermark has reached; returns leads handled.

        Runs on the timer of every worker, for the partitions it owns."""
        now = self.wall_us()
        limit = limit or self.settings.timer_batch
        handled = 0
        for rt in list(self.runtimes.values()):
            w = self._advance_watermark(rt, now)
            for lead_id in rt.index.pop_due(w, limit):
                handled += 1
                entry = self.store.get(lead_id)
                if entry is None or entry.partition != rt.partition:
                    continue
                st = entry.state
                before = clock.open_clocks(st)
                effects = clock.advance(st, self.policies, lead_id, w, now)
                self._open_moved(rt, before, clock.open_clocks(st))
                if not effects and clock.next_wake(st) is None and w >= st.last_event_at + self._ttl:
                    del self.store[lead_id]
                    self.sink.persist(rt.partition, lead_id, None)
                    continue
                self._effects(rt, effects, now)
                rt.index.schedule(lead_id, self._wake(st))
                self.sink.persist(rt.partition, lead_id, entry)
            self._flush_windows(rt, now)
        return handled

    def progress(self, every_s: float = 10.0) -> list[str]:
        """Lines for the log while a backlog is read: how much is left and how
        far event time has come (every ``every_s``), and each partition that
        catches up. Counts and times only: never a lead id."""
        lines = []
        for p, rt in sorted(self.runtimes.items()):
            if rt.caught_up and not self._was_caught_up.get(p, False) and rt.last_offset >= 0:
                lines.append(f"partition {p} caught up at offset {rt.last_offset + 1}: judging by the wall clock now")
            self._was_caught_up[p] = rt.caught_up
        behind = [rt for rt in self.runtimes.values() if not rt.caught_up]
        now = self.wall_us()
        lag = sum(max(0, (self.highwater(rt.partition) or 0) - rt.last_offset - 1) for rt in behind)
        if lag and now - self._progress_at >= every_s * 1_000_000:  # 0: nothing fetched yet
            self._progress_at = now
            newest = max(rt.max_event_time for rt in behind)
            seen = format_timestamp_us(newest) if newest != NEVER else "nothing yet"
            lines.append(f"catching up: {lag} records left in {len(behind)} partition(s); newest event time {seen}")
        return lines

    def pending(self) -> bool:
        """Is any partition's index due at its current watermark?"""
        for rt in self.runtimes.values():
            due = rt.index.next_due_us()
            if due is not None and due <= rt.watermark:
                return True
        return False

    # -- effects ----------------------------------------------------------------

    def _open_moved(self, rt: PartitionRuntime, before: dict[str, str | None], after: dict[str, str | None]) -> None:
        """Keep the open-clock counts equal to the sum of every lead's open clocks."""
        if before == after:
            return
        team = self.metrics.team
        for name, t in before.items():
            if name in self._goal and after.get(name, _GONE) != t:
                _dec(rt.open, (name, team(t)))
        for name, t in after.items():
            if name in self._goal and before.get(name, _GONE) != t:
                rt.open[(name, team(t))] += 1

    def _effects(self, rt: PartitionRuntime, effects: list[Effect], now_us: int) -> None:
        m = self.metrics
        for e in effects:
            if not isinstance(e, (Handoff, Touch)) and e.policy not in self._goal:
                # A clock of a policy no longer in the file (removed or renamed
                # before a restart) runs out silently: it has no goal to report
                # and rebuild() does not count it as open.
                continue
            if isinstance(e, Decision):
                team = m.team(e.team)
                if e.outcome == clock.CORRECTED:
                    m.correction(e.policy, e.team).inc()
                else:
                    m.outcome(e.policy, e.outcome, e.team).inc()
                    if e.outcome == clock.BREACHED:
                        m.breach(e.policy, e.team, e.rep).inc()
                    if e.was_at_risk:
                        _dec(rt.at_risk, (e.policy, team))
                    if e.elapsed_us is not None:
                        m.elapsed_of(e.policy, e.team).observe(e.elapsed_us / 1_000_000)
                self.sink.outcome(e.lead_id, outcome_record(e, self._goal[e.policy]))
            elif isinstance(e, ClockStarted):
                m.prebind(e.policy, e.team, e.rep)
            elif isinstance(e, AtRisk):
                rt.at_risk[(e.policy, m.team(e.team))] += 1
                m.at_risk_of(e.policy, e.team).inc()
            elif isinstance(e, PauseExpired):
                m.pause_expired_of(e.policy, e.team).inc()
            elif isinstance(e, AtRiskCleared):
                _dec(rt.at_risk, (e.policy, m.team(e.team)))
            elif isinstance(e, OwnerChanged):
                old, new = m.team(e.old_team), m.team(e.new_team)
                if e.at_risk:
                    _dec(rt.at_risk, (e.policy, old))
                    rt.at_risk[(e.policy, new)] += 1
            elif isinstance(e, LateStop):
                m.elapsed_of(e.policy, e.team).observe(e.elapsed_us / 1_000_000)
            elif isinstance(e, Handoff):
                m.handoffs_of(e.team).inc()
                self._window_add(rt, now_us, e.at, "handoffs", m.team(e.team), 1)
            elif isinstance(e, Touch):
                team = m.team(e.team)
                m.attempts_of(e.team).inc()
                self._window_add(rt, now_us, e.at, "attempts", team, 1)
                if e.latency_us is not None:
                    m.followup_of(e.team).observe(e.latency_us / 1_000_000)
                    self._window_add(rt, now_us, e.at, "first", team, 1)
                    self._window_add(rt, now_us, e.at, "latency", team, e.latency_us / 1_000_000)

    # -- windows ----------------------------------------------------------------

    def _window_add(self, rt: PartitionRuntime, now_us: int, at_us: int, metric: str, team: str, amount: float) -> None:
        at = at_us // 1_000_000
        now = now_us // 1_000_000
        for size, _, retention in WINDOWS:
            start = at - at % size
            if start + size + retention < now:
                continue  # older than anything a dashboard shows
            cell = rt.windows.setdefault((size, start), {})
            cell[(metric, team)] = cell.get((metric, team), 0) + amount
            rt.dirty.add((size, start, metric, team))

    def _flush_windows(self, rt: PartitionRuntime, now_us: int) -> None:
        """One changelog record per changed window cell per timer pass."""
        for size, start, metric, team in rt.dirty:
            key = window_key(size, start, metric, team, rt.partition)
            value = rt.windows[(size, start)][(metric, team)]
            self.window_store[key] = value
            self.sink.window(rt.partition, key, value)
        rt.dirty.clear()
        now = now_us // 1_000_000
        for size, _, retention in WINDOWS:
            for (s, start), cells in list(rt.windows.items()):
                if s == size and start + size + retention < now:
                    for metric, team in cells:
                        key = window_key(size, start, metric, team, rt.partition)
                        self.window_store.pop(key, None)
                        self.sink.window(rt.partition, key, None)
                    del rt.windows[(s, start)]

    # -- reading ----------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """What the scrape-time collector shows."""
        open_: dict[str, dict[str, int]] = {}
        at_risk: dict[str, dict[str, int]] = {}
        partitions = {}
        windows: dict[tuple[str, str, str], float] = {}
        now = self.wall_us() // 1_000_000
        for rt in self.runtimes.values():
            for (policy, team), n in rt.open.items():
                open_.setdefault(policy, {}).setdefault(team, 0)
                open_[policy][team] += n
            for (policy, team), n in rt.at_risk.items():
                at_risk.setdefault(policy, {}).setdefault(team, 0)
                at_risk[policy][team] += n
            hw = self.highwater(rt.partition)
            partitions[rt.partition] = {
                "lag": None if hw is None else max(0, hw - rt.last_offset - 1),
                "watermark": None if rt.watermark == NEVER else rt.watermark / 1_000_000,
                "caught_up": rt.caught_up,
                "indexed": len(rt.index),
            }
            for size, label, _ in WINDOWS:
                for (metric, team), value in rt.windows.get((size, now - now % size), {}).items():
                    windows[(metric, team, label)] = windows.get((metric, team, label), 0) + value
        return {
            "open": open_,
            "at_risk": at_risk,
            "partitions": partitions,
            "windows": windows,
            "ready": self.ready,
            "last_event_wall": self.last_event_wall,
            "started_wall": self.started_wall,
        }

    def rep_queue(self, rep: str, limit: int = 500) -> list[dict[str, Any]]:
        """A rep's open clocks on this worker, the most urgent first.

        An operator's query: it reads every lead this worker holds, which is
        fine once in a while and never happens per event."""
        rows = []
        for lead_id, entry in self.store.items():
            if entry.partition not in self.runtimes:
                continue
            for name, c in entry.state.clocks.items():
                if c.status != clock.IDLE and c.rep == rep and name in self._goal:
                    rows.append((c.deadline if c.status == clock.RUNNING else None, lead_id, name, c))
        rows.sort(key=lambda r: (r[0] is None, r[0] or 0, r[1], r[2]))
        return [
            {
                "lead_id": lead_id,
                "policy": name,
                "status": clock.STATUS_NAMES[c.status],
                "started_at": format_timestamp_us(c.started_at),
                "deadline": None if deadline is None else format_timestamp_us(deadline),
                "at_risk": c.at_risk,
                "team": c.team,
            }
            for deadline, lead_id, name, c in rows[:limit]
        ]

    def lead_view(self, lead_id: str) -> dict[str, Any] | None:
        """A lead's SLA timeline for the query API (no metrics, no logs)."""
        entry = self.store.get(lead_id)
        if entry is None:
            return None
        ts = format_timestamp_us
        st = entry.state
        clocks = {}
        for name, c in st.clocks.items():
            clocks[name] = {
                "status": clock.STATUS_NAMES[c.status],
                "cycle": c.cycle,
                "started_at": ts(c.started_at) if c.cycle else None,
                "deadline": ts(c.deadline) if c.status == clock.RUNNING else None,
                "at_risk": c.at_risk,
                "team": c.team,
                "rep": c.rep,
                "last_outcome": c.last_outcome,
                "last_deadline": ts(c.last_deadline) if c.last_outcome else None,
            }
        return {
            "lead_id": lead_id,
            "partition": entry.partition,
            "owner": {"team": st.owner_team, "rep": st.owner_rep},
            "last_event_at": ts(st.last_event_at) if st.last_event_at else None,
            "waiting_events": len(st.buffer),
            "clocks": clocks,
        }


def _dec(counter: Counter[tuple[str, str]], key: tuple[str, str]) -> None:
    n = counter[key] - 1
    if n > 0:
        counter[key] = n
    else:
        del counter[key]
