"""leadsla benchmark: one broker, one pre-filled topic, stages from a raw
aiokafka drain (the denominator) to the real ``leadsla run`` worker.

    python -m bench.run [--events 200000] [--partitions 8] [--scale full|quick|none]
                        [--recovery-leads 1000000] [--out bench/results]

B0 a raw aiokafka drain (the denominator), B1 + decode, B2 + the engine in
process (metrics, the timer and the state encoding included), B6 the real
``leadsla run`` worker on the same topic: events/s, ratio to B0, CPU µs per
event, peak RSS; the timer's CPU µs per due lead; the decisions of B2 and
B6 compared. Then the scale figures of ``bench.scale`` (RSS per open clock
with a million open, deadline firing lateness, the stall of a burst of due
clocks, the ``/metrics`` render) and of ``bench.recovery`` (restart to
ready with a million leads against a raw drain of their changelogs), each
in a process of its own.

Prints a table and writes JSON. Absolute numbers move from machine to machine;
the ratios to B0 within one run are what count. Not a test: nothing here
asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from leadsla.models.durations import parse_duration_us
from leadsla.models.policy import load_policies
from leadsla.streams.broker import EmbeddedBroker, ensure_topics
from leadsla.streams.codec import decode, state_to_bytes
from leadsla.streams.demo import TrafficGenerator
from leadsla.streams.engine import Engine
from leadsla.streams.metrics import Metrics
from leadsla.streams.settings import EXAMPLE_POLICIES, Settings

US = 1_000_000
# The engine stage runs the timer after this many records (the worker's timer
# passes at most 0.5 s apart, at 10,000–20,000 records a second every several
# thousand records: B2 runs it more often, which costs it more, not less).
TICK_EVERY = 1000


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rss_mib() -> float:
    """This process's peak RSS (MiB) since the last ``reset_peak_rss``."""
    return _proc_rss_mib(os.getpid()) or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> None:
    """Start a new peak-RSS measurement (Linux: clear_refs 5 resets VmHWM)."""
    with contextlib.suppress(OSError):  # not Linux, or not allowed: the peak is the process's whole run
        Path("/proc/self/clear_refs").write_text("5")


def make_events(n: int, policies_file: Path, end_ago_us: int = 0) -> list[dict[str, Any]]:
    """A backlog of ``n`` events in time order: one history over the 30
    days before ``end_ago_us`` ago (µs), with enough leads, cut at ``n``
    (concatenated histories would replay the month several times, most of
    it behind the watermark)."""
    gen = TrafficGenerator(load_policies(policies_file), seed=11)
    now = time.time_ns() // 1000 - end_ago_us
    leads = max(1, n // 4)
    out = gen.history(now, days=30, leads=leads)
    while len(out) < n:
        leads *= 2
        out = gen.history(now, days=30, leads=leads)
    return out[:n]


async def fill(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024)
    await p.start()
    try:
        futs = [await p.send(topic, key=str(e["lead_id"]).encode(), value=orjson.dumps(e)) for e in events]
        await asyncio.gather(*futs)
    finally:
        await p.stop()


async def drain(bootstrap: str, topic: str, n: int, handle: Any,
                highwaters: dict[int, int] | None = None) -> tuple[float, float]:
    """Read ``n`` records of ``topic`` with a fresh group, calling
    ``handle(partition, record)`` for each; ``highwaters`` (when given) is
    kept at each partition's fetch high watermark, as the worker knows it.
    Returns (wall seconds, CPU seconds)."""
    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"bench-{uuid.uuid4().hex}",
                         auto_offset_reset="earliest", enable_auto_commit=False,
                         max_partition_fetch_bytes=4 << 20, fetch_max_bytes=32 << 20)
    await c.start()
    try:
        seen = 0
        t0, c0 = time.perf_counter(), cpu_s()
        while seen < n:
            batch = await c.getmany(timeout_ms=1000, max_records=10_000)
            for tp, recs in batch.items():
                if highwaters is not None:
                    highwaters[tp.partition] = c.highwater(tp)
                for r in recs:
                    handle(tp.partition, r)
            seen += sum(len(v) for v in batch.values())
        return time.perf_counter() - t0, cpu_s() - c0
    finally:
        await c.stop()


