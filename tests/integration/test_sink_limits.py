"""A record too large for the worker's producer: a 1,000,000-byte value, which
Apache Kafka's default broker limit (message.max.bytes, 1,048,588) accepts on
lead-events, is dead-lettered as too_large with its value cut to fit, and the
worker goes on deciding the records after it."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import orjson
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from leadsla.streams.sink import DEAD_LETTER_HEADROOM, PRODUCER_MAX_REQUEST_SIZE

from .conftest import metric_sum, wait_for
from .kafka import create_topics, event, iso, publish, read_all

POLICIES = """
policies:
  - name: first_touch
    start: lead.handed_off
    stop: lead.contact_attempt
    goal: 1h
"""

SIZE = 1_000_000


def big_value(lead_id: str, at: datetime) -> bytes:
    """A lead event padded to exactly SIZE bytes, as a CRM with a runaway
    attribute would send it."""
    head = orjson.dumps({"event_id": "big", "lead_id": lead_id, "type": "lead.mql", "occurred_at": iso(at),
                         "attributes": {"notes": ""}})
    pad = SIZE - len(head)
    # Varied bytes, so that a wrong cut or a wrong hash cannot pass by accident.
    filler = (hashlib.sha256(b"seed").hexdigest() * (pad // 64 + 1))[:pad].encode()
    value = head[:-3] + filler + head[-3:]
    assert len(value) == SIZE
    return value


def test_a_dead_letter_too_large_to_send_goes_out_cut_and_the_worker_goes_on(setup) -> None:
    s = setup(POLICIES)
    create_topics(s.broker, list(s.topics.values()))
    w = s.worker().start()
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    lead = "lead-big"
    value = big_value(lead, t)
    # Same key, so the same partition: the handoff and follow-up come after
    # the big record in the stream the agent reads.
    publish(s.broker, s.topics["input"], [
        (lead.encode(), value),
        event(event_id="h1", lead_id=lead, type="lead.handed_off", occurred_at=iso(t), team="emea"),
        event(event_id="a1", lead_id=lead, type="lead.contact_attempt", occurred_at=iso(t + timedelta(minutes=20))),
    ])

    dead = read_all(s.broker, s.topics["dlq"], expect=1)
    assert len(dead) == 1
    rec = dead[0]
    headers = dict(rec.headers)
    assert rec.key == lead.encode()
    assert headers["reason"] == b"too_large"
    assert headers["error"] == f"record is {SIZE + len(lead)} bytes; the limit is 65536".encode()
    assert headers["truncated"] == b"true"
    assert headers["original-size"] == str(SIZE).encode()
    assert headers["original-sha256"] == hashlib.sha256(value).hexdigest().encode()
    # A prefix of the original, as long as the worker's producer allows.
    assert len(rec.value) < SIZE and rec.value == value[: len(rec.value)]
    size = DefaultRecordBatchBuilder.estimate_size_in_bytes(rec.key, rec.value, list(rec.headers))
    assert PRODUCER_MAX_REQUEST_SIZE - DEAD_LETTER_HEADROOM - 8 <= size <= PRODUCER_MAX_REQUEST_SIZE - DEAD_LETTER_HEADROOM

    outcomes = read_all(s.broker, s.topics["outcomes"], expect=1)
    assert [(r.key, orjson.loads(r.value)["outcome"], orjson.loads(r.value)["elapsed_seconds"]) for r in outcomes] == [
        (lead.encode(), "met", 1200.0)]

    def counted() -> dict | None:
        mt = w.metrics()
        return mt if metric_sum(mt, "leadsla_sla_outcomes_total", outcome="met") == 1 else None

    mt = wait_for(counted, 30, "the decision counted")
    assert metric_sum(mt, "leadsla_events_rejected_total", reason="too_large") == 1
    assert metric_sum(mt, "leadsla_events_total") == 2
    assert metric_sum(mt, "leadsla_sink_send_errors_total") == 0
    assert w.proc is not None and w.proc.poll() is None, w.tail()
    log = w.logs[-1].read_text(errors="replace")
    assert "MessageSizeTooLargeError" not in log and "Traceback" not in log, w.tail(80)
