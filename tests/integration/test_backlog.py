"""A backlog published before the monitor starts is judged by event time,
exactly: outcomes, open clocks, duplicates, dead letters — several policies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from .conftest import metric_sum, wait_for
from .kafka import create_topics, event, iso, publish, read_all

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
  - name: enterprise_touch
    start: lead.handed_off
    match: {segment: enterprise}
    stop: [lead.contact_attempt, lead.connected]
    goal: 15m
"""



def test_backlog_replay_is_exact(setup) -> None:
    s = setup(POLICIES)
    create_topics(s.broker, list(s.topics.values()))
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    now = datetime.now(UTC).replace(microsecond=0)
    m = timedelta(minutes=1)
    n = 0

    def ev(lead: str, typ: str, at: datetime, eid: str | None = None, **kw: object) -> tuple[bytes, bytes]:
        nonlocal n
        n += 1
        return event(event_id=eid or f"e{n}", lead_id=lead, type=typ, occurred_at=iso(at), **kw)

    dup_handoff = ev("F", "lead.handed_off", t, eid="f-h", team="emea")
    dup_attempt = ev("F", "lead.contact_attempt", t + 10 * m, eid="f-a")
    too_large = orjson.dumps({"event_id": "big", "lead_id": "Z", "type": "lead.mql", "occurred_at": iso(t), "attributes": {"x": "y" * 70_000}})
    bad = [
        (b"Z", b"{not json"),
        (b"Z", b"[1, 2]"),
        (b"Z", b"\xff\xfe\x00"),
        (b"Z", orjson.dumps({"event_id": "i1", "lead_id": "Z", "type": "lead.mql"})),
        (b"Z", orjson.dumps({"event_id": "i2", "lead_id": "Z", "type": "lead.mql", "occurred_at": "2026-11-22 9am"})),
        (b"other", orjson.dumps({"event_id": "i3", "lead_id": "Z", "type": "lead.mql", "occurred_at": iso(t)})),
        (None, orjson.dumps({"event_id": "i4", "lead_id": "Z", "type": "lead.mql", "occurred_at": iso(t)})),
        (b"Z", orjson.dumps({"event_id": "u1", "lead_id": "Z", "type": "lead.teleported", "occurred_at": iso(t)})),
        (b"Z", too_large),
    ]
    records = [
        # A: timely follow-up and disposition
        ev("A", "lead.created", t - 60 * m, segment="smb"),
        ev("A", "lead.handed_off", t, team="na_east", rep="rep-1"),
        ev("A", "lead.contact_attempt", t + 30 * m, channel="call"),
        ev("A", "lead.qualified", t + timedelta(days=1)),
        # B: follow-up 3 h late, never dispositioned
        ev("B", "lead.handed_off", t, team="na_east"),
        ev("B", "lead.contact_attempt", t + 180 * m),
        # C: never touched
        ev("C", "lead.handed_off", t + 5 * m, team="emea"),
        # D: the CRM delivers the follow-up and the disqualification first
        ev("D", "lead.contact_attempt", t + 20 * m),
        ev("D", "lead.disqualified", t + 120 * m),
        ev("D", "lead.handed_off", t, team="na_west"),
        # E: enterprise — in time for first_touch, late for enterprise_touch
        ev("E", "lead.handed_off", t, team="na_west", segment="enterprise"),
        ev("E", "lead.recycled", t + 60 * m),
        ev("E", "lead.contact_attempt", t + 40 * m),
        # F: every event twice
        dup_handoff, dup_handoff, dup_attempt, dup_attempt,
        # G: handed off five minutes ago: both clocks still running
        ev("G", "lead.handed_off", now - 5 * m, team="emea", rep="rep-5"),
        *bad,
    ]
    publish(s.broker, s.topics["input"], records)
    w = s.worker().start()

    expected = {
        ("first_touch", "met"): 4, ("first_touch", "breached"): 2,
        ("disposition", "met"): 3, ("disposition", "breached"): 3,
        ("enterprise_touch", "met"): 0, ("enterprise_touch", "breached"): 1,
    }
    outcomes = read_all(s.broker, s.topics["outcomes"], expect=sum(expected.values()))
    got = [orjson.loads(r.value) for r in outcomes]
    counts: dict[tuple[str, str], int] = {}
    for rec in got:
        counts[(rec["policy"], rec["outcome"])] = counts.get((rec["policy"], rec["outcome"]), 0) + 1
    assert counts == {k: v for k, v in expected.items() if v}
    assert len({r["decision_id"] for r in got}) == len(got)
    by = {(r["lead_id"], r["policy"]): r for r in got}
    a = by[("A", "first_touch")]
    assert a["outcome"] == "met" and a["elapsed_seconds"] == 1800.0
    assert a["started_at"] == iso(t) and a["deadline"] == iso(t + 60 * m)
    assert a["team"] == "na_east" and a["rep"] == "rep-1"
    assert by[("B", "first_touch")]["outcome"] == "breached" and by[("B", "first_touch")]["elapsed_seconds"] is None
    assert by[("D", "first_touch")]["elapsed_seconds"] == 1200.0
    assert by[("D", "disposition")]["outcome"] == "met"
    assert by[("E", "enterprise_touch")]["outcome"] == "breached"
    assert by[("E", "first_touch")]["elapsed_seconds"] == 2400.0
    assert all(k not in by for k in [("G", "first_touch"), ("G", "disposition")])
    assert {r.key for r in outcomes} == {r["lead_id"].encode() for r in got}

    def settled() -> dict | None:
        mt = w.metrics()
        return mt if metric_sum(mt, "leadsla_sla_outcomes_total") == 13 else None

    mt = wait_for(settled, 30, "13 decisions counted")
    for (policy, outcome), value in expected.items():
        assert metric_sum(mt, "leadsla_sla_outcomes_total", policy=policy, outcome=outcome) == value, (policy, outcome)
    assert metric_sum(mt, "leadsla_sla_open_clocks", policy="first_touch") == 1
    assert metric_sum(mt, "leadsla_sla_open_clocks", policy="disposition") == 1
    assert metric_sum(mt, "leadsla_sla_open_clocks", policy="enterprise_touch") == 0
    assert metric_sum(mt, "leadsla_sla_open_clocks", policy="first_touch", team="emea") == 1
    assert metric_sum(mt, "leadsla_events_duplicate_total") == 2
    assert metric_sum(mt, "leadsla_events_total") == 16
    assert metric_sum(mt, "leadsla_events_total", type="lead.handed_off") == 7
    assert metric_sum(mt, "leadsla_sla_corrections_total") == 0
    for reason, count in {"malformed": 3, "invalid": 4, "unknown_type": 1, "too_large": 1}.items():
        assert metric_sum(mt, "leadsla_events_rejected_total", reason=reason) == count, reason
    # first_touch stopped clocks: A, D, E, F met, and B stopped after its breach
    assert metric_sum(mt, "leadsla_sla_elapsed_seconds_count", policy="first_touch") == 5
    assert metric_sum(mt, "leadsla_sla_elapsed_seconds_sum", policy="first_touch") == 1800 + 1200 + 2400 + 600 + 10800

    dead = read_all(s.broker, s.topics["dlq"], expect=len(bad))
    assert len(dead) == len(bad)
    got_dead = sorted((r.key or b"", r.value, dict(r.headers)["reason"].decode()) for r in dead)
    want_dead = sorted(
        (k or b"", v, reason)
        for (k, v), reason in zip(bad, ["malformed"] * 3 + ["invalid"] * 4 + ["unknown_type", "too_large"], strict=True)
    )
    assert got_dead == want_dead
    assert all(dict(r.headers)["error"] for r in dead)

    view = w.lead("G")
    assert view is not None and view["clocks"]["first_touch"]["status"] == "running"
    queue = w.get("/reps/rep-5/queue")["open_clocks"]
    assert [(q["lead_id"], q["policy"], q["deadline"]) for q in queue] == [
        ("G", "first_touch", iso(now + 55 * m)),
        ("G", "disposition", iso(now - 5 * m + timedelta(days=2))),
    ]
