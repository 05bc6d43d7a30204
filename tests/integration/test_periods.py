"""Periods and accountability through a real worker (contract §9): a backlog
replay of the two months before this one closes both, by event time, once
every partition has read past their ends; one ``sla-periods`` record per
level and period, strikes carried from one to the next, review, points and
the minimum volume rule; a restart judges nothing again."""

from __future__ import annotations

import signal
import urllib.error
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from .conftest import metric_sum, wait_for
from .kafka import create_topics, event, iso, publish, read_all

POLICIES = """
policies:
  - name: first_touch
    start: lead.handed_off
    stop: lead.contact_attempt
    goal: 1h
    objective: 0.5
    min_decisions: 2
    review_after: 2
    points: 3
targets:
  - name: mqls
    deliver: lead.mql
    goal: 2
"""


def _months(now: datetime) -> tuple[datetime, datetime]:
    """The first instants of the month before last and of last month (UTC)."""
    this = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = (this - timedelta(days=1)).replace(day=1)
    before = (last - timedelta(days=1)).replace(day=1)
    return before, last


def _lead(lead: str, at: datetime, team: str, met: bool) -> list[tuple[bytes, bytes]]:
    out = [event(event_id=f"{lead}-h", lead_id=lead, type="lead.handed_off", occurred_at=iso(at), team=team)]
    if met:
        out.append(event(event_id=f"{lead}-c", lead_id=lead, type="lead.contact_attempt",
                         occurred_at=iso(at + timedelta(minutes=10))))
    return out


def _history(before: datetime, last: datetime) -> list[tuple[bytes, bytes]]:
    history: list[tuple[bytes, bytes]] = []
    # emea: both months missed (0 of 3 met, then 1 of 3): two strikes, under review.
    for i in range(3):
        history += _lead(f"e1-{i}", before + timedelta(days=3, hours=i), "emea", met=False)
        history += _lead(f"e2-{i}", last + timedelta(days=3, hours=i), "emea", met=i == 0)
    # apac: met both months (3 of 3, then 2 of 3): points twice, no strike.
    for i in range(3):
        history += _lead(f"a1-{i}", before + timedelta(days=4, hours=i), "apac", met=True)
        history += _lead(f"a2-{i}", last + timedelta(days=4, hours=i), "apac", met=i < 2)
    # latam: one lead in the earlier month, below min_decisions: not judged.
    history += _lead("l1-0", before + timedelta(days=5), "latam", met=False)
    # Marketing: 2 leads the earlier month (met), 1 last month (missed).
    history += [
        event(event_id="m1", lead_id="m1", type="lead.mql", occurred_at=iso(before + timedelta(days=1))),
        event(event_id="m2", lead_id="m2", type="lead.mql", occurred_at=iso(before + timedelta(days=2))),
        event(event_id="m3", lead_id="m3", type="lead.mql", occurred_at=iso(last + timedelta(days=2))),
    ]
    return history


