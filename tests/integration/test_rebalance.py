"""Restarts and rebalances keep the first promise: a deadline with no further
event is breached within seconds, on partitions that get no new record after
a restart, and when a second worker joins and takes partitions over."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

import orjson

from .conftest import Worker, metric_sum, wait_for
from .kafka import committed_total, create_topics, event, iso, publish, read_all

GOAL_S = 12
POLICIES = f"""
policies:
  - name: quick
    start: lead.handed_off
    stop: lead.contact_attempt
    goal: {GOAL_S}s
"""


def _handoffs(n: int, at: datetime) -> list[tuple[bytes, bytes]]:
    return [event(event_id=f"h{i}", lead_id=f"lead-{i}", type="lead.handed_off", occurred_at=iso(at)) for i in range(n)]


def _decided(s, n: int, timeout: float) -> list[dict]:
    recs = read_all(s.broker, s.topics["outcomes"], expect=n, timeout=timeout)
    return [orjson.loads(r.value) for r in recs]


def _twenty_open(s) -> tuple[Worker, datetime]:
    """A worker holding 20 fresh handoffs, and when they were handed off."""
    create_topics(s.broker, list(s.topics.values()))
    w = s.worker().start()
    start = datetime.now(UTC)
    publish(s.broker, s.topics["input"], _handoffs(20, start))
    wait_for(lambda: metric_sum(w.metrics(), "leadsla_sla_open_clocks") == 20, 30, "20 clocks open")
    return w, start


def test_restart_on_quiet_partitions_still_breaches_overdue_clocks(setup) -> None:
    s = setup(POLICIES)
    w1, start = _twenty_open(s)
    wait_for(lambda: committed_total(s.broker, s.app_id, s.topics["input"], 4) == 20, 30, "offsets committed")
    assert w1.stop(signal.SIGTERM) == 0
    w2 = s.worker().start()  # nothing else is ever published
    m = wait_for(lambda: (m := w2.metrics()) and metric_sum(m, "leadsla_partition_caught_up") == 4 and m, 20,
                 "every partition caught up without a new record")
    assert metric_sum(m, "leadsla_consumer_lag") == 0
    values = _decided(s, 20, timeout=GOAL_S + 30)
    assert sorted(v["outcome"] for v in values) == ["breached"] * 20
    assert len({v["decision_id"] for v in values}) == 20
    due = start + timedelta(seconds=GOAL_S + 2)  # deadline + allowed lateness
    latest = max(datetime.fromisoformat(v["decided_at"].replace("Z", "+00:00")) for v in values)
    assert latest < due + timedelta(seconds=10)  # contract §4: a few seconds after deadline + lateness
    m = w2.metrics()
    assert metric_sum(m, "leadsla_sla_open_clocks") == 0
    assert metric_sum(m, "leadsla_sla_outcomes_total", outcome="breached") == 20


def test_a_joining_worker_breaches_the_clocks_of_the_partitions_it_takes_over(setup) -> None:
    s = setup(POLICIES)
    w1, _ = _twenty_open(s)
    w2 = s.worker().start()  # joins the group: the partitions are split, nothing else published

    def split() -> bool:
        return (metric_sum(w1.metrics(), "leadsla_owned_partitions") > 0
                and metric_sum(w2.metrics(), "leadsla_owned_partitions") > 0
                and metric_sum(w1.metrics(), "leadsla_owned_partitions")
                + metric_sum(w2.metrics(), "leadsla_owned_partitions") == 4)

    wait_for(split, 60, "the partitions split between the workers")
    values = _decided(s, 20, timeout=GOAL_S + 40)
    by_id = {v["decision_id"]: v for v in values}
    assert len(by_id) == 20 and sorted(v["outcome"] for v in by_id.values()) == ["breached"] * 20
    m1, m2 = w1.metrics(), w2.metrics()
    for m in (m1, m2):
        assert metric_sum(m, "leadsla_partition_caught_up") == metric_sum(m, "leadsla_owned_partitions")
        assert metric_sum(m, "leadsla_sla_open_clocks") == 0
    assert metric_sum(m1, "leadsla_sla_outcomes_total", outcome="breached") + metric_sum(
        m2, "leadsla_sla_outcomes_total", outcome="breached") >= 20
