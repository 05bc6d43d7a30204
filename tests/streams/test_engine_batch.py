"""streams.engine: a fetch handed over as one batch (``handle_batch``) is
decided exactly as its records handed over one by one (``handle``), with the
wall clock and the partition's high watermark as they are during the fetch:
every output in the same order, the same state, the same gauges and metrics.
Backlogs that end inside a batch, unknown high watermarks, bad records,
duplicates and an offset gap included."""

from __future__ import annotations

import hashlib
import random
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from leadsla.models.policy import load_policies
from leadsla.streams.demo import TrafficGenerator
from leadsla.streams.engine import Engine
from leadsla.streams.metrics import Metrics, RuntimeCollector
from leadsla.streams.settings import EXAMPLE_POLICIES, Settings

NOW = 1_780_000_000_000_000
S = 1_000_000
PARTITIONS = 3


class LogSink:
    """Every call the engine makes, in order; lead states as text at the time of the call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def persist(self, partition: int, lead_id: str, entry: Any) -> None:
        self.calls.append(("persist", partition, lead_id, None if entry is None else (entry.partition, repr(entry.state))))

    def persist_now(self, partition: int, lead_id: str, entry: Any) -> None:
        self.calls.append(("persist_now", partition, lead_id,
                           None if entry is None else (entry.partition, repr(entry.state))))

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kw: self.calls.append((name, args, tuple(sorted(kw.items()))))


class Side:
    """One engine and everything around it."""

    def __init__(self) -> None:
        self.policies = load_policies(EXAMPLE_POLICIES)
        self.settings = Settings(broker="kafka://127.0.0.1:1", allowed_lateness=30, replay_horizon="1h")
        self.registry = CollectorRegistry()
        self.sink = LogSink()
        self.wall = NOW
        self.hw: dict[int, int | None] = {}
        self.rereads: list[tuple[int, int, int]] = []
        self.engine = Engine(self.settings, self.policies, Metrics(self.registry, self.policies, 200, 500), {}, {},
                             self.sink, highwater=lambda p: self.hw.get(p), wall_us=lambda: self.wall,
                             reread=lambda p, first, end: self.rereads.append((p, first, end)))
        self.registry.register(RuntimeCollector(self.engine.views.snapshot, self.policies))

    def state(self) -> Any:
        e = self.engine
        runtimes = {p: (rt.watermark, rt.caught_up, rt.last_offset, rt.next_offset, rt.gap_from, rt.max_event_time,
                        dict(rt.open), dict(rt.at_risk), dict(rt.paused), rt.windows, sorted(rt.dirty),
                        rt.deliveries, rt.period_cells, len(rt.index))
                    for p, rt in sorted(e.runtimes.items())}
        store = {k: (v.partition, repr(v.state)) for k, v in e.store.items()}
        return (runtimes, store, dict(e.window_store), e.last_event_wall, self.rereads)


def exposition(side: Side) -> list[str]:
    """/metrics, but for the one gauge that reads the real time."""
    return [line for line in generate_latest(side.registry).decode().splitlines()
            if not line.startswith("leadsla_seconds_since_last_event ")]


def fetches(seed: int) -> list[tuple[int, int, int | None, list[tuple[int, bytes | None, bytes | None]]]]:
    """(wall µs, partition, high watermark during the fetch, records) per fetch:
    a backlog read in fetches of 1-40 records, then live traffic."""
    policies = load_policies(EXAMPLE_POLICIES)
    rng = random.Random(seed)
    events = TrafficGenerator(policies, seed=seed).history(NOW, days=6, leads=400)
    per_partition: list[list[tuple[bytes | None, bytes | None]]] = [[] for _ in range(PARTITIONS)]
    for i, e in enumerate(events):
        key = str(e["lead_id"]).encode()
        p = int(hashlib.md5(key).hexdigest(), 16) % PARTITIONS
        value = orjson.dumps(e)
        per_partition[p].append((key, value))
        if i % 41 == 0:
            per_partition[p].append((key, b"{oops"))  # malformed
        if i % 53 == 0:
            per_partition[p].append((key, value))  # a duplicate
    offsets = [0] * PARTITIONS
    positions = [0] * PARTITIONS
    out = []
    wall = NOW
    while any(positions[p] < len(per_partition[p]) for p in range(PARTITIONS)):
        wall += rng.randrange(1, 60) * S
        for p in range(PARTITIONS):
            n = rng.randrange(1, 41)
            batch = []
            for key, value in per_partition[p][positions[p]:positions[p] + n]:
                if p == 1 and offsets[p] == 57:
                    offsets[p] += 3  # a gap: three offsets that never arrive
                batch.append((offsets[p], key, value))
                offsets[p] += 1
            positions[p] += n
            if not batch:
                continue
            end = batch[-1][0] + 1
            # Mostly a backlog; now and then the fetch reaches the end (caught
            # up at its last record) or the high watermark is not known.
            hw = rng.choice([None, end, end + rng.randrange(1, 60), end + rng.randrange(1, 60), end + 200])
            out.append((wall, p, hw, batch))
    return out


@pytest.mark.parametrize("seed", [3, 8])
def test_a_batch_is_decided_as_its_records_one_by_one(seed: int) -> None:
    one, batch = Side(), Side()
    for side in (one, batch):
        side.engine.rebuild(range(PARTITIONS), {p: 0 for p in range(PARTITIONS)})
    for i, (wall, p, hw, records) in enumerate(fetches(seed)):
        for side in (one, batch):
            side.wall, side.hw[p] = wall, hw
        for offset, key, value in records:
            one.engine.handle(p, offset, key, value)
        batch.engine.handle_batch(p, iter(records))
        assert batch.sink.calls == one.sink.calls, i
        assert batch.state() == one.state(), i
        if i % 5 == 0:
            assert one.engine.tick() == batch.engine.tick()
    for side in (one, batch):
        side.wall += 40 * 86400 * S
        side.hw = {p: side.engine.runtimes[p].last_offset + 1 for p in range(PARTITIONS)}
        while side.engine.tick() or side.engine.pending():
            pass
    assert batch.sink.calls == one.sink.calls
    assert batch.state() == one.state()
    assert exposition(batch) == exposition(one)
    kinds = {c[0] for c in one.sink.calls}
    assert {"persist", "outcome", "dead_letter", "window"} <= kinds
    assert one.rereads == [(1, 57, 60)]
