"""leadsla scale figures: what a worker holding many open clocks costs, and
how its timer behaves meanwhile. In process, without a broker or Faust.

    python -m bench.scale [--clocks 1000000] [--burst 100000] [--teams 50]
                          [--policies-count 10] [--quick] [--out bench/results]

Figures 1 to 3 share one ``Engine`` as the worker builds it (``Metrics``, a
``KafkaSink`` over a producer that drops every record, the partitions
rebuilt empty), with the example policies plus ``bench_short``: a 24x7
policy with a goal of ``--goal`` seconds (at risk at half of it) that only
the benchmark's own leads match (``attributes.form: bench_short``). Records
go to ``Engine.handle_batch`` a partition's fetch at a time, every partition
caught up (its high watermark one past the last offset handed over), lead
``i`` on partition ``i mod partitions``. The engine's wall clock
(``VirtualWall``) is real time that can be held still: while records are
loaded it stands still, so a handoff dated one second after the watermark
is on time however long the loading takes; it runs again for the measured
phases. The worker's settings are ``Settings()``'s (partitions, timer
interval and slice, commit interval, allowed lateness: the JSON records
them), so ``LEADSLA_*`` changes them as it changes the worker's.

1. **RSS per open clock.** Leads are handed off (lead.created and lead.mql
   before, as real leads come) until the engine's gauges (``rt.open``,
   which ``/metrics`` shows) count ``--clocks`` open clocks: with the
   example policies a handoff opens three clocks, four for a demo request.
   The wall clock then moves past the allowed lateness and timer passes
   apply the handoffs, so the clocks run. RSS (``VmRSS`` of
   ``/proc/self/status``, after ``gc.collect()``) before and after, divided
   by the open clocks the views count. Target ≤ 1 KiB. ``trimmed_bytes``
   is the same once the C allocator has returned its free pages
   (``malloc_trim``): what live objects hold, without what transient
   records (queued outcome records, encoded states) left resident.
   **RSS per decided, quiet lead**: then ``--quiet`` leads with a whole
   history (created, mql, handed off, attempted, connected, qualified): all
   their clocks decided, each kept for dedupe until its state TTL (30 days
   by default). Their RSS over their number; no target.
2. **Deadline firing lateness**, with those clocks held: ``--due`` leads
   whose ``bench_short`` deadlines fall evenly over the next
   ``--due-window`` seconds. The timer runs as the worker's
   (``streams.timer``'s ``every`` and ``deadline_pass``, as ``streams.app``
   runs them: a pass every ``timer_interval`` or when the next deadline
   bucket falls due, ``Engine.tick`` in slices, draining the sink and
   yielding between them) alongside the commit task (the
   sink's record cache encoded and flushed every ``commit_interval``). The
   sink notes ``time.monotonic_ns()`` as each outcome record reaches it;
   a breach's lateness is that instant, in the engine's wall time, less its
   due instant: ``deadline + allowed lateness``, where the watermark passes
   the deadline. p50, p99 (the value) and max, in ms. Target p99 ≤ 1 s.
3. **Consumption stall in a burst**: ``--burst`` leads whose ``bench_short``
   deadlines all fall due at the same instant (spread over
   ``--burst-window`` seconds if given), as a business-hours calendar makes
   it when it opens on the night's handoffs. Their handoffs are applied
   before the measured phase; in it, the timer and the commit task as in 2
   while a stand-in consumer hands a fetch of 100 records (follow-ups dated
   now, on the open leads) to ``handle_batch`` every 5 ms and drains the
   sink, as the worker's batch path does. The value is the longest gap
   between the starts of two consumer batches, from the start of the phase
   (the burst's at-risk warnings included) until every burst lead is
   breached; also how long deciding took after the due instant, and the
   longest timer slice, commit and garbage collection, which say what the
   stall is made of. Target ≤ 1 s.
4. **/metrics render time**: a separate engine with ``--policies-count``
   policies made from the example's four shapes (renamed copies) and
   ``--render-leads`` leads of demo traffic over 30 days, spread over
   ``--teams`` teams of ten reps each, read as a backlog with a timer pass
   every 1,000 records; the collectors registered as the worker registers
   them (``Metrics``, ``RuntimeCollector``, ``LedgerCollector`` over a
   ``Ledger`` that reads the engine's period reports). The value is the
   median of ``--renders`` awaits of ``render_metrics`` (what ``/metrics``
   serves); also ``generate_latest`` alone, the page's bytes and its
   series. Target ≤ 20 ms.

Prints a table and writes JSON (one object per figure: value, unit, target,
sizes, details) to ``--out``/scale-<timestamp>.json. Holding a million open
clocks takes a few GiB. Absolute numbers move from machine to machine; not
a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import ctypes
import gc
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiokafka.producer.message_accumulator import BatchBuilder
from prometheus_client import CollectorRegistry, generate_latest

from bench.run import US, cpu_s, rss_mib
from leadsla.models.clock import RUNNING
from leadsla.models.events import format_timestamp_us, parse_timestamp_us
from leadsla.models.policy import PolicySet, load_policies
from leadsla.streams import index as deadline_index
from leadsla.streams.demo import TrafficGenerator
from leadsla.streams.engine import Engine
from leadsla.streams.ledger import Ledger
from leadsla.streams.metrics import LedgerCollector, Metrics, RuntimeCollector, render_metrics
from leadsla.streams.settings import EXAMPLE_POLICIES, Settings
from leadsla.streams.sink import KafkaSink
from leadsla.streams.timer import deadline_pass, every, next_due_s

MS = 1_000
SHORT = "bench_short"  # the benchmark's short-goal policy (figures 2 and 3)
# Leads of figures 1-3 are spread over these teams and reps (bounded labels).
TEAMS, REPS = 20, 200
# Handoffs are dated this long after the watermark: on time, buffered until
# the watermark reaches them.
ON_TIME_US = 1 * US
# How far the held wall clock moves to apply handoffs dated ON_TIME_US after
# the watermark: their wake-up, plus the deadline index's bucket, plus a
# margin.
APPLY_US = ON_TIME_US + deadline_index.BUCKET_US + US // 2
LOAD_CHUNK = 1000  # leads per load step (the sink's record cache is flushed after each)
CONSUMER_BATCH, CONSUMER_PAUSE = 100, 0.005  # records per fetch, seconds between fetches

FULL = {"clocks": 1_000_000, "quiet": 100_000, "due": 20_000, "due_window": 20.0, "goal": 10,
        "burst": 100_000, "burst_window": 0.0, "render_leads": 10_000}
QUICK = {"clocks": 20_000, "quiet": 5_000, "due": 2_000, "due_window": 4.0, "goal": 4,
         "burst": 5_000, "burst_window": 0.0, "render_leads": 2_000}


# -- measuring helpers ------------------------------------------------------------


def vm_rss_mib() -> float:
    """This process's resident set now (``VmRSS``), MiB, after a full collection."""
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def trimmed_rss_mib() -> float:
    """``vm_rss_mib`` once the C allocator has handed its free pages back
    (glibc's ``malloc_trim``; elsewhere the same as ``vm_rss_mib``). Memory
    freed after a peak (records queued in the sink, say) stays resident
    until then: this reading is what live objects hold."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return vm_rss_mib()


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q ≤ 1) of ``values`` (not empty)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(q * len(ordered) + 0.999999) - 1))]


class Longest:
    """The longest of the durations (seconds) added, and how many there were."""

    def __init__(self) -> None:
        self.s = 0.0
        self.n = 0

    def add(self, seconds: float) -> None:
        self.n += 1
        if seconds > self.s:
            self.s = seconds

    @property
    def ms(self) -> float:
        return self.s * MS


class GcPauses:
    """The longest garbage collection (seconds) while installed, by ``gc.callbacks``."""

    def __init__(self) -> None:
        self.longest = Longest()
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.longest.add(time.perf_counter() - self._started)

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


class VirtualWall:
    """The engine's wall clock, epoch µs: real time that can be held still.

    Frozen, it reads one instant, which ``advance`` moves on; thawed, it runs
    on from there at the pace of ``time.monotonic_ns``, so that ``at``
    turns a monotonic reading taken since the last thaw into the engine's
    wall time."""

    def __init__(self) -> None:
        self._origin_us = time.time_ns() // 1000
        self._mono0 = time.monotonic_ns()
        self._frozen: int | None = None

    def __call__(self) -> int:
        if self._frozen is not None:
            return self._frozen
        return self._origin_us + (time.monotonic_ns() - self._mono0) // 1000

    def at(self, mono_ns: int) -> int:
        """The wall time (epoch µs) of a ``time.monotonic_ns()`` reading."""
        return self._origin_us + (mono_ns - self._mono0) // 1000

    def mono_ns(self, wall_us: int) -> int:
        """The ``time.monotonic_ns()`` reading of a wall instant (``at``'s inverse)."""
        return self._mono0 + (wall_us - self._origin_us) * 1000

    def freeze(self) -> None:
        self._frozen = self()

    def advance(self, us: int) -> None:
        """Move the frozen clock ``us`` on (time passes while nothing runs)."""
        if self._frozen is None:
            raise RuntimeError("only a frozen wall clock is moved by hand")
        self._frozen += us

    def thaw(self) -> None:
        if self._frozen is not None:
            self._origin_us, self._mono0, self._frozen = self._frozen, time.monotonic_ns(), None


# -- the engine's surroundings ----------------------------------------------------------


class NullProducer:
    """Takes every record at once and sends it nowhere: the sink's own work
    (queue, record cache, state encoding, lead states appended to produce
    batches of 256 KiB as the worker's producer builds them) stays, the
    network's goes."""

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                   partition: int | None = None, headers: Any = None) -> None:
        return None

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(256 * 1024, 0)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> None:
        return None