def stage_engine(settings: Settings, policies_file: Path,
                 highwaters: dict[int, int]) -> tuple[Engine, Any, TimerShare, Any]:
    """The engine as the worker runs it, without Kafka: every lead state it
    persists is encoded as for its changelog (then dropped) through a record
    cache flushed with each timer pass, and its timer runs every
    ``TICK_EVERY`` records, so B2 carries the state encoding and the timer's
    share of the work, not the event path alone. Returns the
    engine, the record handler, the timer (its share) and the sink (the
    decision ids it saw)."""

    class EncodingSink:
        """Lead states are encoded as the changelog would carry them; every
        other record the engine writes (outcomes, reports) goes nowhere."""

        def __init__(self) -> None:
            self.decisions: set[str] = set()
            self.states: dict[tuple[int, str], Any] = {}

        def persist(self, partition: int, lead_id: str, entry: Any) -> None:
            self.states[(partition, lead_id)] = entry

        def persist_now(self, partition: int, lead_id: str, entry: Any) -> None:
            self.states.pop((partition, lead_id), None)
            if entry is not None:
                state_to_bytes(entry.partition, entry.state)

        def flush(self) -> None:
            # As the worker's record cache, flushed at every timer pass here
            # (the worker flushes at each commit, a few times less often).
            states, self.states = self.states, {}
            for entry in states.values():
                if entry is not None:
                    state_to_bytes(entry.partition, entry.state)

        def outcome(self, lead_id: str, value: bytes) -> None:
            self.decisions.add(orjson.loads(value)["decision_id"])

        def __getattr__(self, name: str) -> Any:
            return lambda *a, **k: None

    policies = load_policies(policies_file)
    sink = EncodingSink()
    engine = Engine(settings, policies, Metrics(CollectorRegistry(), policies, 200, 500), {}, {}, sink,
                    highwater=highwaters.get)
    seen = [0]

    def handle(partition: int, r: Any) -> None:
        engine.handle(partition, r.offset, r.key, r.value)
        seen[0] += 1
        if seen[0] % TICK_EVERY == 0:
            timer.tick()

    timer = TimerShare(engine)
    return engine, handle, timer, sink


