"""Kill rounds: leads with known outcomes stream in while two workers of one
group are SIGKILLed at random points and restarted. Every expected clock is
decided exactly once by decision_id (none lost, none decided twice with
different outcomes), the open-clock gauges add up to the expected figure, and
the dedupe memory survives. The seed is in every failure message; set
LEADSLA_KILL_SEED to replay one."""

from __future__ import annotations

import os
import random
import re
import signal
import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from .conftest import FIRST_TOUCH, metric_sum, wait_for
from .kafka import create_topics, event, iso, publish, read_all

POLICIES = FIRST_TOUCH
ROUNDS = 5
LEADS = 600  # decided: handed off two hours ago
OPEN = 60  # handed off now, no follow-up: open at the end
SOON = 40  # no follow-up, due 45 s after the start: breached after the last kill, with nothing new to read
# A late handoff is judged one allowed lateness after it arrives; a kill can
# stall a partition for a rebalance (seconds), so its follow-up gets a margin.
LATENESS = "20s"


def _plan(rng: random.Random, now: datetime) -> tuple[list[list[tuple[bytes, bytes]]], dict[str, str]]:
    """Each lead's events (a history import: handoff and follow-up sent
    together, so the follow-up is within the allowed lateness of its late
    handoff) and the expected outcome of its first_touch clock."""
    past = now - timedelta(hours=2)
    leads: list[list[tuple[bytes, bytes]]] = []
    expected: dict[str, str] = {}
    for i in range(LEADS):
        lead = f"k-{i}"
        events = [event(event_id=f"{lead}-h", lead_id=lead, type="lead.handed_off", occurred_at=iso(past), team="emea")]
        kind = rng.choice(["met", "late", "none"])
        if kind == "met":
            at = past + timedelta(minutes=rng.randint(1, 59))
        elif kind == "late":
            at = past + timedelta(minutes=rng.randint(61, 110))
        if kind != "none":
            events.append(event(event_id=f"{lead}-a", lead_id=lead, type="lead.contact_attempt", occurred_at=iso(at)))
        expected[lead] = "met" if kind == "met" else "breached"
        leads.append(events)
    for i in range(OPEN):
        lead = f"o-{i}"
        leads.append([event(event_id=f"{lead}-h", lead_id=lead, type="lead.handed_off", occurred_at=iso(now), team="apac")])
    rng.shuffle(leads)
    due_soon = now - timedelta(hours=1) + timedelta(seconds=45)
    for i in range(SOON):
        lead = f"s-{i}"
        expected[lead] = "breached"
        leads.append([event(event_id=f"{lead}-h", lead_id=lead, type="lead.handed_off", occurred_at=iso(due_soon))])
    return leads, expected


