"""The monitor's runtime, free of Faust: one record or one timer pass at a
time, from bytes to a clock transition, applied once.

The walk of one record: ``Engine.handle`` → ``codec.decode`` →
``PartitionRuntime.advance`` (the watermark) → ``clock.apply`` (a
``Transition``) → ``Effects.apply`` (metrics, gauges, windows, outcome
records) → ``DeadlineIndex.schedule`` (the lead's next wake-up) →
``Sink.persist`` (the changelog). A timer pass does the same with
``clock.advance`` for the leads whose wake-up the watermark reached.

The Faust app (``streams.app``) feeds it records and timer ticks and gives it
a store (the lead table's data) and a sink; tests feed it directly.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from leadsla.models import clock
from leadsla.models.clock import LeadState
from leadsla.models.durations import format_duration_us
from leadsla.models.policy import PolicySet
from leadsla.streams import windows
from leadsla.streams.codec import (
    PROCESSING_ERROR,
    LeadEntry,
    Rejection,
    decode,
    delivery_key,
    parse_delivery_key,
    parse_period_cell_key,
    parse_window_key,
    period_cell_key,
)
from leadsla.streams.effects import Effects
from leadsla.streams.ledger import PeriodReporter
from leadsla.streams.metrics import Metrics
from leadsla.streams.partition import PartitionRuntime
from leadsla.streams.settings import Settings
from leadsla.streams.sink import Sink
from leadsla.streams.targets import TargetBook
from leadsla.streams.views import Views

log = logging.getLogger("leadsla")

__all__ = ["Engine", "LeadEntry", "collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while the block runs, and
    everything alive at its end moved out of the collector's sight
    (``gc.freeze``). For the blocks that build a recovered table and its
    index (``ChangelogReader.catch_up``, ``Engine.rebuild``).

    Recovery creates a few tracked objects per lead (its state, lists,
    clocks, index entries), all long-lived, none in a reference cycle. With
    the collector on, its passes walked them again and again: at 200,000
    leads three quarters of the changelog reader's time (18 µs of 24 per
    record) and most of the rebuild's, and the passes after recovery
    stalled the worker for seconds. Frozen, the recovered table costs the
    collector nothing; its objects are still freed by reference counting
    when a lead is dropped or replaced. The price: garbage in a reference
    cycle at the block's end is never collected, about 50 objects per
    second of reading (the Kafka client's), a few kilobytes per recovery."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


class Engine:
    """Owns the partitions this worker holds and the leads in them.

    ``store`` maps lead ids to ``LeadEntry`` (the lead table), ``windows`` maps
    window keys to values (the window table), ``highwater`` gives a partition's
    fetch high watermark (None: unknown) and ``wall_us`` the wall clock in
    epoch µs. ``reread(partition, first, end)`` asks for the records at
    offsets ``first`` to ``end`` - 1 of a partition to be read again and
    handed to ``handle`` (a gap: records that never reached the engine)."""

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
        reread: Callable[[int, int, int], None] = lambda partition, first, end: None,
        deliveries: MutableMapping[str, list[float]] | None = None,
        period_cells: MutableMapping[str, list[float]] | None = None,
    ) -> None:
        self.settings = settings
        self.policies = policies
        self.metrics = metrics
        self.store = store
        self.window_store = windows
        self.delivery_store: MutableMapping[str, list[float]] = {} if deliveries is None else deliveries
        self.period_store: MutableMapping[str, list[float]] = {} if period_cells is None else period_cells
        self.sink = sink
        self.highwater = highwater
        self.wall_us = wall_us
        self.reread = reread
        self.effects = Effects(policies, metrics, sink)
        self.runtimes: dict[int, PartitionRuntime] = {}
        self.ready = False
        self.started_wall = time.time()
        self.last_event_wall: float | None = None
        self.views = Views(self)
        self._lateness = settings.lateness_us
        self._replay_lag = max(self._lateness, round(settings.replay_horizon * 1_000_000))
        self._ttl = round(settings.state_ttl * 1_000_000)
        self._skew = round(settings.max_clock_skew * 1_000_000)
        self.targets = TargetBook(policies)
        self.reporter = PeriodReporter(policies, sink, settings.partitions)
        self._deliveries_sweep_at = 0

    # -- partitions -------------------------------------------------------------

    def rebuild(self, partitions: Iterable[int], positions: dict[int, int | None] | None = None) -> None:
        """Index every lead of the given partitions after table recovery.
        ``positions`` is where the group resumes in each (None: from the start)."""
        with collector_paused():
            self._rebuild(partitions, positions)

    def _rebuild(self, partitions: Iterable[int], positions: dict[int, int | None] | None) -> None:
        wanted = set(partitions)
        positions = positions or {}
        for p in wanted:
            old = self.runtimes.get(p)
            if old is not None:  # cells changed since the last timer pass are read back below
                self._flush_deliveries(old)
                self._flush_periods(old)
            self.runtimes[p] = PartitionRuntime(p, positions.get(p))
        changes = PolicyChanges()
        policies, goals, persist = self.policies, self.effects.goals, self.sink.persist
        runtimes, rebase, next_wake, ttl = self.runtimes, clock.rebase, clock.next_wake, self._ttl
        # The leads' gauge contributions, counted per (partition, policy,
        # team, rep, status, at risk) in the order first seen; added to the
        # gauges below, a set at a time.
        shown: dict[tuple[int, str, str | None, str | None, int, bool], int] = {}
        for lead_id, entry in list(self.store.items()):
            part = entry.partition
            rt = runtimes.get(part)
            if rt is None or part not in wanted:
                continue
            st = entry.state
            if entry.legacy:
                clock.restore_shown(st, policies)
                entry.legacy = False
            moved = rebase(st, policies)
            if moved:
                changes.add(moved, self.wall_us())
                persist(part, lead_id, entry)
            if st.last_event_at > rt.max_event_time:  # rt.saw
                rt.max_event_time = st.last_event_at
            for name, (t, rep, status, risk) in st.shown.items():
                if name in goals:
                    counted = (part, name, t, rep, status, risk)
                    shown[counted] = shown.get(counted, 0) + 1
            wake = next_wake(st)
            rt.index.schedule(lead_id, st.quiet_since + ttl if wake is None else wake)  # as _wake
        self._count_shown(shown)
        for key, value in list(self.window_store.items()):
            size, start, metric, team_label, part = parse_window_key(key)
            rt = self.runtimes.get(part)
            if rt is not None and part in wanted:
                rt.windows.setdefault((size, start), {})[(metric, team_label)] = value
        for key, cell in list(self.delivery_store.items()):
            target, period, start, day, part = parse_delivery_key(key)
            rt = self.runtimes.get(part)
            if rt is not None and part in wanted:
                rt.deliveries[(target, period, start, day)] = [cell[0], cell[1]]
                rt.targets_unsent.add((target, period, start))
        for key, cell in list(self.period_store.items()):
            policy, team_label, period, end, part = parse_period_cell_key(key)
            rt = self.runtimes.get(part)
            if rt is not None and part in wanted:
                rt.period_cells[(policy, team_label, period, end)] = [cell[0], cell[1]]
                rt.period_unsent.add((policy, team_label, period, end))
        now = self.wall_us()
        for p in wanted:
            self._watermark(self.runtimes[p], now)
        for line in changes.lines(self.policies):
            log.warning(line)
        self.ready = True
        log.info("owning partitions %s: %d leads indexed", sorted(wanted), sum(len(self.runtimes[p].index) for p in wanted))

    def _count_shown(self, shown: dict[tuple[int, str, str | None, str | None, int, bool], int]) -> None:
        """Add recovered leads to their partitions' gauges: ``shown`` maps
        (partition, policy, team, rep, status, at risk) to a number of leads,
        in the order the leads were read. What ``PartitionRuntime.count``
        (+1) and ``Metrics.prebind`` do per lead, done once per set: the
        team labels are asked for, and the counts keyed, in the same order
        (a bounded label set admits teams in the order they are asked)."""
        team, prebind, runtimes = self.metrics.team, self.metrics.prebind, self.runtimes
        for (part, name, t, rep, status, risk), n in shown.items():
            rt = runtimes[part]
            key = (name, team(t))
            rt.open[key] += n
            if risk:
                rt.at_risk[key] += n
            if status == clock.PAUSED:
                rt.paused[key] += n
            prebind(name, t, rep)

    def revoke(self, partitions: Iterable[int]) -> None:
        """Stop running partitions (a rebalance began): their runtimes, gauges
        and per-partition series go. Their leads stay until ``keep_only``:
        Faust recovers a partition it keeps across a rebalance from where it
        stopped, trusting the table's data to still be there. Cells changed
        since the last timer pass are written first (the caller drains the
        sink): the next owner recovers them from the changelogs."""
        for p in partitions:
            rt = self.runtimes.pop(p, None)
            if rt is not None:
                self._flush_deliveries(rt)
                self._flush_periods(rt)

    def keep_only(self, partitions: Iterable[int]) -> None:
        """After a rebalance, drop the leads and window cells of every
        partition this worker no longer owns (``partitions`` is its whole
        assignment): the new owner recovers them from the changelogs, and this
        worker would do so too, from the start, were one to come back. One
        scan of the table, at rebalance time only."""
        owned = set(partitions)
        for p in [p for p in self.runtimes if p not in owned]:
            del self.runtimes[p]
        for lead_id in [k for k, e in self.store.items() if e.partition not in owned]:
            del self.store[lead_id]
        for key in [k for k in self.window_store if parse_window_key(k)[4] not in owned]:
            del self.window_store[key]
        for key in [k for k in self.delivery_store if parse_delivery_key(k)[4] not in owned]:
            del self.delivery_store[key]
        for key in [k for k in self.period_store if parse_period_cell_key(k)[4] not in owned]:
            del self.period_store[key]

    def _runtime(self, partition: int) -> PartitionRuntime:
        rt = self.runtimes.get(partition)
        if rt is None:
            rt = self.runtimes[partition] = PartitionRuntime(partition)
        return rt

    def _watermark(self, rt: PartitionRuntime, now_us: int, backlog: bool = False) -> int:
        return rt.advance(now_us, self.highwater(rt.partition), self._lateness, self._replay_lag, backlog)

    def _wake(self, st: LeadState, wake: int | None) -> int:
        # Nothing scheduled: forget the lead (and its dedupe memory) once it
        # has been quiet for the state TTL.
        return st.quiet_since + self._ttl if wake is None else wake

    # -- the two entry points ---------------------------------------------------

    def handle(self, partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        """One record of lead-events (raw bytes, as consumed)."""
        self.handle_batch(partition, ((offset, key, value),))

    def handle_batch(self, partition: int, records: Iterable[tuple[int, bytes | None, bytes | None]]) -> None:
        """Records of one partition of lead-events, in offset order, as
        ``(offset, key, value)`` (raw bytes, as consumed): a fetch at a time.
        The wall clock and the partition's fetch high watermark are read once
        per batch (a batch is handled in one go, without yielding to the event
        loop, so the consumer cannot move the high watermark meanwhile); each
        record is decided as if handled alone with them."""
        now = self.wall_us()
        rt = self._runtime(partition)
        highwater = self.highwater(partition)
        now_s = now / 1_000_000
        max_bytes, skew = self.settings.max_event_bytes, self._skew
        lateness, replay_lag = self._lateness, self._replay_lag
        store, policies, sink, index = self.store, self.policies, self.sink, rt.index
        apply_effects, persist, schedule = self.effects.apply, sink.persist, index.schedule
        m = self.metrics
        event_cells, duplicates, late = m.event_cells, m.duplicates.cell, m.late.cell
        ttl = self._ttl
        for offset, key, value in records:
            was_caught_up = rt.caught_up
            if offset == rt.next_offset:  # the usual case of check_offset: the next offset, in order
                rt.next_offset = offset + 1
                if offset > rt.last_offset:
                    rt.last_offset = offset
            else:
                gap = rt.check_offset(offset)
                if gap is not None:
                    first, present = gap
                    m.offset_gaps.inc(present - first)
                    log.warning("partition %d: offsets %d..%d did not reach the engine; reading them again",
                                partition, first, present - 1)
                    self.reread(partition, first, present)
            self.last_event_wall = now_s
            event = decode(key, value, max_bytes, now, skew)
            if isinstance(event, Rejection):
                m.reject(event.reason).inc()
                sink.dead_letter(key, value, event.reason, event.error)
                continue
            occurred_at = event.occurred_at
            if occurred_at > rt.max_event_time:  # rt.saw
                rt.max_event_time = occurred_at
            # The record that ends a backlog still belongs to it: were the watermark
            # to jump to the wall clock before it is applied, a handoff buffered
            # earlier in the backlog would be breached ahead of its own follow-up
            # (this record), which would then become a correction. The next tick
            # makes the jump, with every record of the backlog applied.
            w = rt.advance(now, highwater, lateness, replay_lag, not was_caught_up)
            lead_id = event.lead_id
            entry = store.get(lead_id)
            if entry is None:
                entry = store[lead_id] = LeadEntry(partition, LeadState())
            st = entry.state
            try:
                tr = clock.apply(st, event, policies, w, now)
                if tr.duplicate:
                    duplicates[0] += 1
                    continue
                if w > st.received_w:
                    st.received_w = w
                event_cells[event.type][0] += 1
                if occurred_at <= w:
                    late[0] += 1
                entry.partition = partition
                apply_effects(rt, tr, now)
                wake = tr.wake
            except Exception as exc:
                # A defect must cost one record, not the agent: the record goes to
                # the dead-letter topic with the error's type (never its text,
                # which could quote the event), and the next record goes on.
                log.error("partition %d offset %d: an event could not be processed (%s); sent to the dead-letter topic",
                          partition, offset, exc.__class__.__name__)
                m.reject(PROCESSING_ERROR).inc()
                sink.dead_letter(key, value, PROCESSING_ERROR, f"could not be processed: {exc.__class__.__name__}")
                wake = clock.next_wake(st)
            # Nothing scheduled: forget the lead (and its dedupe memory) once it
            # has been quiet for the state TTL (as ``_wake``).
            schedule(lead_id, st.quiet_since + ttl if wake is None else wake)
            persist(partition, lead_id, entry)

    def tick(self, limit: int | None = None) -> int:
        """Decide what the watermark has reached, at most ``limit`` leads per
        partition; returns the leads handled. Runs on the timer of every
        worker, for the partitions it owns.

        Per partition, the due leads are popped from the index at once and
        decided in one pass, with everything the pass needs bound first; the
        window, delivery and period cells they changed are written once at
        the end of the pass."""
        now = self.wall_us()
        limit = limit or self.settings.timer_batch
        handled = 0
        store, policies, ttl = self.store, self.policies, self._ttl
        advance, forget = clock.advance, clock.forget
        # What the timer decides is written at once (persist_now): no offset
        # covers it until the next commit.
        apply_effects, persist = self.effects.apply, self.sink.persist_now
        for rt in list(self.runtimes.values()):
            w = self._watermark(rt, now)
            due = rt.index.pop_due(w, limit)
            handled += len(due)
            partition, schedule = rt.partition, rt.index.schedule
            for lead_id in due:
                entry = store.get(lead_id)
                if entry is None or entry.partition != partition:
                    continue
                st = entry.state
                tr = advance(st, policies, lead_id, w, now)
                apply_effects(rt, tr, now)
                wake = tr.wake
                if wake is None:  # quiet: forgotten once quiet for the state TTL
                    forget_at = st.quiet_since + ttl
                    if w >= forget_at:
                        apply_effects(rt, forget(st), now)
                        del store[lead_id]
                        persist(partition, lead_id, None)
                        continue
                    wake = forget_at
                schedule(lead_id, wake)
                persist(partition, lead_id, entry)
            for key, value in windows.flush(rt, now // 1_000_000):
                if value is None:
                    self.window_store.pop(key, None)
                else:
                    self.window_store[key] = value
                self.sink.window(rt.partition, key, value)
            self._flush_deliveries(rt)
            self._flush_periods(rt)
            self.reporter.report(rt)
        if now >= self._deliveries_sweep_at:
            self._deliveries_sweep_at = now + 3600 * 1_000_000  # hourly is plenty
            for rt in self.runtimes.values():
                self._sweep_deliveries(rt)
                self._sweep_periods(rt)
        return handled

    def _flush_deliveries(self, rt: PartitionRuntime) -> None:
        """One changelog record per changed delivery cell per timer pass."""
        for cell_key in rt.deliveries_dirty:
            key = delivery_key(*cell_key, rt.partition)
            value = rt.deliveries[cell_key]
            self.delivery_store[key] = value
            self.sink.delivery(rt.partition, key, value)
        rt.deliveries_dirty.clear()

    def _flush_periods(self, rt: PartitionRuntime) -> None:
        """One changelog record per changed period cell per timer pass."""
        for cell_key in rt.period_dirty:
            key = period_cell_key(cell_key[0], cell_key[2], cell_key[3], rt.partition, cell_key[1])
            value = rt.period_cells[cell_key]
            self.period_store[key] = value
            self.sink.period_cell(rt.partition, key, value)
        rt.period_dirty.clear()

    def _sweep_periods(self, rt: PartitionRuntime) -> None:
        """Period cells go a whole period after their period was reported
        closed (kept meanwhile for the compliance of the last period)."""
        for cell_key in [k for k in rt.period_cells if self.reporter.expired(k[0], k[3], rt.reported)]:
            del rt.period_cells[cell_key]
            rt.period_unsent.discard(cell_key)
            key = period_cell_key(cell_key[0], cell_key[2], cell_key[3], rt.partition, cell_key[1])
            self.period_store.pop(key, None)
            self.sink.period_cell(rt.partition, key, None)

    def _sweep_deliveries(self, rt: PartitionRuntime) -> None:
        """Cells of periods that ended more than a period ago, in event time,
        go (a period is judged once, after its end, so the previous one is
        still kept; a backlog replay reports each period before it goes)."""
        for cell_key in [k for k in rt.deliveries if self.targets.expired(k[0], k[2], rt.reported)]:
            del rt.deliveries[cell_key]
            rt.targets_unsent.discard(cell_key[:3])
            key = delivery_key(*cell_key, rt.partition)
            self.delivery_store.pop(key, None)
            self.sink.delivery(rt.partition, key, None)

    def pending(self) -> bool:
        """Is any partition's index due at its current watermark?"""
        for rt in self.runtimes.values():
            due = rt.index.next_due_us()
            if due is not None and due <= rt.watermark:
                return True
        return False

    def next_due_wall_us(self) -> int | None:
        """The wall time (epoch µs) at which the earliest index bucket of a
        caught-up partition falls due: there the watermark is the wall clock
        less the allowed lateness. None when no caught-up partition has one
        (a backlog's watermark follows its records, not the clock)."""
        best = None
        lateness = self._lateness
        for rt in self.runtimes.values():
            if not rt.caught_up:
                continue
            due = rt.index.next_due_us()
            if due is not None and (best is None or due + lateness < best):
                best = due + lateness
        return best