class TimedSink(KafkaSink):
    """The worker's sink over a ``NullProducer``. While ``timing`` is on,
    each outcome record is kept with the ``time.monotonic_ns()`` it reached
    the sink at, and outcomes of leads whose id starts with ``counting``
    are counted."""

    def __init__(self, metrics: Metrics) -> None:
        producer = NullProducer()
        super().__init__(lambda: producer, "leads-changelog", "team-windows-changelog", "sla-outcomes",
                         "lead-events-dlq", metrics=metrics, deliveries_topic="target-days-changelog",
                         periods=("period-cells-changelog", "period-reports", "sla-periods"))
        self.timing = False
        self.timed: list[tuple[int, bytes]] = []
        self.counting = "\0"
        self.counted = 0

    def outcome(self, lead_id: str, value: bytes) -> None:
        if self.timing:
            self.timed.append((time.monotonic_ns(), value))
            if lead_id.startswith(self.counting):
                self.counted += 1
        super().outcome(lead_id, value)


class Feed:
    """Hands records to an engine a partition's fetch at a time, as the
    worker's batch path does, with offsets from 0 per partition. A partition
    is caught up (its high watermark one past the last offset handed over)
    unless ``backlog`` holds its record count, read ahead as a backlog."""

    def __init__(self) -> None:
        self.next: dict[int, int] = {}
        self.backlog: dict[int, int] = {}

    def highwater(self, partition: int) -> int | None:
        """The engine's ``highwater``: the partition's fetch high watermark."""
        n = self.next.get(partition)
        return None if n is None else max(n, self.backlog.get(partition, 0))

    def send(self, engine: Engine, partition: int, records: list[tuple[bytes, bytes]]) -> None:
        """``records`` (key, value) of ``partition``, in order, in one ``handle_batch``."""
        first = self.next.get(partition, 0)
        self.next[partition] = first + len(records)
        engine.handle_batch(partition, [(first + n, k, v) for n, (k, v) in enumerate(records)])


