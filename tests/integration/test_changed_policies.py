"""A policies file changed between two runs of a real worker, and goals in
business days, end to end: the recovered clocks follow the new goal from
their start (never left overdue and undecided), and the view, the metrics and
``sla-outcomes`` agree."""

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
    goal: {goal}
  - name: {second}
    start: lead.handed_off
    stop: lead.qualified
    goal: 2d
"""


def clock(w, lead: str, policy: str = "first_touch") -> dict:
    view = w.get(f"/api/leads/{lead}")
    return {c["policy"]: c for c in view["clocks"]}[policy]


def test_a_goal_shortened_between_runs_decides_the_clocks_past_it(setup) -> None:
    s = setup(POLICIES.format(goal="3h", second="disposition"))
    create_topics(s.broker, list(s.topics.values()))
    now = datetime.now(UTC).replace(microsecond=0)
    old, fresh = now - timedelta(hours=2), now - timedelta(minutes=10)
    records = [event(event_id="h-old", lead_id="old", type="lead.handed_off", occurred_at=iso(old), team="emea"),
               event(event_id="h-fresh", lead_id="fresh", type="lead.handed_off", occurred_at=iso(fresh), team="emea")]
    publish(s.broker, s.topics["input"], records)

    w1 = s.worker().start()
    wait_for(lambda: metric_sum(w1.metrics(), "leadsla_sla_open_clocks", policy="first_touch") == 2, 60,
             "both clocks open under the 3 h goal")
    assert clock(w1, "old")["deadline"] == iso(old + timedelta(hours=3))
    wait_for(lambda: committed_total(s.broker, s.app_id, s.topics["input"], 4) == 2, 60, "offsets committed")
    assert w1.stop(signal.SIGTERM) == 0

    # The SLA meeting: first_touch becomes 1 h, disposition is dropped for a new policy.
    s.policies.write_text(POLICIES.format(goal="1h", second="qualification"))
    w2 = s.worker().start()

    def decided() -> dict | None:
        c = clock(w2, "old")
        return c if c["state"] == "decided" else None

    c = wait_for(decided, 60, "the clock past the new goal decided")
    assert c["decision"]["outcome"] == "breached"
    assert c["decision"]["deadline"] == iso(old + timedelta(hours=1))
    f = clock(w2, "fresh")
    assert (f["state"], f["goal_seconds"], f["deadline"], f["overdue"]) == (
        "running", 3600.0, iso(fresh + timedelta(hours=1)), False)
    assert f["remaining_seconds"] <= 50 * 60
    m = w2.metrics()
    assert metric_sum(m, "leadsla_sla_open_clocks", policy="first_touch") == 1
    assert metric_sum(m, "leadsla_sla_open_clocks", policy="disposition") == 0
    assert metric_sum(m, "leadsla_sla_outcomes_total", policy="first_touch", outcome="breached") == 1
    (rec,) = [orjson.loads(r.value) for r in read_all(s.broker, s.topics["outcomes"], expect=1)]
    assert (rec["lead_id"], rec["outcome"], rec["deadline"], rec["goal_seconds"]) == (
        "old", "breached", iso(old + timedelta(hours=1)), 3600.0)
    log = w2.logs[-1].read_text()
    assert "policy first_touch changed since the recovered state (goal 3h -> 1h)" in log
    assert "2 running clock(s) moved, 1 already past the new deadline" in log
    assert "policy disposition is no longer in the policies file: 2 running clock(s) closed without a decision" in log


def test_3bd_against_2bd_on_a_monday_to_wednesday_follow_up(setup) -> None:
    s = setup("""
calendars:
  office: {timezone: Europe/Berlin, hours: {mon-fri: "09:00-18:00"}}
policies:
  - {name: three_days, start: lead.handed_off, stop: lead.contact_attempt, goal: 3bd, calendar: office}
  - {name: two_days, start: lead.handed_off, stop: lead.contact_attempt, goal: 2bd, calendar: office}
""")
    create_topics(s.broker, list(s.topics.values()))
    monday = "2026-11-23T10:00:00+01:00"
    publish(s.broker, s.topics["input"], [
        event(event_id="h", lead_id="L", type="lead.handed_off", occurred_at=monday),
        event(event_id="a", lead_id="L", type="lead.contact_attempt", occurred_at="2026-11-25T14:00:00+01:00"),
    ])
    s.worker().start()
    recs = {r["policy"]: r for r in (orjson.loads(x.value) for x in read_all(s.broker, s.topics["outcomes"], expect=2))}
    assert (recs["three_days"]["outcome"], recs["three_days"]["deadline"]) == ("met", "2026-11-26T09:00:00Z")
    assert (recs["two_days"]["outcome"], recs["two_days"]["deadline"]) == ("breached", "2026-11-25T09:00:00Z")
    assert recs["two_days"]["goal_seconds"] == 18 * 3600  # Monday 8 h + Tuesday 9 h + Wednesday 1 h
