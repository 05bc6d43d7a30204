"""Late arrivals through a real worker on the embedded broker: a pause that
arrives after the resume that follows it in event time, and a history import
of a handoff with its follow-up (the README's late-arrival rules)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import orjson

from .conftest import metric_sum, wait_for
from .kafka import create_topics, event, iso, publish, read_all

POLICIES = """
policies:
  - name: disposition
    start: lead.handed_off
    stop: lead.qualified
    pause: lead.recycled
    resume: lead.connected
    goal: 6s
  - name: first_touch
    start: lead.handed_off
    stop: lead.contact_attempt
    goal: 1h
"""


def test_a_late_pause_and_a_history_import_are_judged_in_event_time(setup) -> None:
    s = setup(POLICIES)
    create_topics(s.broker, list(s.topics.values()))
    w = s.worker().start()
    # Live first: a record on the leads' partitions, so they are caught up
    # (judging by the wall clock) before the late events come.
    publish(s.broker, s.topics["input"], [
        event(event_id=f"{lead}-new", lead_id=lead, type="lead.created", occurred_at=iso(datetime.now(UTC)))
        for lead in ("paused", "imported")
    ])
    wait_for(lambda: w.lead("paused") and w.lead("imported"), 30, "the first records handled")
    time.sleep(2)  # a few timer passes: the partitions see they reached their high watermark
    t = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    two_days_ago = t - timedelta(days=2)
    publish(s.broker, s.topics["input"], [
        event(event_id="p-h", lead_id="paused", type="lead.handed_off", occurred_at=iso(t)),
        event(event_id="p-r", lead_id="paused", type="lead.connected", occurred_at=iso(t + timedelta(seconds=3))),
        # a history import: both dated two days ago, published together
        event(event_id="i-h", lead_id="imported", type="lead.handed_off", occurred_at=iso(two_days_ago), team="emea"),
        event(event_id="i-a", lead_id="imported", type="lead.contact_attempt",
              occurred_at=iso(two_days_ago + timedelta(minutes=20))),
    ])
    # The resume is applied once the watermark (wall clock - 2 s) passes it;
    # then the pause dated in between arrives, later than the allowed lateness.
    wait_for(lambda: time.time() > (t + timedelta(seconds=6)).timestamp(), 30, "the resume behind the watermark")
    publish(s.broker, s.topics["input"], [
        event(event_id="p-p", lead_id="paused", type="lead.recycled", occurred_at=iso(t + timedelta(seconds=1))),
    ])
    recs = read_all(s.broker, s.topics["outcomes"], expect=3, timeout=60)
    got = sorted((orjson.loads(r.value) for r in recs), key=lambda v: (v["lead_id"], v["policy"]))
    summary = [(v["lead_id"], v["policy"], v["outcome"]) for v in got]
    # In event time: 1 s used, paused 1 s..3 s, 5 s left from the resume.
    assert summary == [
        ("imported", "disposition", "breached"),  # 6 s goal: due long before the import, decided after one lateness
        ("imported", "first_touch", "met"),       # its follow-up came with it: met, no breach and no correction
        ("paused", "disposition", "breached"),
    ]
    assert got[1]["elapsed_seconds"] == 1200.0 and got[1]["team"] == "emea"
    assert got[2]["deadline"] == iso(t + timedelta(seconds=8))
    assert got[2]["stopped_at"] is None
    # judged no earlier than one allowed lateness after the import arrived
    decided = datetime.fromisoformat(got[0]["decided_at"].replace("Z", "+00:00"))
    assert decided >= datetime.fromisoformat(got[0]["watermark"].replace("Z", "+00:00"))
    # only the paused lead's first touch (1 h) is still open
    mt = wait_for(lambda: (m := w.metrics()) and metric_sum(m, "leadsla_sla_open_clocks", policy="disposition") == 0
                  and m, 20, "no disposition clock left open")
    assert metric_sum(mt, "leadsla_sla_open_clocks", policy="first_touch") == 1
    assert metric_sum(mt, "leadsla_events_late_total") == 3
    assert metric_sum(mt, "leadsla_sla_corrections_total") == 0
    view = w.lead("paused")
    assert view is not None and view["clocks"]["disposition"]["last_outcome"] == "breached"
