"""The batch path of lead-events (streams.batches) against the Faust it was
written for: the pinned version, the private methods it replaces or
mirrors, and what it maintains for Faust's commit chain, on a real Faust
consumer (no broker: the consumer is built, not started).

When faust-streaming changes, the first test fails: re-read the methods
named there against ``streams/batches.py`` before moving the pin."""

from __future__ import annotations

import hashlib
import inspect
import re
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from faust.transport.consumer import Consumer
from faust.types import TP
from prometheus_client import CollectorRegistry

from leadsla.models.policy import parse_policies
from leadsla.streams.app import Monitor, build_monitor
from leadsla.streams.batches import _gaps
from leadsla.streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PINNED = "0.15.3"

# sha256 (first 16 hex digits) of each Faust method's source, as read for
# streams/batches.py: the method replaced, and those whose bookkeeping it
# mirrors or relies on.
SOURCES = {
    "_drain_messages": "44a2500309e83c63",  # replaced
    "getmany": "4b168d84882a70d6",  # flow, generation and active-partition checks mirrored
    "ack": "5fcf41cf45153475",  # _acked, _acked_index, _n_acked maintained per batch
    "_new_offset": "1d2c7ea89a7ad4f1",  # reads them (and _gap) to find the offset to commit
    "wait_empty": "e4662fe24f094819",  # wrapped: waits for the batch being acked first
    "commit": "a354437baaa08bf8",  # wrapped: the record cache is flushed first
    "_wait_next_records": "6218e1969a636b3f",
    "_add_gap": "4df2573ded7c1c2c",
    "_filter_committable_offsets": "dc5e9baf5d994485",
    "_commit_offsets": "1a69799041188441",  # flushes the producer before committing
}

POLICIES = """
policies:
  - {name: first_touch, start: lead.handed_off, stop: lead.contact_attempt, goal: 1h}
"""


def test_faust_is_the_pinned_version_and_the_methods_are_those_the_seam_was_written_for() -> None:
    assert version("faust-streaming") == PINNED
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(rf'"faust-streaming=={re.escape(PINNED)}"', pyproject)
    changed = {name for name, digest in SOURCES.items()
               if hashlib.sha256(inspect.getsource(getattr(Consumer, name)).encode()).hexdigest()[:16] != digest}
    assert changed == set(), f"faust changed {sorted(changed)}: re-read them against streams/batches.py"


@pytest.fixture
def monitor(tmp_path: Path) -> Monitor:
    settings = Settings(broker="kafka://127.0.0.1:1", data_dir=tmp_path, app_id=f"seam-{tmp_path.name}")
    m = build_monitor(settings, parse_policies(POLICIES), CollectorRegistry())
    m.app.finalize()
    return m


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None]] = []

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                   partition: int | None = None, headers: Any = None) -> None:
        self.sent.append((topic, key))


def handoff(offset: int, lead: str) -> SimpleNamespace:
    value = orjson.dumps({"event_id": f"e{offset}", "lead_id": lead, "type": "lead.handed_off",
                          "occurred_at": "2026-11-20T09:00:00Z", "team": "emea"})
    return SimpleNamespace(offset=offset, key=lead.encode(), value=value)


def wired(monitor: Monitor, monkeypatch: pytest.MonkeyPatch, tp: TP, committed: int | None) -> tuple[Any, FakeProducer]:
    producer = FakeProducer()
    monkeypatch.setattr(monitor.app.producer, "_ensure_producer", lambda: producer, raising=False)
    consumer = monitor.app.consumer
    monkeypatch.setattr(consumer, "assignment", lambda: {tp})
    consumer._committed_offset[tp] = committed
    consumer._read_offset[tp] = committed
    return consumer, producer