def test_kill_rounds_lose_nothing_and_decide_nothing_twice(setup) -> None:
    seed = int(os.environ.get("LEADSLA_KILL_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    why = f"(seed {seed}; replay with LEADSLA_KILL_SEED={seed})"
    s = setup(POLICIES)
    create_topics(s.broker, list(s.topics.values()))
    workers = [s.worker(LEADSLA_ALLOWED_LATENESS=LATENESS).start(), s.worker(LEADSLA_ALLOWED_LATENESS=LATENESS).start()]
    leads, expected = _plan(rng, datetime.now(UTC))
    soon, leads = leads[-SOON:], leads[:-SOON]
    chunks = [[e for lead in leads[i::ROUNDS] for e in lead] for i in range(ROUNDS)]
    chunks[-1] += [e for lead in soon for e in lead]
    events = [e for chunk in chunks for e in chunk]
    for rnd in range(ROUNDS):
        publish(s.broker, s.topics["input"], chunks[rnd])
        time.sleep(rng.uniform(0.0, 2.0))  # kill somewhere in the middle of processing
        victim = rng.randrange(2)
        assert workers[victim].stop(signal.SIGKILL) == -signal.SIGKILL, why
        time.sleep(rng.uniform(0.0, 1.5))
        workers[victim].start()
    # The last round's kill came after the last record: whatever was still
    # open then is decided on partitions that get nothing new to read.

    def owned() -> bool:
        return sum(metric_sum(w.metrics(), "leadsla_owned_partitions") for w in workers) == 4

    wait_for(owned, 120, f"the partitions owned again {why}")
    # Decisions re-sent after a kill are duplicates (same decision_id): read
    # until every expected lead has one, or time runs out.
    recs: list = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        recs = read_all(s.broker, s.topics["outcomes"], expect=max(len(expected), len(recs) + 1), timeout=10)
        if {orjson.loads(r.value)["lead_id"] for r in recs} >= set(expected):
            break
    by_id: dict[str, set[str]] = {}
    by_lead: dict[str, set[str]] = {}
    for r in recs:
        v = orjson.loads(r.value)
        by_id.setdefault(v["decision_id"], set()).add(v["outcome"])
        by_lead.setdefault(v["lead_id"], set()).add(v["decision_id"])
    lost = sorted(set(expected) - set(by_lead))
    wrong = [k for k in expected if k in by_lead and len(by_lead[k]) == 1
             and next(iter(by_id[next(iter(by_lead[k]))])) != expected[k]]
    if lost or wrong:
        # Faust can skip offsets across a rebalance; the engine detects it
        # (a gap warning) and reads them itself, but not when the worker is
        # killed or the partition moves on before that read: a known, logged
        # limit (README, Reliability). A loss without a gap that was left
        # unread fails the test.
        lines = [line for w in workers for log in w.logs if log.exists()
                 for line in log.read_text(errors="replace").splitlines()]
        gaps = {m.groups() for line in lines
                if (m := re.search(r"partition (\d+): offsets (\d+)\.\.(\d+) did not reach the engine", line))}
        read = {m.groups() for line in lines
                if (m := re.search(r"partition (\d+): offsets (\d+)\.\.(\d+) read again", line))}
        if gaps - read:
            pytest.xfail(f"offsets skipped across a rebalance and left unread: {sorted(gaps - read)[:3]}; "
                         f"lost {lost[:5]}, wrong {wrong[:5]} {why}")
    assert not lost, f"lost {len(lost)}: {[(k, expected[k]) for k in lost[:12]]} {why}"
    twice = {lead: ids for lead, ids in by_lead.items() if len(ids) != 1}
    detail = [orjson.loads(r.value) for r in recs if orjson.loads(r.value)["lead_id"] in twice][:4]
    assert not twice, f"decided under two ids: {detail} {why}"
    assert all(len(o) == 1 for o in by_id.values()), f"a clock decided twice with different outcomes {why}"
    got = {lead: next(iter(by_id[next(iter(ids))])) for lead, ids in by_lead.items()}
    assert got == expected, f"wrong outcomes for {[k for k in expected if got.get(k) != expected[k]][:10]} {why}"

    def gauges_settled() -> bool:
        ms = [w.metrics() for w in workers]
        return (sum(metric_sum(m, "leadsla_sla_open_clocks", policy="first_touch") for m in ms) == OPEN
                and sum(metric_sum(m, "leadsla_consumer_lag") for m in ms) == 0)

    wait_for(gauges_settled, 60, f"open clocks summing to {OPEN} across the workers {why}")
    # Dedupe memory survived every kill: the whole stream again changes nothing.
    before = [metric_sum(w.metrics(), "leadsla_events_duplicate_total") for w in workers]
    publish(s.broker, s.topics["input"], events[:200])
    wait_for(lambda: sum(metric_sum(w.metrics(), "leadsla_events_duplicate_total") for w in workers) - sum(before) == 200,
             60, f"200 duplicates recognised {why}")
    again = read_all(s.broker, s.topics["outcomes"], expect=len(recs) + 1, timeout=5)
    assert len(again) == len(recs), f"re-sent events decided something {why}"
