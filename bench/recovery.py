"""leadsla recovery benchmark: how long a restart and a rebalance take with
real ``leadsla run`` workers on the embedded broker.

    python -m bench.recovery [--leads 50000] [--partitions 4] [--restarts 3] [--rounds 3]
                             [--worker-env LEADSLA_X=VALUE ...] [--out bench/results]

One broker, N leads handed off (N open clocks per policy) and processed once
by a worker. Then:

(a) restart → ready: the worker is stopped with SIGTERM and started again;
    seconds from the new process to ``/ready`` answering 200;
(b) restart → state: to its open-clock gauge being back at exactly N per
    policy (the table recovered whole). Repeated ``--restarts`` times: the
    first restart is the first one a new group sees;
(c) kill → split: two workers of one group; one is SIGKILLed; seconds until
    the survivor owns every partition and is ready; then rejoin → split: the
    killed worker is started again, seconds until both own partitions, all of
    them between them, and both are ready. Repeated ``--rounds`` times (the
    two workers take turns being killed): min, median, max.

Every stop and kill waits until the group's changelogs are quiet (the
workers idle), so that each step starts from the same state. After every
step the open-clock gauges must add up to N per policy again: a
recovery that comes back incomplete or twice is reported as an error, not a
time. Prints a table and writes JSON. Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from leadsla.models.events import format_timestamp_us
from leadsla.streams.broker import EmbeddedBroker, ensure_topics

# Two policies whose goals nothing in the run reaches: every handed-off lead
# keeps two open clocks for as long as the benchmark lasts.
POLICIES = """\
policies:
  - name: first_touch
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected, lead.disqualified]
    goal: 30d
  - name: disposition
    start: lead.handed_off
    stop: [lead.qualified, lead.disqualified, lead.recycled]
    goal: 60d
"""
N_POLICIES = 2
TEAMS = ("na_east", "na_west", "emea", "apac", "latam", "smb", "enterprise", "partners")
POLL = 0.1  # seconds between two looks at a worker
TIMEOUT = 600.0  # longest wait for one step (seconds)


class BenchError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def handoffs(n: int) -> list[tuple[bytes, bytes]]:
    at = datetime.now(UTC) - timedelta(minutes=5)
    us = (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    when = format_timestamp_us(us - us % 1000)
    out = []
    for i in range(n):
        lead = f"lead-{i:07d}"
        out.append((lead.encode(), orjson.dumps({
            "event_id": f"h-{lead}", "lead_id": lead, "type": "lead.handed_off", "occurred_at": when,
            "team": TEAMS[i % len(TEAMS)], "rep": f"rep-{i % 97:02d}", "segment": "mid_market",
            "source": "marketing", "attributes": {"form": "contact_us"},
        })))
    return out


async def publish(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024)
    await p.start()
    try:
        futs = [await p.send(topic, key=k, value=v) for k, v in records]
        await asyncio.gather(*futs)
    finally:
        await p.stop()


async def _changelog_ends(bootstrap: str, app_id: str) -> int:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await c.start()
    try:
        topics = [t for t in await c.topics() if t.startswith(f"{app_id}-") and t.endswith("-changelog")]
        tps = [TopicPartition(t, p) for t in topics for p in c.partitions_for_topic(t) or ()]
        return sum((await c.end_offsets(tps)).values()) if tps else 0
    finally:
        await c.stop()


async def _raw_changelog_drain(bootstrap: str, app_id: str) -> tuple[int, float]:
    """Read every changelog of the group from its start to its fetch high
    watermark, records not even decoded: (records, seconds). What a
    recovery could at best take, the denominator of its ratio."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                         max_partition_fetch_bytes=8 << 20, fetch_max_bytes=64 << 20)
    await c.start()
    try:
        topics = [t for t in await c.topics() if t.startswith(f"{app_id}-") and t.endswith("-changelog")]
        tps = [TopicPartition(t, p) for t in topics for p in c.partitions_for_topic(t) or ()]
        t0 = time.perf_counter()
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        pending, records = set(tps), 0
        while pending:
            got = await c.getmany(*pending, timeout_ms=200, max_records=50_000)
            records += sum(len(v) for v in got.values())
            for tp in list(pending):
                hw = c.highwater(tp)
                if hw is not None and await c.position(tp) >= hw:
                    pending.discard(tp)
        return records, time.perf_counter() - t0
    finally:
        await c.stop()


