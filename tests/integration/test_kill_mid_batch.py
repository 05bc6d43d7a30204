"""A worker SIGKILLed in the middle of a large backlog: records reach the
engine a fetch at a time, their lead states wait in the record cache for the
next commit, and their offsets are acked per batch. Killed anywhere in
there, a restarted worker loses no clock and decides none twice: every
expected lead has exactly one decision_id, with the right outcome, and the
open clocks add up."""

from __future__ import annotations

import random
import signal
import time
from datetime import UTC, datetime, timedelta

import orjson

from .conftest import FIRST_TOUCH, metric_sum, wait_for
from .kafka import committed_total, create_topics, event, iso, publish_batched, read_all

LEADS = 20000  # handed off two hours ago: decided (met, or breached late or without a follow-up)
OPEN = 50  # handed off now, no follow-up: open at the end


def _backlog(rng: random.Random, now: datetime) -> tuple[list[tuple[bytes, bytes]], dict[str, str]]:
    past = now - timedelta(hours=2)
    records: list[tuple[bytes, bytes]] = []
    expected: dict[str, str] = {}
    for i in range(LEADS):
        lead = f"b-{i}"
        records.append(event(event_id=f"{lead}-h", lead_id=lead, type="lead.handed_off", occurred_at=iso(past),
                             team="emea"))
        kind = rng.choice(["met", "late", "none"])
        if kind != "none":
            minutes = rng.randint(1, 59) if kind == "met" else rng.randint(61, 110)
            records.append(event(event_id=f"{lead}-a", lead_id=lead, type="lead.contact_attempt",
                                 occurred_at=iso(past + timedelta(minutes=minutes))))
        expected[lead] = "met" if kind == "met" else "breached"
    for i in range(OPEN):
        lead = f"o-{i}"
        records.append(event(event_id=f"{lead}-h", lead_id=lead, type="lead.handed_off", occurred_at=iso(now),
                             team="apac"))
    return records, expected


def test_a_worker_killed_in_the_middle_of_a_large_batch_loses_no_clock_and_decides_none_twice(setup) -> None:
    seed = time.time_ns() % 1_000_000
    rng = random.Random(seed)
    s = setup(FIRST_TOUCH)
    create_topics(s.broker, list(s.topics.values()))
    records, expected = _backlog(rng, datetime.now(UTC))
    publish_batched(s.broker, s.topics["input"], records)
    worker = s.worker().start()

    # Kill part-way through the backlog, once offsets were committed: the
    # states of the records before them must be in the changelog by then.
    handled, committed = 0.0, 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        committed = committed_total(s.broker, s.app_id, s.topics["input"], 4)
        if committed > 0:
            break
        time.sleep(0.02)
    handled = metric_sum(worker.metrics(), "leadsla_events_total")
    assert worker.stop(signal.SIGKILL) == -signal.SIGKILL
    assert 0 < committed < len(records), f"not killed part-way: {committed} of {len(records)} committed (seed {seed})"
    worker.start()

    wait_for(lambda: committed_total(s.broker, s.app_id, s.topics["input"], 4) == len(records), 240,
             f"every offset committed after the restart (killed at {handled:.0f} handled, {committed} committed)")
    recs = read_all(s.broker, s.topics["outcomes"], expect=len(expected), timeout=60)
    by_lead: dict[str, set[str]] = {}
    by_id: dict[str, set[str]] = {}
    for r in recs:
        v = orjson.loads(r.value)
        by_lead.setdefault(v["lead_id"], set()).add(v["decision_id"])
        by_id.setdefault(v["decision_id"], set()).add(v["outcome"])
    why = f"(seed {seed}; killed at {handled:.0f} of {len(records)} handled, {committed} committed)"
    lost = sorted(set(expected) - set(by_lead))
    assert not lost, f"{len(lost)} clocks never decided: {lost[:10]} {why}"
    twice = sorted(lead for lead, ids in by_lead.items() if len(ids) != 1)
    assert not twice, f"{len(twice)} leads decided under two decision ids: {twice[:10]} {why}"
    assert all(len(outcomes) == 1 for outcomes in by_id.values()), f"one decision_id with two outcomes {why}"
    got = {lead: next(iter(by_id[next(iter(ids))])) for lead, ids in by_lead.items()}
    assert got == expected, f"wrong outcomes for {[k for k in expected if got.get(k) != expected[k]][:10]} {why}"
    wait_for(lambda: metric_sum(worker.metrics(), "leadsla_sla_open_clocks", policy="first_touch") == OPEN, 60,
             f"{OPEN} clocks open after the restart {why}")
