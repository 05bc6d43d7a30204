"""The Faust wiring in memory: the agent of ``streams.app`` fed through
Faust's test context (no broker), the tables holding real lead state."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from models.policy import parse_policies
from streams.app import build_monitor
from streams.settings import Settings

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


async def test_agent_feeds_the_engine_and_the_lead_table(monitor) -> None:
    agent = monitor.app.agents["leadsla.process"]
    async with agent.test_context() as ctx:
        for key, value in (
            record(event_id="e1", lead_id="L1", type="lead.handed_off", occurred_at="2026-11-20T09:00:00Z", team="emea"),
            record(event_id="e1", lead_id="L1", type="lead.handed_off", occurred_at="2026-11-20T09:00:00Z", team="emea"),
            (b"L2", b"{broken"),
        ):
            await ctx.put(key=key, value=value)
    engine = monitor.engine
    entry = engine.store["L1"]
    assert entry.state.seen and len(entry.state.seen) == 1  # the duplicate counted once
    text = generate_latest(monitor.registry).decode()
    assert 'leadsla_events_total{type="lead.handed_off"} 1.0' in text
    assert "leadsla_events_duplicate_total 1.0" in text
    assert 'leadsla_events_rejected_total{reason="malformed"} 1.0' in text
    assert "L1" not in text and "L2" not in text
    # One changelog record for the accepted event (none for the duplicate),
    # on the lead's partition; the rejected record goes to the dead-letter topic.
    queued = []
    pending = monitor.app.producer.buffer.pending
    while not pending.empty():
        queued.append(pending.get_nowait().message)
    changelog = [m for m in queued if m.channel.get_topic_name().endswith("-leads-changelog")]
    assert [(m.key, m.partition) for m in changelog] == [(b'"L1"', 0)]  # table keys are JSON
    dead = [m for m in queued if m.channel.get_topic_name() == "lead-events-dlq"]
    assert [(m.key, m.value, dict(m.headers)["reason"]) for m in dead] == [(b"L2", b"{broken", b"malformed")]