def settle(bootstrap: str, app_id: str, quiet: float = 3.0) -> None:
    """Wait until the group's changelogs stop growing (``quiet`` seconds
    without a new record): the workers are idle, their timers' first passes
    over recovered or new leads are written."""
    last, since = -1, time.monotonic()
    deadline = since + TIMEOUT
    while time.monotonic() < deadline:
        ends = asyncio.run(_changelog_ends(bootstrap, app_id))
        if ends != last:
            last, since = ends, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.5)
    raise BenchError("the changelogs kept growing")


class Worker:
    """One ``leadsla run`` process, started again on the same port and data
    directory as a supervisor would."""

    def __init__(self, name: str, env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.port = free_port()
        self.env = {**env, "LEADSLA_WEB_PORT": str(self.port), "LEADSLA_DATA_DIR": str(logs / f"data-{name}")}
        self.logs = logs
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start the process; returns the monotonic time it was started at."""
        self.starts += 1
        with open(self.logs / f"{self.name}.{self.starts}.log", "wb") as out:
            t0 = time.monotonic()
            self.proc = subprocess.Popen([sys.executable, "-m", "leadsla", "run"], env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT)
        return t0

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def _check(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise BenchError(f"worker {self.name} exited ({code}); see {self.logs}/{self.name}.{self.starts}.log")

    def ready(self) -> bool:
        self._check()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def metrics(self) -> dict[str, float] | None:
        """Sums by metric name (labels added up); None while the server is not up."""
        self._check()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except (urllib.error.URLError, OSError):
            return None
        out: dict[str, float] = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out[s.name] = out.get(s.name, 0.0) + s.value
        return out


def wait(predicate: Any, what: str, timeout: float = TIMEOUT) -> float:
    """Poll until ``predicate()`` is truthy; the monotonic time it first was."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(POLL)
    raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")


def open_clocks(m: dict[str, float] | None) -> float:
    return -1.0 if m is None else m.get("leadsla_sla_open_clocks", 0.0)


def owned(m: dict[str, float] | None) -> float:
    return 0.0 if m is None else m.get("leadsla_owned_partitions", 0.0)


def processed(w: Worker, n: int, partitions: int) -> bool:
    m = w.metrics()
    return (m is not None and open_clocks(m) == n * N_POLICIES and owned(m) == partitions
            and m.get("leadsla_consumer_lag", -1) == 0)


def restart(w: Worker, n: int, idle: Any, bootstrap: str) -> dict[str, Any]:
    """(a) and (b): once idle, SIGTERM, start again, time to the web server,
    /ready and the whole state; and a raw drain of the group's changelogs
    (while stopped) to compare the restart with."""
    idle()
    w.stop(signal.SIGTERM)
    raw_records, raw_s = asyncio.run(_raw_changelog_drain(bootstrap, w.env["LEADSLA_APP_ID"]))
    t0 = w.start()
    up = ready = state = None
    at_ready = None
    while time.monotonic() - t0 < TIMEOUT and (ready is None or state is None):
        m = w.metrics()
        now = time.monotonic()
        if m is not None and up is None:
            up = now
        if state is None and open_clocks(m) == n * N_POLICIES:
            state = now
        if ready is None and m is not None and w.ready():
            ready = time.monotonic()
            at_ready = open_clocks(w.metrics())
        time.sleep(POLL)
    if ready is None or state is None or up is None:
        raise BenchError(f"restart: not ready or not recovered within {TIMEOUT:.0f}s")
    # The gauge must stay at N: a recovery that overshoots would show here.
    time.sleep(2)
    final = open_clocks(w.metrics())
    return {"to_web_s": up - t0, "to_ready_s": ready - t0, "to_state_s": state - t0,
            "open_clocks_at_ready": at_ready, "open_clocks_after": final,
            "changelog_records": raw_records, "raw_drain_s": raw_s, "ratio_raw_drain_to_ready": raw_s / (ready - t0),
            "reader": _reader_line(w),
            "exact": final == n * N_POLICIES and at_ready == n * N_POLICIES}


def _reader_line(w: Worker) -> dict[str, float] | None:
    """What the worker's log says its changelog reader read, and how fast."""
    log = (w.logs / f"{w.name}.{w.starts}.log").read_text(errors="replace")
    found = re.findall(r"changelogs: (\d+) record\(s\) of \d+ partition\(s\) read in ([\d.]+) s", log)
    if not found:
        return None
    records, seconds = sum(int(r) for r, _ in found), sum(float(t) for _, t in found)
    return {"records": records, "seconds": seconds, "records_per_s": records / seconds if seconds else None}


def split(workers: list[Worker], partitions: int) -> bool:
    ms = [w.metrics() for w in workers]
    return (all(owned(m) > 0 for m in ms) and sum(owned(m) for m in ms) == partitions
            and all(w.ready() for w in workers))


def group_clocks(workers: list[Worker]) -> float:
    return sum(open_clocks(w.metrics()) for w in workers)


def kill_round(victim: Worker, survivor: Worker, n: int, partitions: int, idle: Any) -> dict[str, Any]:
    """(c): once idle, SIGKILL one of two split workers, time the survivor's
    takeover; start it again, time the split."""
    idle()
    t0 = time.monotonic()
    victim.stop(signal.SIGKILL)
    took = wait(lambda: owned(survivor.metrics()) == partitions and survivor.ready(), "the survivor to own everything")
    alone = open_clocks(survivor.metrics())
    t1 = victim.start()
    both = wait(lambda: split([victim, survivor], partitions), "the partitions to split again")
    # Both report their share; give the gauges a moment to settle, then add up.
    time.sleep(2)
    total = group_clocks([victim, survivor])
    return {"killed": victim.name, "kill_to_split_s": took - t0, "rejoin_to_split_s": both - t1,
            "open_clocks_survivor_alone": alone, "open_clocks_after_rejoin": total,
            "exact": alone == n * N_POLICIES and total == n * N_POLICIES}


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--leads", type=int, default=50_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--restarts", type=int, default=3, help="SIGTERM → start again rounds (default 3)")
    ap.add_argument("--rounds", type=int, default=3, help="kill → split rounds (default 3)")
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    ap.add_argument("--logs", type=Path, help="keep the workers' logs and data here (default: a temporary directory)")
    ap.add_argument("--label", default="", help="a name for this run in the JSON (e.g. before, after)")
    ap.add_argument("--worker-env", action="append", default=[], metavar="LEADSLA_X=VALUE",
                    help="a setting for every worker (repeatable)")
    args = ap.parse_args()
    extra = dict(kv.split("=", 1) for kv in args.worker_env)

    with tempfile.TemporaryDirectory() as tmp:
        logs = args.logs or Path(tmp)
        logs.mkdir(parents=True, exist_ok=True)
        results = run(args.leads, args.partitions, args.restarts, args.rounds, extra, logs)
    results["label"] = args.label

    restarts = results["restarts"]
    rounds = results["rounds"]
    rows = [("restart → web up", [x["to_web_s"] for x in restarts]),
            ("restart → ready", [x["to_ready_s"] for x in restarts]),
            ("restart → state (N clocks)", [x["to_state_s"] for x in restarts]),
            ("kill → split", [x["kill_to_split_s"] for x in rounds]),
            ("rejoin → split", [x["rejoin_to_split_s"] for x in rounds])]
    print(f"\n{args.leads:,} leads, {args.partitions} partitions, settings {extra or 'defaults'}")
    print(f"{'step':<28}{'min s':>8}{'median s':>10}{'max s':>8}")
    rows.append(("raw drain of the changelogs", [x["raw_drain_s"] for x in restarts]))
    rows = [(name, values) for name, values in rows if values]
    for name, values in rows:
        s = spread(values)
        print(f"{name:<28}{s['min']:>8.1f}{s['median']:>10.1f}{s['max']:>8.1f}")
    if restarts:
        ratios = [x["ratio_raw_drain_to_ready"] for x in restarts]
        print(f"restart → ready as a ratio of the raw drain ({restarts[0]['changelog_records']:,} changelog records): "
              f"{min(ratios):.2f}–{max(ratios):.2f}")
    results["summary"] = {name: spread(values) for name, values in rows}
    exact = all(x["exact"] for x in restarts + rounds)
    results["exact"] = exact
    print(f"state exact after every step: {'yes' if exact else 'NO'}"
          f" (initial processing {results['initial_s']:.1f}s, publish {results['publish_s']:.1f}s)")
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"recovery-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(f"wrote {out}")
    return 0 if exact else 1