def test_a_backlog_replay_closes_past_periods_with_records_and_strikes(setup) -> None:
    s = setup(POLICIES)
    create_topics(s.broker, list(s.topics.values()))
    before, last = _months(datetime.now(UTC))
    publish(s.broker, s.topics["input"], _history(before, last))
    w = s.worker().start()

    expected = 8  # emea ×2, apac ×2, latam ×1, mqls ×2 … and one more would be a failure
    recs = [orjson.loads(r.value) for r in read_all(s.broker, s.topics["periods"], expect=expected - 1, timeout=90)]
    keys = [r.key.decode() for r in read_all(s.broker, s.topics["periods"], expect=len(recs), timeout=5)]
    got: dict[tuple[str, str | None, str], dict[str, Any]] = {(x["name"], x["team"], x["period"]): x for x in recs}
    p1, p2 = f"{before:%Y-%m}", f"{last:%Y-%m}"
    assert sorted(got, key=str) == sorted([
        ("first_touch", "emea", p1), ("first_touch", "emea", p2),
        ("first_touch", "apac", p1), ("first_touch", "apac", p2),
        ("first_touch", "latam", p1),
        ("mqls", None, p1), ("mqls", None, p2),
    ], key=str)
    assert len(recs) == 7
    assert sorted(set(keys)) == ["first_touch", "mqls"]  # keyed by the policy or target name

    e1, e2 = got[("first_touch", "emea", p1)], got[("first_touch", "emea", p2)]
    assert (e1["kind"], e1["met"], e1["achieved"], e1["objective"], e1["strikes"]) == ("policy", False, 0.0, 0.5, 1)
    assert (e2["met"], e2["achieved"], e2["strikes"], e2["under_review"]) == (False, 1 / 3, 2, True)
    a1, a2 = got[("first_touch", "apac", p1)], got[("first_touch", "apac", p2)]
    assert (a1["met"], a1["strikes"], a1["points"], a2["met"], a2["points_total"]) == (True, 0, 3, True, 6)
    latam = got[("first_touch", "latam", p1)]
    assert (latam["met"], latam["judged"], latam["strikes"], latam["points"]) == (True, False, 0, 0)
    m1, m2 = got[("mqls", None, p1)], got[("mqls", None, p2)]
    assert (m1["kind"], m1["achieved"], m1["goal"], m1["met"], m2["achieved"], m2["met"], m2["strikes"]) == \
        ("target", 2, 2, True, 1, False, 1)
    assert len({x["decision_id"] for x in recs}) == 7

    def strikes_shown() -> Any:
        mt = w.metrics()
        return mt if metric_sum(mt, "leadsla_period_strikes", name="first_touch", team="emea") == 2 else None

    mt = wait_for(strikes_shown, 30, "the period metrics")
    assert metric_sum(mt, "leadsla_period_under_review", kind="policy", name="first_touch", team="emea") == 1
    assert metric_sum(mt, "leadsla_period_under_review", kind="policy", name="first_touch", team="apac") == 0
    assert metric_sum(mt, "leadsla_period_strikes", kind="target", name="mqls") == 1
    assert metric_sum(mt, "leadsla_team_points", team="apac") == 6
    assert metric_sum(mt, "leadsla_team_points", team="marketing") == 1
    assert metric_sum(mt, "leadsla_team_points", team="emea") == 0

    # A restart recovers the ledger and judges nothing again.
    assert w.stop(signal.SIGTERM) == 0
    w.start()
    wait_for(strikes_shown, 60, "the period metrics after a restart")
    again = read_all(s.broker, s.topics["periods"], expect=len(recs) + 1, timeout=10)
    assert len(again) == len(recs)


def test_two_workers_judge_each_period_once_from_all_partitions(setup) -> None:
    """The levels' shares come from partitions owned by both workers, and
    each level is judged on one of them: still one record per level and
    period, with the same verdicts as one worker gives."""
    s = setup(POLICIES)
    create_topics(s.broker, list(s.topics.values()))
    pair = s.worker("--workers", "2").start()
    ports = (pair.web_port, pair.web_port + 1)

    def split() -> bool:
        try:
            owned = [metric_sum(pair.metrics(p), "leadsla_owned_partitions") for p in ports]
        except (urllib.error.URLError, OSError):
            return False
        return min(owned) > 0 and sum(owned) == 4

    wait_for(split, 90, "the partitions split between the two workers")
    before, last = _months(datetime.now(UTC))
    publish(s.broker, s.topics["input"], _history(before, last))
    recs = [orjson.loads(r.value) for r in read_all(s.broker, s.topics["periods"], expect=8, timeout=90)]
    verdicts = sorted((x["name"], x["team"] or "", x["period"], x["met"], x["strikes"]) for x in recs)
    p1, p2 = f"{before:%Y-%m}", f"{last:%Y-%m}"
    assert verdicts == sorted([
        ("first_touch", "apac", p1, True, 0), ("first_touch", "apac", p2, True, 0),
        ("first_touch", "emea", p1, False, 1), ("first_touch", "emea", p2, False, 2),
        ("first_touch", "latam", p1, True, 0),
        ("mqls", "", p1, True, 0), ("mqls", "", p2, False, 1),
    ])

    def points() -> float:
        return sum(metric_sum(pair.metrics(p), "leadsla_team_points", team="apac") for p in ports)

    wait_for(lambda: points() == 6, 30, "the leaderboard summed over both workers")
    reviews = [metric_sum(pair.metrics(p), "leadsla_period_under_review", name="first_touch", team="emea")
               for p in ports]
    assert sorted(reviews) == [0, 1]  # one worker keeps the level
