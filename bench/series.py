"""leadsla benchmark: how large /metrics grows with many teams and reps, and
what rendering it costs the event loop.

    python -m bench.series [--teams 300] [--reps 600] [--handoffs N] [--out bench/results]

Drives an ``Engine`` in process (no Kafka) with the example policies: one
handoff per team x rep pair (every rep works in every team: the worst case
of the team x rep product, 180,000 handoffs by default) over the business
hours of October 2026, and follow-ups that make a mix of outcomes: six in
ten leads connected after 10 minutes (met before the at-risk warning), two
touched after 50 minutes (warned, then met), two never touched (breached);
two leads in three qualified within three hours. The wall clock is then
moved past every deadline and the engine decides what is due.

Reports the series (label sets) and samples of each family, the page's
size, the time ``generate_latest`` takes, and the event loop's longest stall
while the page renders: rendered on the loop (the page handler before
``render_metrics``) and with ``render_metrics`` where the checkout has it.
Runs on an older checkout too (``git worktree add``, then ``python -m
bench.series`` from its folder). Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import statistics
import sys
import time
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, generate_latest

import leadsla.streams.metrics as metrics_mod
from leadsla.models.policy import load_policies
from leadsla.streams.engine import Engine
from leadsla.streams.metrics import Metrics, RuntimeCollector
from leadsla.streams.settings import EXAMPLE_POLICIES, Settings

PARTITIONS = 8
MINUTE = timedelta(minutes=1)


class NullSink:
    """Every record the engine writes (changelogs, outcomes, reports) goes nowhere."""

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


def business_days(first: datetime, n: int) -> list[datetime]:
    """The first ``n`` weekdays from ``first`` on, at 13:00 UTC (09:00 in New
    York in October: the example calendar's business hours)."""
    out, day = [], first
    while len(out) < n:
        if day.weekday() < 5:
            out.append(day)
        day += timedelta(days=1)
    return out


def events(teams: int, reps: int, handoffs: int) -> list[tuple[datetime, str, str, dict[str, str]]]:
    """(occurred_at, lead id, type, extra fields) of every event, in time order."""
    days = business_days(datetime(2026, 10, 5, 13, tzinfo=UTC), 20)
    per_day = -(-handoffs // len(days))
    step = timedelta(hours=7) / per_day  # handoffs from 09:00 to 16:00 local
    out: list[tuple[datetime, str, str, dict[str, str]]] = []
    for i in range(handoffs):
        at = days[i // per_day] + step * (i % per_day)
        lead = f"lead-{i:07d}"
        out.append((at, lead, "lead.handed_off", {"team": f"team-{i % teams:03d}", "rep": f"rep-{(i // teams) % reps:03d}"}))
        kind = i % 10
        if kind < 6:
            out.append((at + 10 * MINUTE, lead, "lead.connected", {}))
        elif kind < 8:
            out.append((at + 50 * MINUTE, lead, "lead.contact_attempt", {"channel": "call"}))
        if i % 3:
            out.append((at + 180 * MINUTE, lead, "lead.qualified", {}))
    out.sort(key=lambda e: e[0])
    return out


def build(args: argparse.Namespace) -> tuple[CollectorRegistry, Engine, dict[str, Any]]:
    policies = load_policies(EXAMPLE_POLICIES)
    registry = CollectorRegistry()
    kw: dict[str, Any] = {}
    if args.max_series is not None and "max_series" in inspect.signature(Metrics).parameters:
        kw["max_series"] = args.max_series
    metrics = Metrics(registry, policies, 200, 500, **kw)
    wall = int(datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp() * 1_000_000)  # past every deadline
    engine = Engine(Settings(), policies, metrics, {}, {}, NullSink(), wall_us=lambda: wall)
    registry.register(RuntimeCollector(engine.views.snapshot, policies))
    evs = events(args.teams, args.reps, args.handoffs)
    offsets = [0] * PARTITIONS
    t0 = time.perf_counter()
    for at, lead, etype, extra in evs:
        key = lead.encode()
        value = orjson.dumps({"event_id": f"{lead}-{etype}", "lead_id": lead, "type": etype,
                              "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"), **extra})
        p = zlib.crc32(key) % PARTITIONS
        engine.handle(p, offsets[p], key, value)
        offsets[p] += 1
    for _ in range(10_000):
        if not (engine.tick() or engine.pending()):
            break
    return registry, engine, {"events": len(evs), "drive_s": time.perf_counter() - t0, **kw}


def shape(text: str) -> dict[str, Any]:
    """Series and samples per family, from the page's text."""
    kinds: dict[str, str] = {}
    samples: Counter[str] = Counter()
    series: Counter[str] = Counter()
    zeros: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            kinds[name] = kind
            continue
        if line.startswith("#") or not line:
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        family = name
        for suffix in ("_bucket", "_count", "_sum", "_total"):
            if name.endswith(suffix) and name[: -len(suffix)] in kinds:
                family = name[: -len(suffix)]
                break
        samples[family] += 1
        # A histogram's series is its label set: count its +Inf bucket (or its only sample).
        if kinds.get(family) != "histogram" or 'le="+Inf"' in line:
            series[family] += 1
            if kinds.get(family) == "counter" and line.endswith(" 0.0"):
                zeros[family] += 1
    return {"families": {f: {"series": series[f], "samples": samples[f], "zero_counters": zeros[f]}
                         for f in sorted(samples, key=lambda f: -samples[f])},
            "samples": sum(samples.values()), "series": sum(series.values())}


async def stall(render: Any) -> tuple[float, float]:
    """(render seconds, the loop's longest wait) while ``render()`` runs:
    a ticker that asks for 1 ms sleeps measures how late it wakes."""
    worst = 0.0
    done = False

    async def ticker() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst = max(worst, now - last - 0.001)
            last = now

    t = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    t0 = time.perf_counter()
    await render()
    took = time.perf_counter() - t0
    done = True
    await t
    return took, worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teams", type=int, default=300)
    ap.add_argument("--reps", type=int, default=600)
    ap.add_argument("--handoffs", type=int, help="default: teams x reps")
    ap.add_argument("--max-series", type=int, help="Metrics(max_series=...) where the checkout has it")
    ap.add_argument("--repeat", type=int, default=3, help="renders to time (the median is reported)")
    ap.add_argument("--out", type=Path, help="also write the results as JSON to this folder")
    args = ap.parse_args()
    args.handoffs = args.handoffs or args.teams * args.reps

    print(f"driving {args.handoffs} handoffs ({args.teams} teams x {args.reps} reps) from "
          f"{Path(metrics_mod.__file__).parent.parent} …", file=sys.stderr)
    registry, engine, results = build(args)
    text = generate_latest(registry)
    results.update(shape(text.decode()), bytes=len(text), handoffs=args.handoffs, teams=args.teams, reps=args.reps)
    renders = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        generate_latest(registry)
        renders.append(time.perf_counter() - t0)
    results["render_s"] = statistics.median(renders)

    async def on_loop() -> None:
        generate_latest(registry)

    took, worst = asyncio.run(stall(on_loop))
    results["on_loop"] = {"render_s": took, "loop_stall_s": worst}
    render_metrics = getattr(metrics_mod, "render_metrics", None)
    if render_metrics is not None:
        async def off_loop() -> None:
            await render_metrics(registry)

        took, worst = asyncio.run(stall(off_loop))
        results["render_metrics"] = {"render_s": took, "loop_stall_s": worst}

    print(f"\n{'family':<48}{'series':>9}{'samples':>9}{'zeros':>9}")
    for name, f in results["families"].items():
        if f["samples"] >= 100:
            print(f"{name:<48}{f['series']:>9,}{f['samples']:>9,}{f['zero_counters']:>9,}")
    print(f"\n{results['events']:,} events driven in {results['drive_s']:.1f}s")
    print(f"/metrics: {results['bytes'] / 1e6:.1f} MB, {results['samples']:,} samples, {results['series']:,} series; "
          f"generate_latest {results['render_s']:.3f}s (median of {args.repeat})")
    for name in ("on_loop", "render_metrics"):
        if name in results:
            r = results[name]
            print(f"{name:<16} render {r['render_s']:.3f}s, longest event-loop stall {r['loop_stall_s'] * 1000:.1f} ms")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        out = args.out / f"series-{time.strftime('%Y%m%dT%H%M%S')}.json"
        out.write_text(json.dumps(results, indent=2, sort_keys=True))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
