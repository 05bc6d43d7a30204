"""Live traffic: a breach found by the timer alone, a timely stop, a
correction for a stop that arrives after its breach was decided."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import orjson

from leadsla.streams.broker import partition_count

from .conftest import metric_sum, wait_for
from .kafka import create_topics, event, iso, publish, read_all

POLICIES = """
policies:
  - name: quick
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected]
    goal: 3s
"""



def test_timer_breach_met_and_correction(setup) -> None:
    s = setup(POLICIES)
    create_topics(s.broker, list(s.topics.values()))
    w = s.worker().start()
    now = datetime.now(UTC)
    publish(s.broker, s.topics["input"], [
        event(event_id="h1", lead_id="silent", type="lead.handed_off", occurred_at=iso(now), team="emea"),
        event(event_id="h2", lead_id="quick", type="lead.handed_off", occurred_at=iso(now), team="emea"),
        event(event_id="a2", lead_id="quick", type="lead.contact_attempt", occurred_at=iso(now + timedelta(seconds=1))),
    ])
    # No further event for "silent": only the timer can decide it, once the
    # wall clock passes deadline (3 s) + allowed lateness (2 s).
    recs = read_all(s.broker, s.topics["outcomes"], expect=2, timeout=60)
    got = {orjson.loads(r.value)["lead_id"]: orjson.loads(r.value) for r in recs}
    assert set(got) == {"silent", "quick"}
    assert got["silent"]["outcome"] == "breached"
    assert got["silent"]["deadline"] == iso(now + timedelta(seconds=3))
    decided = datetime.fromisoformat(got["silent"]["decided_at"].replace("Z", "+00:00"))
    assert decided > now + timedelta(seconds=5)  # never before deadline + lateness
    assert got["quick"]["outcome"] == "met" and got["quick"]["elapsed_seconds"] == 1.0
    assert got["silent"]["team"] == "emea"

    # The follow-up of "silent" shows up now, dated before its deadline.
    publish(s.broker, s.topics["input"], [
        event(event_id="a1", lead_id="silent", type="lead.contact_attempt", occurred_at=iso(now + timedelta(seconds=2))),
    ])
    recs = read_all(s.broker, s.topics["outcomes"], expect=3, timeout=30)
    values = [orjson.loads(r.value) for r in recs]
    corrected = [v for v in values if v["outcome"] == "corrected"]
    assert len(values) == 3 and len(corrected) == 1
    assert corrected[0]["lead_id"] == "silent" and corrected[0]["elapsed_seconds"] == 2.0
    assert corrected[0]["decision_id"] != got["silent"]["decision_id"]

    mt = wait_for(lambda: (m := w.metrics()) and metric_sum(m, "leadsla_sla_corrections_total") == 1 and m, 20, "correction counted")
    assert metric_sum(mt, "leadsla_sla_outcomes_total", policy="quick", outcome="breached") == 1
    assert metric_sum(mt, "leadsla_sla_outcomes_total", policy="quick", outcome="met") == 1
    assert metric_sum(mt, "leadsla_sla_open_clocks", policy="quick") == 0
    assert metric_sum(mt, "leadsla_events_late_total") == 1
    assert metric_sum(mt, "leadsla_partition_caught_up") == 4
    assert time.time() - metric_sum(mt, "leadsla_last_event_timestamp_seconds") < 60


def test_an_existing_topic_keeps_its_partition_count(setup) -> None:
    """A CRM's lead-events already exists with 3 partitions while leadsla is
    set to create 4: the worker sizes its tables to the topic (a table must be
    co-partitioned with its input, or with several workers a partition's
    state would recover on another worker than its events) and works."""
    s = setup(POLICIES)
    create_topics(s.broker, list(s.topics.values()), partitions=3)
    w = s.worker().start()
    past = datetime.now(UTC) - timedelta(hours=1)
    publish(s.broker, s.topics["input"], [
        event(event_id=f"h{i}", lead_id=f"lead-{i}", type="lead.handed_off", occurred_at=iso(past)) for i in range(6)
    ] + [
        event(event_id=f"a{i}", lead_id=f"lead-{i}", type="lead.contact_attempt", occurred_at=iso(past + timedelta(seconds=1)))
        for i in range(3)
    ])
    recs = read_all(s.broker, s.topics["outcomes"], expect=6)
    outcomes = sorted(orjson.loads(r.value)["outcome"] for r in recs)
    assert outcomes == ["breached"] * 3 + ["met"] * 3
    mt = w.metrics()
    assert metric_sum(mt, "leadsla_owned_partitions") == 3
    assert sorted(int(dict(k[1])["partition"]) for k in mt if k[0] == "leadsla_partition_caught_up") == [0, 1, 2]
    for table in ("leads", "team-windows"):
        assert asyncio.run(partition_count(s.broker, f"{s.app_id}-{table}-changelog")) == 3