class PolicyChanges:
    """What a changed policies file did to the running clocks of recovered
    leads (``clock.rebase``), summed per policy for the start-up log: one
    line per policy, never a lead id."""

    def __init__(self) -> None:
        # policy -> [clocks moved, already past the new deadline, removed, {(old goal, new goal) µs}]
        self._by_policy: dict[str, list[Any]] = {}

    def add(self, moved: list[clock.Rebased], now_us: int) -> None:
        """Count one lead's moved clocks; ``now_us`` is the wall clock (epoch µs)."""
        for r in moved:
            row = self._by_policy.setdefault(r.policy, [0, 0, 0, set()])
            if r.removed:
                row[2] += 1
                continue
            row[0] += 1
            row[1] += r.new_deadline < now_us
            if r.old_goal and r.old_goal != r.new_goal and len(row[3]) < 3:
                row[3].add((r.old_goal, r.new_goal))

    def lines(self, policies: PolicySet) -> list[str]:
        """The log lines, one per policy, in name order."""
        out = []
        for name, (n, past, removed, goals) in sorted(self._by_policy.items()):
            if removed:
                out.append(f"policy {name} is no longer in the policies file: {removed} running clock(s) "
                           "closed without a decision")
                continue
            policy = policies.by_name(name)
            if not goals:
                what = "deadlines or at-risk instants moved"
            elif policy.goal_days is None:
                was = ", ".join(sorted({format_duration_us(old) for old, _ in goals}))
                what = f"goal {was} -> {policy.goal_text}"
            else:  # a goal in business days: each clock's business length is its own
                pairs = ", ".join(f"{format_duration_us(a)} -> {format_duration_us(b)}" for a, b in sorted(goals))
                what = f"goal {policy.goal_text}: business time {pairs}"
            out.append(f"policy {name} changed since the recovered state ({what}): the goal in force applies "
                       f"from each clock's start; {n} running clock(s) moved, {past} already past the new "
                       "deadline (decided as the watermark passes it)")
        return out