def lead_id(tag: str, i: int) -> str:
    """Lead ``i`` of a group (``tag``: one letter), 17 characters as the demo's ids."""
    return f"lead-{tag}{i:011x}"


def record(lead: str, etype: str, at_us: int, n: int | str, **fields: Any) -> tuple[bytes, bytes]:
    """(key, value) of one lead-events record."""
    return lead.encode(), orjson.dumps({"event_id": f"{lead}-{n}", "lead_id": lead, "type": etype,
                                        "occurred_at": format_timestamp_us(at_us), **fields})


def who(i: int) -> dict[str, str]:
    """Lead ``i``'s team and rep (each rep in one team)."""
    rep = i % REPS
    return {"team": f"team-{rep % TEAMS:02d}", "rep": f"rep-{rep:03d}"}


def profile(i: int) -> dict[str, str]:
    """Who lead ``i`` is (fields the events carry and the clocks do not keep)."""
    return {"segment": ("smb", "mid_market", "enterprise")[i % 3], "region": f"team-{i % REPS % TEAMS:02d}",
            "source": "marketing" if i % 7 else "sales", "persona": ("executive", "director", "manager")[i % 3]}


def open_lead(i: int, handoff_us: int) -> list[tuple[bytes, bytes]]:
    """A lead as it is handed off: created a day before, an MQL ten minutes
    before, then the handoff (one in seven a demo request)."""
    lead, p, form = lead_id("o", i), profile(i), "demo_request" if i % 7 == 3 else "content_download"
    return [record(lead, "lead.created", handoff_us - 86400 * US, "c", **p),
            record(lead, "lead.mql", handoff_us - 600 * US, "m", **p),
            record(lead, "lead.handed_off", handoff_us, "h", **p, **who(i), attributes={"form": form})]


def quiet_lead(i: int, handoff_us: int) -> list[tuple[bytes, bytes]]:
    """A lead whose every clock is decided: handed off, attempted, connected
    and qualified within a few milliseconds."""
    lead, p, w = lead_id("q", i), profile(i), who(i)
    return [record(lead, "lead.created", handoff_us - 86400 * US, "c", **p),
            record(lead, "lead.mql", handoff_us - 600 * US, "m", **p),
            record(lead, "lead.handed_off", handoff_us, "h", **p, **w, attributes={"form": "content_download"}),
            record(lead, "lead.contact_attempt", handoff_us + 1000, "a", **w, channel="call",
                   attributes={"outcome": "reached"}),
            record(lead, "lead.connected", handoff_us + 2000, "n", **w),
            record(lead, "lead.qualified", handoff_us + 3000, "d", **w)]


def short_lead(tag: str, i: int, handoff_us: int) -> list[tuple[bytes, bytes]]:
    """A handoff that ``bench_short`` matches (and the example policies too)."""
    lead = lead_id(tag, i)
    return [record(lead, "lead.handed_off", handoff_us, "h", **profile(i), **who(i),
                   attributes={"form": SHORT})]


def policies_with_short(goal_s: int, directory: Path) -> PolicySet:
    """The example policies plus ``bench_short`` (goal ``goal_s`` seconds,
    24x7, at risk at half the goal), written to ``directory`` and loaded."""
    data = yaml.safe_load(EXAMPLE_POLICIES.read_text())
    data["policies"].append({
        "name": SHORT, "description": "The benchmark's own leads: a short goal, around the clock.",
        "start": "lead.handed_off", "match": {"attributes.form": SHORT}, "stop": ["lead.connected"],
        "goal": f"{goal_s}s", "calendar": "24x7", "at_risk": 0.5})
    path = directory / "policies.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_policies(path)


