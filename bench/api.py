"""What the query API costs on a worker holding many open clocks.

    python -m bench.api [--clocks 1000000] [--partitions 4] [--repeat 5]

Fills an in-process Engine (no broker, no Faust) with N leads, each with one
open first-touch clock (a handoff, live: most of them running, the newest
pending, some at risk, a few paused), then times the views the API serves:
a lead lookup, the queue (all clocks, filtered by team, filtered by rep)
done in one go and in slices as the worker does it, and compliance. Prints a
table and the process's peak memory. Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from leadsla.models.events import format_timestamp_us, parse_timestamp_us
from leadsla.models.policy import parse_policies
from leadsla.streams.engine import Engine
from leadsla.streams.metrics import Metrics
from leadsla.streams.settings import Settings

US = 1_000_000
POLICIES = """
policies:
  - name: first_touch
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected]
    pause: lead.accepted
    resume: lead.connected
    goal: 4h
"""
TEAMS = [f"team-{i}" for i in range(20)]


class NullSink:
    """Takes every write the engine makes and keeps nothing."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


def fill(n: int, partitions: int, now_us: int) -> Engine:
    """An engine with ``n`` leads of one open clock each, handed off over the
    last 4 hours (the newest seconds still pending, older ones at risk)."""
    settings = Settings(allowed_lateness="2m", partitions=partitions)
    policies = parse_policies(POLICIES)
    hw: dict[int, int] = {}
    offsets = dict.fromkeys(range(partitions), 0)
    engine = Engine(settings, policies, Metrics(CollectorRegistry(), policies, 200), store={}, windows={},
                    sink=NullSink(), highwater=lambda p: hw.get(p), wall_us=lambda: now_us)
    engine.rebuild(range(partitions), dict(offsets))
    span = 4 * 3600 * US
    for i in range(n):
        p = i % partitions
        lead = f"lead-{i:07d}"
        at = now_us - span + span * i // n
        value = orjson.dumps({"event_id": f"{lead}-h", "lead_id": lead, "type": "lead.handed_off",
                              "occurred_at": format_timestamp_us(at), "team": TEAMS[i % len(TEAMS)],
                              "rep": f"rep-{i % 500}"})
        hw[p] = offsets[p] + 1  # live: every record is the last one there is
        engine.handle(p, offsets[p], lead.encode(), value)
        offsets[p] += 1
        if i % 100 == 7:  # a few paused clocks
            value = orjson.dumps({"event_id": f"{lead}-p", "lead_id": lead, "type": "lead.accepted",
                                  "occurred_at": format_timestamp_us(at + US)})
            hw[p] = offsets[p] + 1
            engine.handle(p, offsets[p], lead.encode(), value)
            offsets[p] += 1
    engine.tick(limit=10 * n)
    return engine


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(median s, max s, last result) of ``repeat`` calls."""
    times = []
    result = None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), max(times), result


def sliced_queue(engine: Engine, loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
    """The queue as the API runs it (slices of 20,000 leads), with a
    concurrent task measuring the longest the event loop went without
    running it: how long event processing waits at most during the answer."""

    async def go() -> dict[str, Any]:
        gaps = [0.0]
        done = False

        async def ticker() -> None:
            last = time.perf_counter()
            while not done:
                await asyncio.sleep(0)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        task = asyncio.ensure_future(ticker())
        await asyncio.sleep(0)  # the ticker runs once before the answer starts
        answer = await engine.views.queue_async(limit=100)
        done = True
        await task
        return {**answer, "loop_blocked_max_ms": max(gaps) * 1000}

    return loop.run_until_complete(go())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clocks", type=int, default=1_000_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    now = parse_timestamp_us("2026-11-24T15:00:00Z")
    t = time.perf_counter()
    engine = fill(args.clocks, args.partitions, now)
    print(f"filled {len(engine.store):,} leads in {time.perf_counter() - t:.1f} s; "
          f"open clocks: {sum(sum(rt.open.values()) for rt in engine.runtimes.values()):,}")
    v = engine.views
    lead = f"lead-{args.clocks // 2:07d}"
    loop = asyncio.new_event_loop()
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("lead lookup (views.lead_clocks)", lambda: v.lead_clocks(lead)),
        ("queue, all clocks, top 100", lambda: v.queue(limit=100)),
        ("queue, all clocks, top 10,000", lambda: v.queue(limit=10_000)),
        ("queue, one team (1/20)", lambda: v.queue(team="team-3")),
        ("queue, one rep (1/500)", lambda: v.queue(rep="rep-42")),
        ("queue in 20k slices (the API)", lambda: sliced_queue(engine, loop)),
        ("compliance, current period", lambda: v.compliance()),
        ("queue top 100 + JSON encoding", lambda: orjson.dumps(v.queue(limit=100))),
    ]
    print(f"{'view':<34} {'median':>10} {'max':>10}  result")
    for name, fn in cases:
        med, worst, result = timed(fn, args.repeat)
        what = ""
        if isinstance(result, dict) and "total" in result:
            what = f"total {result['total']:,}, rows {len(result['clocks']):,}"
            if "loop_blocked_max_ms" in result:
                what += f"; event loop blocked at most {result['loop_blocked_max_ms']:.0f} ms"
        elif isinstance(result, bytes):
            what = f"{len(result):,} bytes"
        print(f"{name:<34} {med * 1000:>8.2f}ms {worst * 1000:>8.2f}ms  {what}")
    loop.close()
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