class TimerShare:
    """Runs the engine's timer and keeps what it cost: CPU seconds and the
    due leads it handled (for µs per due lead)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.cpu_s = 0.0
        self.due = 0

    def tick(self) -> int:
        c0 = cpu_s()
        handled = self.engine.tick()
        self.cpu_s += cpu_s() - c0
        self.engine.sink.flush()  # type: ignore[attr-defined]
        self.due += handled
        return handled

    def us_per_due_lead(self) -> float | None:
        return self.cpu_s * US / self.due if self.due else None


def scale_figures(quick: bool) -> dict[str, Any]:
    """``python -m bench.scale`` in a process of its own (its RSS figures
    must not carry this one's), its table passed through; its JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "bench.scale", "--out", tmp, *(["--quick"] if quick else [])]
        print("\nscale figures (bench.scale) …", file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True)
        [found] = Path(tmp).glob("scale-*.json")
        return json.loads(found.read_text())  # type: ignore[no-any-return]


def recovery_figures(leads: int, partitions: int) -> dict[str, Any]:
    """``python -m bench.recovery`` with ``leads`` leads and one restart, in
    a process of its own (its table passed through); its JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "bench.recovery", "--leads", str(leads), "--partitions", str(partitions),
               "--restarts", "1", "--rounds", "0", "--out", tmp]
        print(f"\nrestart with {leads:,} leads (bench.recovery) …", file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True)
        [found] = Path(tmp).glob("recovery-*.json")
        return json.loads(found.read_text())  # type: ignore[no-any-return]


async def count_decisions(bootstrap: str, topic: str) -> int:
    """Distinct decision ids on an outcomes topic, read to its end."""
    from leadsla.streams.topic_reader import read_topic

    ids: set[str] = set()
    await read_topic(bootstrap, topic, lambda record: ids.add(orjson.loads(record.value)["decision_id"]))
    return len(ids)


def worker_stage(bootstrap: str, topic: str, n: int, partitions: int, extra: dict[str, str]) -> dict[str, Any]:
    """B6: a real ``leadsla run`` on ``topic`` (``n`` records), with the
    settings ``extra`` over the defaults. Returns seconds (from ready to its
    last record), events, events per second, CPU µs per event and peak RSS
    (MiB), once its decisions have settled; or ``{"error": …}``."""
    with socket.socket() as probe:  # a port free now, for the worker's web server
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("LEADSLA_")},
               "LEADSLA_BROKER": f"kafka://{bootstrap}", "LEADSLA_INPUT_TOPIC": topic,
               "LEADSLA_DLQ_TOPIC": f"{topic}-dlq", "LEADSLA_OUTCOMES_TOPIC": f"{topic}-outcomes",
               "LEADSLA_APP_ID": f"bench-{uuid.uuid4().hex[:8]}", "LEADSLA_WEB_PORT": str(port),
               "LEADSLA_PARTITIONS": str(partitions), "LEADSLA_DATA_DIR": tmp, "LEADSLA_LOG_LEVEL": "warning",
               **extra}
        log_path = Path(tmp) / "worker.log"
        with open(log_path, "wb") as log_file:  # the child keeps its own copy
            proc = subprocess.Popen([sys.executable, "-m", "leadsla", "run"], env=env,
                                    stdout=log_file, stderr=subprocess.STDOUT)

        def exited() -> dict[str, Any] | None:
            # A worker that refused its settings or crashed: say so, with its last words.
            if proc.poll() is None:
                return None
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            return {"error": f"the worker exited with {proc.returncode}: " + " | ".join(tail)}

        try:
            # From the moment the worker says ready (recovered, about to
            # fetch) to the wall time it received its last record (its own
            # leadsla_last_event_timestamp_seconds): scrapes only say when.
            t_start = time.perf_counter()
            ready = None
            while ready is None and time.perf_counter() - t_start < 300:
                if (gone := exited()) is not None:
                    return gone
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as r:
                        if json.loads(r.read())["ready"]:
                            ready = (time.time(), _proc_cpu(proc.pid))
                except (OSError, ValueError):
                    pass
                if ready is None:
                    time.sleep(0.05)
            if ready is None:
                return {"error": "worker not ready"}
            # A scrape renders every series: often enough to end soon after
            # the last record, rarely enough to stay out of what is measured.
            poll = min(1.0, max(0.1, n / 200_000))
            while time.perf_counter() - t_start < 1800:
                time.sleep(poll)
                if (gone := exited()) is not None:
                    return gone
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
                    text = r.read().decode()
                total, last = 0.0, 0.0
                for fam in text_string_to_metric_families(text):
                    if fam.name in ("leadsla_events", "leadsla_events_duplicate", "leadsla_events_rejected"):
                        total += sum(s.value for s in fam.samples if s.name.endswith("_total"))
                    elif fam.name == "leadsla_last_event_timestamp_seconds":
                        last = fam.samples[0].value
                if total >= n:
                    cpu = _proc_cpu(proc.pid) - ready[1]
                    elapsed = max(last - ready[0], 1e-3)
                    result = {"seconds": elapsed, "events": total, "events_per_s": total / elapsed,
                              "cpu_us_per_event": cpu * US / total, "peak_rss_mib": _proc_rss_mib(proc.pid)}
                    _settle(port)
                    return result
            return {"error": "worker did not finish"}
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _settle(port: int, quiet_s: float = 1.0, limit_s: float = 120.0) -> None:
    """Wait until the worker's timer has decided what the history left due:
    its outcome count unchanged over ``quiet_s`` seconds (at most ``limit_s``)."""
    previous = None
    deadline = time.perf_counter() + limit_s
    while time.perf_counter() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
            text = r.read().decode()
        decided = sum(s.value for fam in text_string_to_metric_families(text) if fam.name == "leadsla_sla_outcomes"
                      for s in fam.samples if s.name.endswith("_total"))
        if decided == previous:
            return
        previous = decided
        time.sleep(quiet_s)


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000,
                    help="records in the backlog (default 200,000; below ~50,000 the worker reads much of it "
                         "while starting, before B6's clock starts, and B6 means little)")
    ap.add_argument("--partitions", type=int, default=8, help="partitions of the topic (default 8)")
    ap.add_argument("--listen", default="127.0.0.1:19192", help="where the embedded broker listens")
    ap.add_argument("--out", type=Path, default=Path("bench/results"), help="the directory the JSON goes to")
    ap.add_argument("--policies", type=Path, default=EXAMPLE_POLICIES,
                    help="the policies file for the traffic, the engine and the worker (default: the example)")
    ap.add_argument("--end-ago", default="0s", metavar="DURATION",
                    help="the history ends this long ago (e.g. 30d: every clock decided, none due during the run)")
    ap.add_argument("--skip-worker", action="store_true", help="leave out B6, the real worker")
    ap.add_argument("--recovery-leads", type=int, default=1_000_000, metavar="N",
                    help="bench.recovery with N leads, one restart: restart to ready against a raw drain of the "
                         "changelogs (0: skip; a million takes several minutes)")
    ap.add_argument("--scale", choices=("full", "quick", "none"), default="full",
                    help="the scale figures of bench.scale, in a process of their own (full: a million open "
                         "clocks, ~3.5 GiB and a few minutes; quick: a smoke size; none: skip them)")
    ap.add_argument("--worker-env", action="append", default=[], metavar="LEADSLA_X=VALUE",
                    help="a setting for the B6 worker (repeatable)")
    args = ap.parse_args()

    print(f"generating {args.events} events …", file=sys.stderr)
    events = make_events(args.events, args.policies, parse_duration_us(args.end_ago))
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    results: dict[str, Any] = {"events": args.events, "partitions": args.partitions, "policies": str(args.policies)}
    with EmbeddedBroker(args.listen):
        asyncio.run(ensure_topics(args.listen, [topic, f"{topic}-dlq", f"{topic}-outcomes"], args.partitions))
        t0 = time.perf_counter()
        asyncio.run(fill(args.listen, topic, events))
        results["fill_s"] = time.perf_counter() - t0
        print(f"filled {topic} in {results['fill_s']:.1f}s", file=sys.stderr)

        settings = Settings(broker=f"kafka://{args.listen}")
        now = time.time_ns() // 1000
        stages: dict[str, Any] = {
            "B0 raw drain": lambda p, r: None,
            "B1 + decode": lambda p, r: decode(r.key, r.value, 65536, now, 900 * US),
        }
        for name, handle in stages.items():
            reset_peak_rss()
            secs, cpu = asyncio.run(drain(args.listen, topic, args.events, handle))
            results[name] = {"seconds": secs, "events_per_s": args.events / secs, "cpu_us_per_event": cpu * US / args.events,
                             "peak_rss_mib": rss_mib()}
        reset_peak_rss()
        highwaters: dict[int, int] = {}
        engine, handle, timer, sink = stage_engine(settings, args.policies, highwaters)
        secs, cpu = asyncio.run(drain(args.listen, topic, args.events, handle, highwaters))
        t1 = time.perf_counter()
        # What the timer would do once the backlog is read: decide what is due.
        for _ in range(10_000):
            if not (timer.tick() or engine.pending()):
                break
        results["B2 + engine, metrics, timer, state encoding"] = {
            "seconds": secs, "events_per_s": args.events / secs, "cpu_us_per_event": cpu * US / args.events,
            "final_tick_s": time.perf_counter() - t1, "timer_us_per_due_lead": timer.us_per_due_lead(),
            "timer_due_leads": timer.due, "leads": len(engine.store), "decisions": len(sink.decisions),
            "peak_rss_mib": rss_mib()}
        if not args.skip_worker:
            extra = {"LEADSLA_POLICIES": str(args.policies.resolve()), **dict(kv.split("=", 1) for kv in args.worker_env)}
            results["B6 leadsla run"] = worker_stage(args.listen, topic, args.events, args.partitions, extra)
            results["B6 leadsla run"]["settings"] = extra
            # The same history decided by the worker and by B2's engine: the
            # distinct decision ids on the outcomes topic against B2's (a few
            # clocks whose deadline falls between the two runs may differ).
            results["B6 leadsla run"]["decisions"] = asyncio.run(count_decisions(args.listen, f"{topic}-outcomes"))

    base = results["B0 raw drain"]["events_per_s"]
    print(f"\n{'stage':<46}{'events/s':>12}{'ratio':>8}{'cpu µs/ev':>11}{'rss MiB':>9}")
    for name, r in results.items():
        if isinstance(r, dict) and "events_per_s" in r:
            r["ratio_to_b0"] = r["events_per_s"] / base
            print(f"{name:<46}{r['events_per_s']:>12,.0f}{r['ratio_to_b0']:>8.3f}{r['cpu_us_per_event']:>11.1f}"
                  f"{r.get('peak_rss_mib', 0):>9.0f}")
    b2 = results["B2 + engine, metrics, timer, state encoding"]
    if b2["timer_us_per_due_lead"] is not None:
        print(f"\ntimer: {b2['timer_us_per_due_lead']:.1f} CPU µs per due lead ({b2['timer_due_leads']:,} due leads)")
    b6 = results.get("B6 leadsla run", {})
    if "error" in b6:
        print(f"B6: {b6['error']}")
    elif "decisions" in b6:
        print(f"decisions: B2 {b2['decisions']:,}, B6 {b6['decisions']:,} (distinct decision ids)")
    if args.scale != "none":
        results["scale"] = scale_figures(args.scale == "quick")
    if args.recovery_leads:
        results["recovery"] = recovery_figures(args.recovery_leads, args.partitions)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(f"\nwrote {out}")
    return 1 if "error" in results.get("B6 leadsla run", {}) else 0


if __name__ == "__main__":
    sys.exit(main())
