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


def test_a_backlog_replay_on_two_workers_closes_past_periods_once(setup) -> None:
    """The levels' shares come from partitions owned by both workers and each
    level is judged on one of them: one record per level and period all the
    same, strikes carried from one period to the next, points summed across
    the workers, and the group started again judges nothing again."""
    s = setup(POLICIES)
    create_topics(s.broker, list(s.topics.values()))
    before, last = _months(datetime.now(UTC))
    publish(s.broker, s.topics["input"], _history(before, last))
    pair = s.worker("--workers", "2").start()
    ports = (pair.web_port, pair.web_port + 1)

    # emea ×2, apac ×2, latam ×1, mqls ×2 (read_all looks a little longer for an eighth)
    recs = [orjson.loads(r.value) for r in read_all(s.broker, s.topics["periods"], expect=7, timeout=90)]
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

    def both() -> list[Any] | None:
        try:
            return [pair.metrics(p) for p in ports]
        except (urllib.error.URLError, OSError):
            return None

    def shown() -> list[Any] | None:
        ms = both()
        if ms is None or sum(metric_sum(m, "leadsla_team_points", team="apac") for m in ms) != 6:
            return None
        return ms

    ms = wait_for(shown, 30, "the period metrics on both workers")
    total = lambda *a, **kw: sum(metric_sum(m, *a, **kw) for m in ms)  # noqa: E731
    # Each level is kept by one worker: shown once, not twice.
    assert total("leadsla_period_strikes", kind="policy", name="first_touch", team="emea") == 2
    assert total("leadsla_period_under_review", kind="policy", name="first_touch", team="emea") == 1
    assert total("leadsla_period_under_review", kind="policy", name="first_touch", team="apac") == 0
    assert total("leadsla_period_strikes", kind="target", name="mqls") == 1
    assert total("leadsla_team_points", team="marketing") == 1
    assert total("leadsla_team_points", team="emea") == 0

    # Stopped, and the group started again as one worker: it recovers the
    # whole ledger and judges nothing again.
    assert pair.stop(signal.SIGTERM) == 0
    one = s.worker().start()

    def alone() -> Any:
        m = one.metrics()
        return m if metric_sum(m, "leadsla_team_points", team="apac") == 6 else None

    m = wait_for(alone, 90, "the period metrics after a restart")
    assert metric_sum(m, "leadsla_period_strikes", kind="policy", name="first_touch", team="emea") == 2
    again = read_all(s.broker, s.topics["periods"], expect=len(recs), timeout=10)
    assert len(again) == len(recs)