def run(n: int, partitions: int, restarts: int, rounds: int, extra: dict[str, str], logs: Path) -> dict[str, Any]:
    listen = f"127.0.0.1:{free_port()}"
    tag = uuid.uuid4().hex[:8]
    topic = f"lead-events-{tag}"
    policies = logs / "policies.yaml"
    policies.write_text(POLICIES)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LEADSLA_")},
           "LEADSLA_BROKER": f"kafka://{listen}", "LEADSLA_POLICIES": str(policies),
           "LEADSLA_APP_ID": f"bench-recovery-{tag}", "LEADSLA_INPUT_TOPIC": topic,
           "LEADSLA_DLQ_TOPIC": f"{topic}-dlq", "LEADSLA_OUTCOMES_TOPIC": f"{topic}-outcomes",
           "LEADSLA_PARTITIONS": str(partitions), "LEADSLA_LOG_LEVEL": "info", **extra}
    results: dict[str, Any] = {"leads": n, "partitions": partitions, "settings": extra, "restarts": [], "rounds": []}
    a, b = Worker("a", env, logs), Worker("b", env, logs)

    def idle() -> None:
        settle(listen, env["LEADSLA_APP_ID"])

    with EmbeddedBroker(listen, log_file=logs / "broker.log"):
        try:
            asyncio.run(ensure_topics(listen, [topic, f"{topic}-dlq", f"{topic}-outcomes"], partitions))
            print(f"publishing {n:,} handoffs …", file=sys.stderr)
            t0 = time.monotonic()
            asyncio.run(publish(listen, topic, handoffs(n)))
            results["publish_s"] = time.monotonic() - t0
            t0 = a.start()
            results["initial_s"] = wait(lambda: processed(a, n, partitions), f"{n} leads processed") - t0
            print(f"processed in {results['initial_s']:.1f}s; restarting …", file=sys.stderr)
            for i in range(restarts):
                results["restarts"].append(restart(a, n, idle, listen))
                print(f"restart {i + 1}: {results['restarts'][-1]}", file=sys.stderr)
            b.start()
            wait(lambda: split([a, b], partitions), "the first split")
            for i in range(rounds):
                victim, survivor = (b, a) if i % 2 == 0 else (a, b)
                results["rounds"].append(kill_round(victim, survivor, n, partitions, idle))
                print(f"round {i + 1}: {results['rounds'][-1]}", file=sys.stderr)
        finally:
            for w in (a, b):
                w.stop(signal.SIGTERM)
    return results


if __name__ == "__main__":
    sys.exit(main())