def open_clocks(engine: Engine) -> int:
    """Open clocks on the engine's gauges (running, paused, or a start the watermark has not reached)."""
    return sum(sum(rt.open.values()) for rt in engine.runtimes.values())


async def load(engine: Engine, feed: Feed, sink: KafkaSink, partitions: int, leads: Iterable[int],
               records_of: Callable[[int], list[tuple[bytes, bytes]]],
               enough: Callable[[], bool] = lambda: False) -> int:
    """Hand the records of ``leads`` to the engine, ``LOAD_CHUNK`` leads at a
    time (each partition's share in one batch, the sink's record cache
    flushed after each chunk), until ``enough()``. Returns the leads loaded."""
    loaded = 0
    chunk: dict[int, list[tuple[bytes, bytes]]] = {}
    for i in leads:
        chunk.setdefault(i % partitions, []).extend(records_of(i))
        loaded += 1
        if loaded % LOAD_CHUNK == 0:
            await _send_chunk(engine, feed, sink, chunk)
            if enough():
                return loaded
    await _send_chunk(engine, feed, sink, chunk)
    return loaded


async def _send_chunk(engine: Engine, feed: Feed, sink: KafkaSink,
                      chunk: dict[int, list[tuple[bytes, bytes]]]) -> None:
    for p, records in sorted(chunk.items()):
        feed.send(engine, p, records)
    chunk.clear()
    await sink.flush()


async def apply_due(engine: Engine, sink: KafkaSink) -> None:
    """Decide everything due at the engine's wall clock, in the timer's
    slices with the sink flushed after each, nothing else running meanwhile."""
    while True:
        engine.tick()
        await sink.flush()
        if not engine.pending():
            return


# -- the worker's timer (streams.timer, as streams.app runs it) and commit -------------


class Worker:
    """The worker's tasks around an engine: the deadline timer (as
    ``streams.app``'s ``deadlines``: ``deadline_pass`` every
    ``timer_interval``), the commit (the sink's record cache flushed every
    ``commit_interval``, as Faust's commit calls ``KafkaSink.settle``) and,
    optionally, a consumer. Keeps the longest timer slice (tick and drain)
    and the longest commit."""

    def __init__(self, engine: Engine, sink: KafkaSink, settings: Settings) -> None:
        self.engine, self.sink, self.settings = engine, sink, settings
        self.slices = Longest()
        self.commits = Longest()

    async def deadline_pass(self, stopping: asyncio.Event) -> None:
        await deadline_pass(self.engine, self.sink, stopping, on_slice=self.slices.add)

    async def commit(self) -> None:
        t = time.perf_counter()
        await self.sink.settle()
        self.commits.add(time.perf_counter() - t)

    async def run(self, done: Callable[[], bool], timeout_s: float, consumer: Consumer | None = None) -> bool:
        """Run the tasks until ``done()`` (checked every 20 ms) or
        ``timeout_s``; True when done."""
        stopping = asyncio.Event()
        tasks = [asyncio.ensure_future(every(self.settings.timer_interval, lambda: self.deadline_pass(stopping), stopping,
                                             sooner=lambda: next_due_s(self.engine))),
                 asyncio.ensure_future(every(self.settings.commit_interval, self.commit, stopping))]
        if consumer is not None:
            tasks.append(asyncio.ensure_future(consumer.run(stopping)))
        end = time.monotonic() + timeout_s
        try:
            while not done() and time.monotonic() < end:
                await asyncio.sleep(0.02)
            return done()
        finally:
            stopping.set()
            await asyncio.gather(*tasks)
            await self.sink.settle()


class Consumer:
    """A stand-in for the worker's batch path: one partition's fetch of
    ``CONSUMER_BATCH`` records to ``handle_batch`` every ``CONSUMER_PAUSE``
    seconds, then the sink drained (``BatchDelivery``'s flush). The records
    are follow-ups dated now (a contact attempt, no answer) on the leads
    ``lead_id('o', i)``, ``i < leads``, in turn. Keeps each batch's start
    (``time.monotonic_ns``)."""

    def __init__(self, engine: Engine, feed: Feed, sink: KafkaSink, wall: VirtualWall, leads: int,
                 partitions: int) -> None:
        self.engine, self.feed, self.sink, self.wall = engine, feed, sink, wall
        self.leads, self.partitions = leads, partitions
        self.starts: list[int] = []
        self.records = 0
        self._next = [p for p in range(partitions)]  # the next lead number per partition

    async def run(self, stopping: asyncio.Event) -> None:
        n = 0
        while not stopping.is_set():
            self.starts.append(time.monotonic_ns())
            p = n % self.partitions
            now = self.wall()
            batch = []
            for _ in range(CONSUMER_BATCH):
                i = self._next[p]
                self._next[p] = i + self.partitions if i + self.partitions < self.leads else p
                batch.append(record(lead_id("o", i), "lead.contact_attempt", now, f"f{self.records}", **who(i),
                                    channel="call", attributes={"outcome": "no_answer"}))
                self.records += 1
            self.feed.send(self.engine, p, batch)
            await self.sink.settle(states=False)
            n += 1
            await asyncio.sleep(CONSUMER_PAUSE)

    def gaps_ms(self) -> list[tuple[int, float]]:
        """(end, ms) of each gap between two batch starts; ``end`` in monotonic ns."""
        s = self.starts
        return [(s[k], (s[k] - s[k - 1]) / 1e6) for k in range(1, len(s))]


