"""Both sides of the agreement through a real worker: a delivery target
(counts, value, goal line, a restart) and a follow-up depth policy (met by
attempts, met by reaching the lead, given up too early, breached by the
timer)."""

from __future__ import annotations

import calendar
import signal
from datetime import UTC, datetime, timedelta

import orjson

from .conftest import metric_sum, wait_for
from .kafka import create_topics, event, iso, publish, read_all

POLICIES = """
policies:
  - name: follow_up_depth
    start: lead.handed_off
    attempt: lead.contact_attempt
    min_attempts: 3
    stop: lead.connected
    give_up: [lead.disqualified, lead.recycled]
    goal: 15s
targets:
  - name: mql_volume
    deliver: lead.mql
    goal: 90
    value:
      by: persona
      weights: {executive: 100, director: 50, manager: 40}
      default: 10
    value_goal: 3000
"""


def test_targets_and_depth_through_a_real_worker(setup) -> None:
    s = setup(POLICIES)
    create_topics(s.broker, list(s.topics.values()))
    w = s.worker().start()
    now = datetime.now(UTC).replace(microsecond=0)
    first_of_month = now.replace(day=1, hour=0, minute=0, second=0)
    mql_at = max(now - timedelta(minutes=5), first_of_month)
    mqls = [
        event(event_id="m1", lead_id="a", type="lead.mql", occurred_at=iso(mql_at), persona="executive"),
        event(event_id="m2", lead_id="b", type="lead.mql", occurred_at=iso(mql_at), persona="director"),
        event(event_id="m3", lead_id="c", type="lead.mql", occurred_at=iso(mql_at), persona="intern"),
        event(event_id="m3", lead_id="c", type="lead.mql", occurred_at=iso(mql_at), persona="intern"),  # duplicate
        event(event_id="m4", lead_id="a", type="lead.mql", occurred_at=iso(mql_at + timedelta(seconds=1))),  # again
        event(event_id="m5", lead_id="d", type="lead.mql", occurred_at=iso(first_of_month - timedelta(days=3))),
    ]
    t = now
    depth = [
        event(event_id="x-h", lead_id="by-attempts", type="lead.handed_off", occurred_at=iso(t)),
        *[event(event_id=f"x-a{i}", lead_id="by-attempts", type="lead.contact_attempt",
                occurred_at=iso(t + timedelta(seconds=i + 1))) for i in range(3)],
        event(event_id="y-h", lead_id="reached", type="lead.handed_off", occurred_at=iso(t)),
        event(event_id="y-a", lead_id="reached", type="lead.contact_attempt", occurred_at=iso(t + timedelta(seconds=1))),
        event(event_id="y-c", lead_id="reached", type="lead.connected", occurred_at=iso(t + timedelta(seconds=2))),
        event(event_id="z-h", lead_id="dropped", type="lead.handed_off", occurred_at=iso(t)),
        event(event_id="z-a", lead_id="dropped", type="lead.contact_attempt", occurred_at=iso(t + timedelta(seconds=1))),
        event(event_id="z-d", lead_id="dropped", type="lead.disqualified", occurred_at=iso(t + timedelta(seconds=2))),
        event(event_id="q-h", lead_id="timed-out", type="lead.handed_off", occurred_at=iso(t)),
        event(event_id="q-a", lead_id="timed-out", type="lead.contact_attempt", occurred_at=iso(t + timedelta(seconds=1))),
    ]
    publish(s.broker, s.topics["input"], mqls + depth)

    recs = read_all(s.broker, s.topics["outcomes"], expect=4, timeout=60)
    got = {v["lead_id"]: (v["outcome"], v.get("attempts")) for v in (orjson.loads(r.value) for r in recs)}
    assert got == {
        "by-attempts": ("met", 3),
        "reached": ("met", None),
        "dropped": ("breached", 1),
        "timed-out": ("breached", 1),
    }

    days = calendar.monthrange(now.year, now.month)[1]
    line = 90 * now.day / days

    def figures(m: dict) -> tuple[float, ...]:
        return (metric_sum(m, "leadsla_target_delivered", target="mql_volume"),
                metric_sum(m, "leadsla_target_value_delivered", target="mql_volume"),
                metric_sum(m, "leadsla_target_goal", target="mql_volume"),
                metric_sum(m, "leadsla_target_value_goal", target="mql_volume"),
                round(metric_sum(m, "leadsla_target_goal_line", target="mql_volume"), 9))

    expected = (3.0, 160.0, 90.0, 3000.0, round(line, 9))
    wait_for(lambda: figures(w.metrics()) == expected, 30, f"the target's figures {expected}")
    m = w.metrics()
    assert metric_sum(m, "leadsla_target_delivered_cumulative", target="mql_volume", day=str(now.day)) == 3
    assert metric_sum(m, "leadsla_followup_depth_attempts_count", policy="follow_up_depth") == 3
    assert metric_sum(m, "leadsla_followup_depth_attempts_sum", policy="follow_up_depth") == 5

    # A restart: the delivery cells recover from their changelog exactly.
    assert w.stop(signal.SIGTERM) == 0
    w2 = s.worker().start()
    wait_for(lambda: figures(w2.metrics()) == expected, 60, f"the target's figures {expected} after a restart")