def test_the_worker_s_consumer_has_the_batch_path_installed(monitor: Monitor) -> None:
    consumer = monitor.app.consumer
    assert monitor.batches is not None
    assert consumer._drain_messages.__func__ == monitor.batches._drain_messages
    assert consumer.commit.__func__.__qualname__.startswith("BatchDelivery.install")
    # The class is untouched: only this worker's consumer takes the batch path.
    assert "_drain_messages" in vars(consumer) and "_drain_messages" not in vars(type(consumer))
    for name in ("_read_offset", "_committed_offset", "_acked", "_acked_index", "_n_acked", "_gap",
                 "_buffered_partitions", "flow_active", "_commit_every", "suspend_flow", "diag"):
        assert hasattr(consumer, name), name


async def test_a_batch_is_decided_flushed_and_acked_so_that_faust_commits_past_it(
        monitor: Monitor, monkeypatch: pytest.MonkeyPatch) -> None:
    tp = TP(monitor.engine.settings.input_topic, 3)
    consumer, producer = wired(monitor, monkeypatch, tp, committed=10)
    batches = monitor.batches
    assert batches is not None
    # Offset 9 was read before the committed offset: not handed over again.
    fetched = [handoff(9, "L9"), *(handoff(o, f"L{o}") for o in range(10, 14))]
    await batches._deliver(consumer, tp, fetched, monitor.app.consumer_generation_id)
    await batches.settle()
    assert (batches.batches, batches.records) == (1, 4)
    assert sorted(monitor.engine.store) == ["L10", "L11", "L12", "L13"]
    assert consumer._read_offset[tp] == 13
    assert sorted(consumer._acked[tp]) == [10, 11, 12, 13] and consumer._n_acked == 4
    # What Faust commits from these acks: past the batch.
    assert consumer._new_offset(tp) == 14
    # The lead states wait for the commit (the record cache), written before it.
    assert not [t for t, _ in producer.sent if t.endswith("leads-changelog")]
    await batches.before_commit()  # type: ignore[misc]
    assert len([t for t, _ in producer.sent if t.endswith("leads-changelog")]) == 4


async def test_offsets_a_fetch_skips_count_as_done_for_the_commit(
        monitor: Monitor, monkeypatch: pytest.MonkeyPatch) -> None:
    tp = TP(monitor.engine.settings.input_topic, 1)
    consumer, _ = wired(monitor, monkeypatch, tp, committed=4)
    batches = monitor.batches
    assert batches is not None
    consumer._read_offset[tp] = 4
    # Offset 4 was handled; 5 and 6 are there, 7 and 8 hold no records (compaction, markers).
    await batches._deliver(consumer, tp, [handoff(5, "A"), handoff(6, "B"), handoff(9, "C")],
                           monitor.app.consumer_generation_id)
    await batches.settle()
    consumer._acked[tp].append(4)
    consumer._acked_index[tp].add(4)
    assert consumer._new_offset(tp) == 10


async def test_a_batch_revoked_before_its_flush_ended_is_not_acked(
        monitor: Monitor, monkeypatch: pytest.MonkeyPatch) -> None:
    tp = TP(monitor.engine.settings.input_topic, 0)
    consumer, _ = wired(monitor, monkeypatch, tp, committed=0)
    batches = monitor.batches
    assert batches is not None
    generation = monitor.app.consumer_generation_id
    monkeypatch.setattr(type(monitor.app), "consumer_generation_id", generation + 1, raising=False)
    await batches._deliver(consumer, tp, [handoff(0, "L0"), handoff(1, "L1")], generation)
    await batches.settle()
    assert list(consumer._acked[tp]) == [] and consumer._n_acked == 0
    assert sorted(monitor.engine.store) == ["L0", "L1"]  # decided; the next owner reads them again and dedupes


def test_gaps_are_counted_as_faust_counts_them() -> None:
    assert _gaps(None, [(0, None, None), (1, None, None), (5, None, None)]) == [(2, 4)]
    assert _gaps(3, [(6, None, None), (7, None, None)]) == [(4, 5)]
    assert _gaps(3, [(3, None, None), (4, None, None)]) == []
    assert _gaps(0, [(5, None, None)]) == []  # Faust counts no gap after a read offset of 0
