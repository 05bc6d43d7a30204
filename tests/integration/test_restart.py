"""A worker killed mid-stream and started again loses no clock: state comes
back from the changelog, dedupe memory included."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

import orjson

from .conftest import metric_sum, wait_for
from .kafka import committed_total, create_topics, event, iso, publish, read_all

POLICIES = """
policies:
  - name: first_touch
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected]
    goal: 1h
  - name: disposition
    start: lead.handed_off
    stop: [lead.qualified, lead.disqualified, lead.recycled]
    goal: 2d
"""



def test_kill_and_restart_loses_no_clock(setup) -> None:
    s = setup(POLICIES)
    create_topics(s.broker, list(s.topics.values()))
    now = datetime.now(UTC).replace(microsecond=0)
    fresh = [f"fresh-{i}" for i in range(40)]  # handed off 10 min ago: running
    stale = [f"stale-{i}" for i in range(10)]  # handed off 3 h ago: first_touch breached
    phase1 = [event(event_id=f"h-{lead}", lead_id=lead, type="lead.handed_off", occurred_at=iso(now - timedelta(minutes=10)), team="na_east") for lead in fresh]
    phase1 += [event(event_id=f"h-{lead}", lead_id=lead, type="lead.handed_off", occurred_at=iso(now - timedelta(hours=3)), team="emea") for lead in stale]
    publish(s.broker, s.topics["input"], phase1)

    w1 = s.worker().start()

    def phase1_done() -> dict | None:
        m = w1.metrics()
        ok = (metric_sum(m, "leadsla_sla_open_clocks", policy="first_touch") == 40
              and metric_sum(m, "leadsla_sla_outcomes_total", policy="first_touch", outcome="breached") == 10
              and metric_sum(m, "leadsla_consumer_lag") == 0)
        return m if ok else None

    wait_for(phase1_done, 60, "phase 1 processed")
    # phase 1 offsets are committed (the group's commit interval is 2.8 s)
    wait_for(lambda: committed_total(s.broker, s.app_id, s.topics["input"], 4) == len(phase1), 60,
             "phase 1 offsets committed")
    assert w1.stop(signal.SIGKILL) == -signal.SIGKILL

    # While the monitor is down: follow-ups for half the fresh leads (in
    # time), and one handoff delivered a second time.
    phase2 = [event(event_id=f"a-{lead}", lead_id=lead, type="lead.contact_attempt", occurred_at=iso(now - timedelta(minutes=5))) for lead in fresh[:20]]
    phase2.append(phase1[0])
    publish(s.broker, s.topics["input"], phase2)

    w2 = s.worker().start()

    def phase2_done() -> dict | None:
        m = w2.metrics()
        return m if metric_sum(m, "leadsla_sla_outcomes_total", policy="first_touch", outcome="met") == 20 else None

    # A killed member holds its partitions until its session times out and the
    # group rebalances: on the embedded broker that can take a while.
    m = wait_for(phase2_done, 240, "phase 2 decided after restart")
    assert metric_sum(m, "leadsla_sla_open_clocks", policy="first_touch") == 20
    assert metric_sum(m, "leadsla_sla_open_clocks", policy="disposition") == 50
    assert metric_sum(m, "leadsla_sla_outcomes_total", policy="first_touch", outcome="breached") == 0  # decided before the kill
    assert metric_sum(m, "leadsla_events_duplicate_total") == 1
    assert metric_sum(m, "leadsla_events_total") == 20

    recs = read_all(s.broker, s.topics["outcomes"], expect=30)
    values = [orjson.loads(r.value) for r in recs]
    unique = {v["decision_id"]: v for v in values}
    assert sorted((v["policy"], v["outcome"]) for v in unique.values()) == sorted(
        [("first_touch", "breached")] * 10 + [("first_touch", "met")] * 20
    )
    assert {v["lead_id"] for v in unique.values() if v["outcome"] == "met"} == set(fresh[:20])

    view = w2.lead(fresh[30])
    assert view is not None and view["clocks"]["first_touch"]["status"] == "running"
    assert view["clocks"]["first_touch"]["deadline"] == iso(now + timedelta(minutes=50)).replace("Z", "Z")
