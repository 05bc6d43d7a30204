"""The Faust wiring in memory: the agent of ``streams.app`` fed through
Faust's test context (no broker), the tables holding real lead state."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry, generate_latest

from leadsla.models.clock import LeadState
from leadsla.models.policy import parse_policies
from leadsla.streams.app import _restore_changelogs, _Tables, build_monitor
from leadsla.streams.codec import LeadEntry, delivery_key, period_cell_key, window_key
from leadsla.streams.settings import Settings
from leadsla.streams.timer import every

POLICIES = """
policies:
  - {name: first_touch, start: lead.handed_off, stop: lead.contact_attempt, goal: 1h}
"""


@pytest.fixture
def monitor(tmp_path: Path):
    settings = Settings(broker="kafka://127.0.0.1:1", data_dir=tmp_path, app_id=f"test-{tmp_path.name}")
    m = build_monitor(settings, parse_policies(POLICIES), CollectorRegistry())
    m.app.finalize()
    m.app.flow_control.resume()
    return m


def record(**fields: object) -> tuple[bytes, bytes]:
    return str(fields["lead_id"]).encode(), orjson.dumps(fields)


class FakeProducer:
    """Stands in for aiokafka's producer: there is no broker in this tier."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, int | None, list | None]] = []

    async def send(self, topic, value=None, key=None, partition=None, headers=None):  # noqa: ANN001, ANN201
        self.sent.append((topic, key, value, partition, headers))


def test_the_engine_works_on_the_tables_own_dicts(monitor) -> None:
    # What recovery applies to a table (Faust's apply_changelog_batch writes
    # the store's dict) is what the engine reads, and the other way round.
    tables = monitor.app.tables
    engine = monitor.engine
    assert engine.store is tables["leads"].data.data
    assert engine.window_store is tables["team-windows"].data.data
    assert engine.delivery_store is tables["target-days"].data.data
    assert engine.period_store is tables["period-cells"].data.data


def test_the_monitor_knows_its_broker_watch(monitor) -> None:
    # What a status line needs to tell a broker outage from a recovery.
    assert monitor.health is not None
    assert (monitor.health.where, monitor.health.up, monitor.health.down_for()) == ("127.0.0.1:1", True, 0.0)


async def test_agent_feeds_the_engine_and_the_lead_table(monitor) -> None:
    producer = FakeProducer()
    monitor.app.producer._ensure_producer = lambda: producer
    agent = monitor.app.agents["leadsla.process"]
    async with agent.test_context() as ctx:
        for key, value in (
            record(event_id="e1", lead_id="L1", type="lead.handed_off", occurred_at="2026-11-20T09:00:00Z", team="emea"),
            record(event_id="e1", lead_id="L1", type="lead.handed_off", occurred_at="2026-11-20T09:00:00Z", team="emea"),
            (b"L2", b"{broken"),
        ):
            await ctx.put(key=key, value=value)
    # Lead states wait in the record cache for the next commit, which
    # flushes them first.
    assert not [s for s in producer.sent if s[0].endswith("-leads-changelog")]
    await monitor.sink.flush()
    engine = monitor.engine
    entry = engine.store["L1"]
    assert entry.state.seen and len(entry.state.seen) == 1  # the duplicate counted once
    text = generate_latest(monitor.registry).decode()
    assert 'leadsla_events_total{type="lead.handed_off"} 1.0' in text
    assert "leadsla_events_duplicate_total 1.0" in text
    assert 'leadsla_events_rejected_total{reason="malformed"} 1.0' in text
    assert "L1" not in text and "L2" not in text
    # One changelog record for the accepted event (none for the duplicate),
    # on the lead's partition, in the bytes the table reads back on recovery;
    # the rejected record goes to the dead-letter topic untouched.
    assert monitor.sink.queue == []
    changelog = [s for s in producer.sent if s[0] == f"{monitor.app.conf.id}-leads-changelog"]
    assert [(key, partition) for _, key, _, partition, _ in changelog] == [(b'"L1"', 0)]
    leads = monitor.app.tables["leads"]
    assert leads.changelog_topic.get_topic_name() == changelog[0][0]
    recovered = monitor.app.serializers.loads_value(leads.value_type, changelog[0][2], serializer=leads.value_serializer)
    assert recovered.partition == 0 and recovered.state == entry.state
    assert monitor.app.serializers.loads_key(leads.key_type, changelog[0][1], serializer=leads.key_serializer) == "L1"
    dead = [s for s in producer.sent if s[0] == "lead-events-dlq"]
    assert [(key, value, dict(headers)["reason"]) for _, key, value, _, headers in dead] == [
        (b"L2", b"{broken", b"malformed")]