def breaches(sink: TimedSink, wall: VirtualWall, tag: str) -> list[tuple[int, int]]:
    """(due instant, decided instant), epoch µs, of the ``bench_short``
    breaches of leads ``tag`` the sink timed; the due instant is the
    deadline plus the allowed lateness (not added here: see callers)."""
    out = []
    prefix = lead_id(tag, 0)[:6]
    for mono, value in sink.timed:
        rec = orjson.loads(value)
        if rec["policy"] == SHORT and rec["outcome"] == "breached" and rec["lead_id"].startswith(prefix):
            out.append((parse_timestamp_us(rec["deadline"]), wall.at(mono)))
    return out


# -- the figures -------------------------------------------------------------------


class Scale:
    """Figures 1 to 3 on one engine (see the module docstring)."""

    def __init__(self, args: argparse.Namespace, settings: Settings, policies: PolicySet) -> None:
        self.args, self.settings = args, settings
        self.partitions = settings.partitions
        self.wall = VirtualWall()
        self.feed = Feed()
        self.metrics = Metrics(CollectorRegistry(), policies, settings.max_team_labels, settings.max_rep_labels,
                               app_id=settings.app_id)
        self.sink = TimedSink(self.metrics)
        self.engine = Engine(settings, policies, self.metrics, store={}, windows={}, sink=self.sink,
                             highwater=self.feed.highwater, wall_us=self.wall, deliveries={}, period_cells={})
        self.engine.rebuild(range(self.partitions), dict.fromkeys(range(self.partitions), 0))
        self.worker = Worker(self.engine, self.sink, settings)
        self.lateness = settings.lateness_us
        self.open_leads = 0

    async def memory(self) -> dict[str, Any]:
        """Figure 1: RSS per open clock, and per decided quiet lead. Each
        phase starts from a trimmed reading (``trimmed_rss_mib``) and ends
        with both: the value is the RSS as the process holds it, and
        ``trimmed_bytes`` what its live objects hold."""
        a, engine, wall = self.args, self.engine, self.wall
        wall.freeze()
        base = trimmed_rss_mib()
        t0, c0 = time.perf_counter(), cpu_s()
        handoff = wall() - self.lateness + ON_TIME_US
        self.open_leads = await load(engine, self.feed, self.sink, self.partitions, range(1 << 40),
                                     lambda i: open_lead(i, handoff), lambda: open_clocks(engine) >= a.clocks)
        wall.advance(APPLY_US)
        await apply_due(engine, self.sink)
        load_s, load_cpu = time.perf_counter() - t0, cpu_s() - c0
        held, held_trimmed = vm_rss_mib(), trimmed_rss_mib()
        snap = engine.views.snapshot()
        by_policy = {p: sum(teams.values()) for p, teams in snap["open"].items()}
        n_open = sum(by_policy.values())
        running = sum(1 for i in range(self.open_leads) for c in engine.store[lead_id("o", i)].state.clocks.values()
                      if c.status == RUNNING)
        print(f"  {n_open:,} open clocks on {self.open_leads:,} leads ({running:,} running): RSS {base:,.0f} -> "
              f"{held:,.0f} MiB ({held_trimmed:,.0f} trimmed) in {load_s:.0f} s", file=sys.stderr)

        handoff = wall() - self.lateness + ON_TIME_US
        await load(engine, self.feed, self.sink, self.partitions, range(a.quiet), lambda i: quiet_lead(i, handoff))
        wall.advance(APPLY_US)
        await apply_due(engine, self.sink)
        after, after_trimmed = vm_rss_mib(), trimmed_rss_mib()
        quiet = sum(1 for i in range(a.quiet) if not engine.store[lead_id("q", i)].state.shown)
        print(f"  {quiet:,} decided quiet leads: RSS {held_trimmed:,.0f} -> {after:,.0f} MiB "
              f"({after_trimmed:,.0f} trimmed)", file=sys.stderr)
        mib = 2**20
        return {
            "open_clock_rss": {
                "value": (held - base) * mib / n_open, "unit": "bytes", "target": 1024,
                "sizes": {"open_clocks": n_open, "open_leads": self.open_leads, "partitions": self.partitions,
                          "policies": len(engine.policies.policies)},
                "trimmed_bytes": (held_trimmed - base) * mib / n_open,
                "bytes_per_open_lead": (held - base) * mib / self.open_leads,
                "rss_before_mib": base, "rss_after_mib": held, "rss_after_trimmed_mib": held_trimmed,
                "running_clocks": running, "open_by_policy": by_policy,
                "load_s": load_s, "load_cpu_us_per_lead": load_cpu * US / self.open_leads},
            "quiet_lead_rss": {
                "value": (after - held_trimmed) * mib / max(quiet, 1), "unit": "bytes", "target": None,
                "sizes": {"quiet_leads": quiet, "open_clocks_held": n_open, "state_ttl_s": self.settings.state_ttl},
                "trimmed_bytes": (after_trimmed - held_trimmed) * mib / max(quiet, 1),
                "rss_before_mib": held_trimmed, "rss_after_mib": after, "rss_after_trimmed_mib": after_trimmed},
        }

    async def lateness_figure(self) -> dict[str, Any]:
        """Figure 2: breaches of ``--due`` clocks falling due over ``--due-window`` seconds."""
        a, wall, sink = self.args, self.wall, self.sink
        k, window_us = a.due, round(a.due_window * US)
        start = wall() - self.lateness + ON_TIME_US
        await load(self.engine, self.feed, self.sink, self.partitions, range(k),
                   lambda i: short_lead("d", i, start + window_us * i // k))
        held = open_clocks(self.engine)
        sink.timed.clear()
        sink.timing, sink.counting, sink.counted = True, lead_id("d", 0)[:6], 0
        with GcPauses() as gcp:
            wall.thaw()
            complete = await self.worker.run(lambda: sink.counted >= k,
                                             timeout_s=a.goal + a.due_window + 120)
            pairs = breaches(sink, wall, "d")
            wall.freeze()
        sink.timing = False
        late = [(decided - deadline - self.lateness) / MS for deadline, decided in pairs]
        if not late:
            raise RuntimeError(f"no {SHORT} breach was decided in time")
        out: dict[str, Any] = {
            "value": percentile(late, 0.99), "unit": "ms", "target": 1000,
            "sizes": {"open_clocks_held": held, "due_clocks": k, "due_window_s": a.due_window, "goal_s": a.goal,
                      "partitions": self.partitions, "timer_interval_s": self.settings.timer_interval},
            "p50_ms": percentile(late, 0.5), "max_ms": max(late), "decided": len(late), "complete": complete,
            "longest_timer_slice_ms": self.worker.slices.ms, "longest_commit_ms": self.worker.commits.ms,
            "longest_gc_pause_ms": gcp.longest.ms}
        bucket = getattr(deadline_index, "BUCKET_US", None)
        if isinstance(bucket, int):
            # When the index's bucket holding a breach's wake-up (deadline + 1 µs) became due:
            # how much of the lateness is the bucket's width and how much the timer's.
            after = [(decided - (((deadline + 1) // bucket + 1) * bucket + self.lateness)) / MS
                     for deadline, decided in pairs]
            out["after_index_bucket_p50_ms"] = percentile(after, 0.5)
            out["after_index_bucket_p99_ms"] = percentile(after, 0.99)
        self.worker.slices, self.worker.commits = Longest(), Longest()
        return out

    async def burst_figure(self) -> dict[str, Any]:
        """Figure 3: the consumer's longest wait while ``--burst`` clocks fall due at once."""
        a, wall, sink, engine = self.args, self.wall, self.sink, self.engine
        b, window_us = a.burst, round(a.burst_window * US)
        start = wall() - self.lateness + ON_TIME_US
        t = time.perf_counter()
        await load(engine, self.feed, sink, self.partitions, range(b),
                   lambda i: short_lead("b", i, start + window_us * i // b))
        wall.advance(APPLY_US + window_us)
        await apply_due(engine, sink)
        running = sum(1 for i in range(b) if SHORT in engine.store[lead_id("b", i)].state.clocks)
        if running != b:
            raise RuntimeError(f"{b - running} burst leads have no running {SHORT} clock before the burst")
        held = open_clocks(engine)
        print(f"  {b:,} burst leads loaded and running in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        consumer = Consumer(engine, self.feed, sink, wall, self.open_leads, self.partitions)
        sink.timed.clear()
        sink.timing, sink.counting, sink.counted = True, lead_id("b", 0)[:6], 0
        gc.collect()
        with GcPauses() as gcp:
            wall.thaw()
            complete = await self.worker.run(lambda: sink.counted >= b,
                                             timeout_s=a.goal + a.burst_window + 300, consumer=consumer)
            pairs = breaches(sink, wall, "b")
            due = start + a.goal * US + self.lateness  # the first burst lead's due instant
            due_mono = wall.mono_ns(due)
            gaps = consumer.gaps_ms()
            wall.freeze()
        sink.timing = False
        decided = [d for _, d in pairs]
        if not gaps:
            raise RuntimeError("the consumer never ran during the burst")
        breach_gaps = [ms for end, ms in gaps if end >= due_mono]
        return {
            "value": max(ms for _, ms in gaps), "unit": "ms", "target": 1000,
            "sizes": {"open_clocks_held": held, "burst_clocks": b, "burst_window_s": a.burst_window,
                      "goal_s": a.goal, "partitions": self.partitions, "timer_batch": self.settings.timer_batch,
                      "consumer_batch": CONSUMER_BATCH, "consumer_pause_s": CONSUMER_PAUSE},
            "stall_after_due_ms": max(breach_gaps, default=0.0),
            "decided_s": (max(decided) - due) / US if decided else None,
            "first_decision_after_due_ms": (min(decided) - due) / MS if decided else None,
            "decided": len(decided), "complete": complete,
            "consumer_batches": len(consumer.starts), "consumer_records": consumer.records,
            "consumer_median_gap_ms": statistics.median(ms for _, ms in gaps),
            "longest_timer_slice_ms": self.worker.slices.ms, "timer_slices": self.worker.slices.n,
            "longest_commit_ms": self.worker.commits.ms, "longest_gc_pause_ms": gcp.longest.ms}


class LedgerSink:
    """Figure 4's sink: period reports go to the ``Ledger`` (on topic
    partition ``partition``, or by key), so the ledger's gauges exist;
    everything else is dropped."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.ledger: Ledger | None = None

    def period_report(self, key: str, value: bytes, partition: int | None = None) -> None:
        tp = partition if partition is not None else zlib.crc32(key.encode()) % self.partitions
        if self.ledger is not None:
            self.ledger.handle(tp, key.encode(), value)

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


def many_policies(count: int, directory: Path) -> PolicySet:
    """``count`` policies made from the example's: its own, then renamed
    copies (``first_touch_2``, …) in turn; written to ``directory`` and loaded."""
    data = yaml.safe_load(EXAMPLE_POLICIES.read_text())
    shapes = data["policies"]
    data["policies"] = [copy.deepcopy(shapes[i % len(shapes)]) for i in range(count)]
    for i, p in enumerate(data["policies"]):
        if i >= len(shapes):
            p["name"] = f"{p['name']}_{i // len(shapes) + 1}"
    path = directory / "many.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_policies(path)


def render_figure(args: argparse.Namespace, settings: Settings, directory: Path) -> dict[str, Any]:
    """Figure 4: /metrics with ``--teams`` teams and ``--policies-count`` policies."""
    policies = many_policies(args.policies_count, directory)
    parts = settings.partitions
    registry = CollectorRegistry()
    metrics = Metrics(registry, policies, settings.max_team_labels, settings.max_rep_labels, app_id=settings.app_id)
    sink = LedgerSink(parts)
    feed = Feed()
    engine = Engine(settings, policies, metrics, store={}, windows={}, sink=sink,  # type: ignore[arg-type]
                    highwater=feed.highwater, deliveries={}, period_cells={})
    ledger = Ledger(policies, {}, sink, parts, engine.wall_us)  # type: ignore[arg-type]
    sink.ledger = ledger
    engine.rebuild(range(parts), dict.fromkeys(range(parts), 0))
    # As streams.app registers them.
    registry.register(RuntimeCollector(engine.views.snapshot, policies))
    registry.register(LedgerCollector(lambda: ledger.levels(range(parts)), lambda: ledger.late_partials,
                                      ledger.points_team))

    gen = TrafficGenerator(policies, seed=11)
    events = gen.history(time.time_ns() // 1000, days=30, leads=args.render_leads)
    reps = args.teams * 10
    records: list[tuple[int, tuple[bytes, bytes]]] = []
    for e in events:
        lead = str(e["lead_id"])
        k = zlib.crc32(lead.encode())
        if "rep" in e:  # the demo's 12 reps in 3 teams become ten reps in each of --teams teams
            e["rep"], e["team"] = f"rep-{k % reps:03d}", f"team-{k % reps % args.teams:02d}"
        records.append((k % parts, (lead.encode(), orjson.dumps(e))))
    for p in range(parts):
        feed.backlog[p] = sum(1 for q, _ in records if q == p)
    t = time.perf_counter()
    for n in range(0, len(records), 1000):
        chunk: dict[int, list[tuple[bytes, bytes]]] = {}
        for p, kv in records[n:n + 1000]:
            chunk.setdefault(p, []).append(kv)
        for p, kvs in sorted(chunk.items()):
            feed.send(engine, p, kvs)
        engine.tick()
    for _ in range(10_000):
        if not (engine.tick() or engine.pending()):
            break
    print(f"  {len(records):,} events of {args.render_leads:,} leads in {time.perf_counter() - t:.0f} s",
          file=sys.stderr)

    async def renders() -> list[float]:
        times = []
        for _ in range(args.renders):
            t = time.perf_counter()
            await render_metrics(registry)
            times.append(time.perf_counter() - t)
        return times

    page = asyncio.run(render_metrics(registry))
    times = asyncio.run(renders())
    plain = []
    for _ in range(args.renders):
        t = time.perf_counter()
        generate_latest(registry)
        plain.append(time.perf_counter() - t)
    families, teams = page_series(page)
    return {
        "value": statistics.median(times) * MS, "unit": "ms", "target": 20,
        "sizes": {"teams": args.teams, "policies": len(policies.policies), "leads": args.render_leads,
                  "events": len(records), "renders": args.renders},
        "generate_latest_median_ms": statistics.median(plain) * MS, "max_ms": max(times) * MS,
        "bytes": len(page), "series": sum(families.values()), "teams_on_page": len(teams),
        "ledger_levels": sum(1 for _ in ledger.levels(range(parts))),
        "largest_families": dict(sorted(families.items(), key=lambda kv: -kv[1])[:8])}


def page_series(page: bytes) -> tuple[dict[str, int], set[str]]:
    """Series per metric name (a histogram's ``_bucket``, ``_sum`` and
    ``_count`` apart) on an exposition ``page``, and the team label values."""
    families: dict[str, int] = {}
    teams: set[str] = set()
    for line in page.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        families[name] = families.get(name, 0) + 1
        if 'team="' in line:
            teams.add(line.split('team="', 1)[1].split('"', 1)[0])
    return families, teams


# -- the command -----------------------------------------------------------------


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return out.stdout.strip() or None


def _sizes(args: argparse.Namespace) -> None:
    """Fill the sizes not given from the full or the quick set."""
    base = QUICK if args.quick else FULL
    for name, value in base.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.goal < 4:
        raise SystemExit("--goal must be at least 4 s: a handoff is applied, warned at risk at half the goal, "
                         "then breached, each a timer pass of its own")


def _print(figures: dict[str, dict[str, Any]]) -> None:
    names = {"open_clock_rss": "RSS per open clock", "quiet_lead_rss": "RSS per decided quiet lead",
             "deadline_lateness": "deadline firing lateness p99", "burst_stall": "consumption stall in a burst",
             "metrics_render": "/metrics render (median)"}
    print(f"\n{'figure':<32}{'value':>12}  {'unit':<6}{'target':>9}  sizes")
    for key, f in figures.items():
        target = "" if f["target"] is None else f"≤ {f['target']:,}"
        sizes = ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in f["sizes"].items())
        print(f"{names.get(key, key):<32}{f['value']:>12,.1f}  {f['unit']:<6}{target:>9}  {sizes}")
    late, burst = figures.get("deadline_lateness"), figures.get("burst_stall")
    if late:
        print(f"\nlateness: p50 {late['p50_ms']:,.0f} ms, p99 {late['value']:,.0f} ms, max {late['max_ms']:,.0f} ms "
              f"({late['decided']:,} breaches); longest timer slice {late['longest_timer_slice_ms']:,.0f} ms")
    if burst:
        print(f"burst: decided {burst['decided_s']:,.1f} s after its due instant; longest timer slice "
              f"{burst['longest_timer_slice_ms']:,.0f} ms, commit {burst['longest_commit_ms']:,.0f} ms, "
              f"gc {burst['longest_gc_pause_ms']:,.0f} ms")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clocks", type=int, help="open clocks to hold (default 1,000,000; quick 20,000)")
    ap.add_argument("--quiet", type=int, help="decided quiet leads (default 100,000; quick 5,000)")
    ap.add_argument("--due", type=int, help="clocks falling due for the lateness figure (default 20,000)")
    ap.add_argument("--due-window", type=float, help="seconds over which they fall due (default 20)")
    ap.add_argument("--goal", type=int, help="bench_short's goal, seconds, at least 4 (default 10)")
    ap.add_argument("--burst", type=int, help="clocks due at once for the stall figure (default 100,000)")
    ap.add_argument("--burst-window", type=float, help="seconds over which the burst falls due (default 0: one instant)")
    ap.add_argument("--teams", type=int, default=50, help="teams of the /metrics figure (ten reps each)")
    ap.add_argument("--policies-count", type=int, default=10, help="policies of the /metrics figure")
    ap.add_argument("--render-leads", type=int, help="leads of traffic for the /metrics figure (default 10,000)")
    ap.add_argument("--renders", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="smoke sizes: well under a minute")
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    args = ap.parse_args(argv)
    _sizes(args)
    settings = Settings()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    figures: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        scale = Scale(args, settings, policies_with_short(args.goal, Path(tmp)))

        async def figures_1_to_3() -> None:
            print(f"figure 1: holding {args.clocks:,} open clocks …", file=sys.stderr)
            figures.update(await scale.memory())
            print(f"figure 2: {args.due:,} deadlines over {args.due_window:g} s …", file=sys.stderr)
            figures["deadline_lateness"] = await scale.lateness_figure()
            print(f"figure 3: {args.burst:,} deadlines at once, with a consumer …", file=sys.stderr)
            figures["burst_stall"] = await scale.burst_figure()

        asyncio.run(figures_1_to_3())
        # Last, beside the engine of figures 1-3 (as a worker renders beside its
        # clocks): its own allocations must not be reused by their clocks.
        print("figure 4: /metrics render …", file=sys.stderr)
        figures["metrics_render"] = render_figure(args, settings, Path(tmp))
    for f in figures.values():
        f["meets_target"] = None if f["target"] is None else f["value"] <= f["target"]
    results = {"started": started, "commit": _commit(), "python": platform.python_version(),
               "peak_rss_mib": rss_mib(),
               "settings": {k: getattr(settings, k) for k in ("partitions", "timer_interval", "timer_batch",
                                                              "commit_interval", "allowed_lateness", "state_ttl")},
               "figures": figures}
    _print(figures)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"scale-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