async def test_window_records_read_back_as_the_table_expects(monitor) -> None:
    producer = FakeProducer()
    monitor.app.producer._ensure_producer = lambda: producer
    monitor.sink.window(2, "3600|1795338000|handoffs|emea|2", 3)
    monitor.sink.window(2, "3600|1795338000|latency|emea|2", 1800.5)
    monitor.sink.window(2, "3600|1795338000|first|emea|2", None)
    await monitor.sink.drain()
    windows = monitor.app.tables["team-windows"]
    ser = monitor.app.serializers
    got = [(ser.loads_key(windows.key_type, key, serializer=windows.key_serializer),
            None if value is None else ser.loads_value(windows.value_type, value, serializer=windows.value_serializer),
            partition)
           for _, key, value, partition, _ in producer.sent]
    assert got == [("3600|1795338000|handoffs|emea|2", 3.0, 2), ("3600|1795338000|latency|emea|2", 1800.5, 2),
                   ("3600|1795338000|first|emea|2", None, 2)]
    assert {topic for topic, *_ in producer.sent} == {windows.changelog_topic.get_topic_name()}


async def test_after_the_broker_lost_the_changelogs_the_state_owned_is_written_again(
    monitor, monkeypatch: pytest.MonkeyPatch
) -> None:
    producer = FakeProducer()
    app = monitor.app
    app.producer._ensure_producer = lambda: producer
    t = app.tables
    tables = _Tables(t["leads"], t["team-windows"], t["target-days"], t["period-cells"], t["period-ledger"])
    names = {name: table.changelog_topic.get_topic_name() for name, table in t.items()}
    # This worker owns partition 0 of every changelog; partition 3 is another's.
    monkeypatch.setattr(app.assignor, "assigned_actives",
                        lambda: {TP(topic, 0) for topic in names.values()} | {TP("lead-events", 0)})
    ledger_sent: list[tuple[int, str, object]] = []
    monkeypatch.setattr(tables.ledger, "send_changelog", lambda p, k, v: ledger_sent.append((p, k, v)))
    state = LeadState()
    for p in (0, 3):
        tables.leads.data[f"L{p}"] = LeadEntry(p, state)
        tables.windows.data[window_key(3600, 1795338000, "handoffs", "emea", p)] = 3.0
        tables.deliveries.data[delivery_key("mql", "month", 1, 2, p)] = [1.0, 50.0]
        tables.period_cells.data[period_cell_key("first_touch", "week", 9, p, "emea")] = [4, 1]
        tables.ledger.data[f"policy|first_touch|{p}"] = {"k": p, "strikes": 0}
    recovery = t.recovery
    recovery.active_offsets[TP(names["leads"], 0)] = 10
    recovery.active_offsets[TP(names["target-days"], 0)] = 6
    lost = [names[n] for n in ("leads", "team-windows", "period-cells", "period-ledger")]  # target-days survived

    assert await _restore_changelogs(app, tables, monitor.sink, lost) == 4
    # (lead states through the record cache, flushed after the cells)
    assert [(topic, key, partition) for topic, key, _, partition, _ in producer.sent] == [
        (names["team-windows"], orjson.dumps(window_key(3600, 1795338000, "handoffs", "emea", 0)), 0),
        (names["period-cells"], orjson.dumps(period_cell_key("first_touch", "week", 9, 0, "emea")), 0),
        (names["leads"], b'"L0"', 0),
    ]
    leads = t["leads"]
    again = app.serializers.loads_value(leads.value_type, producer.sent[2][2], serializer=leads.value_serializer)
    assert again.partition == 0 and again.state == state
    assert ledger_sent == [(0, "policy|first_touch|0", {"k": 0, "strikes": 0})]
    # The next recovery reads the lost changelogs from their start, the others where it was.
    assert recovery.active_offsets[TP(names["leads"], 0)] == -1
    assert recovery.active_offsets[TP(names["target-days"], 0)] == 6


async def test_the_deadline_passes_pause_an_interval_after_each_and_stop_when_asked() -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    started: list[float] = []
    ended: list[float] = []

    async def work() -> None:
        started.append(loop.time())
        await asyncio.sleep(0.3 if len(started) == 2 else 0)  # the second pass outlasts the interval
        ended.append(loop.time())
        if len(started) == 4:
            loop.call_later(0.01, stopping.set)  # during the next pause

    t0 = loop.time()
    await asyncio.wait_for(every(0.2, work, stopping), 5)
    assert len(started) == 4
    assert started[0] - t0 >= 0.2
    for end, start in zip(ended, started[1:], strict=False):
        assert 0.2 <= start - end < 0.3  # a whole interval after the last pass, however long it was
    assert loop.time() - ended[-1] < 0.15  # the pause cut short


async def test_a_pause_ends_when_work_is_due_sooner_but_never_spins() -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    started: list[float] = []
    # Due in 0.05 s, then "already due" (a bucket a pass could not empty), then nothing known.
    answers = iter([0.05, -1.0, None])

    async def work() -> None:
        started.append(loop.time())
        if len(started) == 3:
            stopping.set()

    t0 = loop.time()
    await asyncio.wait_for(every(0.5, work, stopping, sooner=lambda: next(answers)), 5)
    assert 0.05 <= started[0] - t0 < 0.3
    assert 0.01 <= started[1] - started[0] < 0.3  # at least MIN_PAUSE, however overdue
    assert started[2] - started[1] >= 0.5  # nothing known: the whole interval


async def test_a_pass_under_way_when_stopping_is_the_last() -> None:
    stopping = asyncio.Event()
    passes = 0

    async def work() -> None:
        nonlocal passes
        passes += 1
        stopping.set()

    await asyncio.wait_for(every(0.01, work, stopping), 1)
    assert passes == 1
