"""streams.engine.Engine driven directly: backlog and live time, duplicates,
dead letters, gauges, recovery, state GC, windows, timer slices, lead view."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadsla.models import clock
from leadsla.models.clock import decision_id
from leadsla.models.events import format_timestamp_us
from leadsla.streams.codec import LeadEntry, decode, state_from_bytes, state_to_bytes, window_key
from leadsla.streams.index import BUCKET_US
from leadsla.streams.windows import WINDOWS
from tests.models.conftest import D

from .conftest import MINIMAL_YAML, T0, H, M, Rig, S, pol, record, ts

TWO = """
policies:
  - name: first_touch
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected, lead.disqualified, lead.recycled]
    goal: 1h
  - name: disposition
    start: lead.handed_off
    stop: [lead.qualified, lead.disqualified, lead.recycled]
    goal: 2d
"""
LATENESS = 2 * S
DEADLINE = T0 + H  # first_touch of a handoff at T0


def due_wall(wake: int) -> int:
    """The first wall time at which a live timer acts on ``wake``: the end of
    the index's bucket holding it, plus the allowed lateness."""
    return (wake // BUCKET_US + 1) * BUCKET_US + LATENESS


def ts_text(us: int) -> str:
    return format_timestamp_us(us)


def outcome_count(r: Rig, policy: str, outcome: str, team: str = "none") -> float | None:
    return r.sample("leadsla_sla_outcomes_total", policy=policy, outcome=outcome, team=team)


# -- (1) backlog: judged by event time --------------------------------------------------


def test_backlog_interleaved_followup_is_met_never_breach_and_correction() -> None:
    r = Rig(wall=T0 + 10 * D)  # downtime: the wall clock is far past the backlog
    r.hw[0] = 1000  # the partition's end is far ahead of what has been read
    r.send("A", "lead.handed_off", T0, "a-h", team="emea")
    r.send("B", "lead.handed_off", T0 + 20 * H, "b-h", team="emea")  # another lead, much later
    r.send("A", "lead.contact_attempt", T0 + 30 * M, "a-c")  # A's timely follow-up, read after B
    assert r.engine.tick() == 0
    assert r.sink.outcomes == []
    part = r.engine.views.snapshot()["partitions"][0]
    assert part == {"lag": 997, "watermark": (T0 + 20 * H - D) / S, "caught_up": False, "indexed": 2}
    # Nothing is applied yet: the events wait for the watermark. Both
    # handoffs count as open clocks all the same: received, not decided.
    assert r.engine.views.snapshot()["open"] == {"first_touch": {"emea": 2}}
    assert r.engine.views.lead("A")["waiting_events"] == 2

    r.hw[0] = 3  # the backlog is consumed
    assert r.sink.outcomes == []  # caught up, but decisions come from the timer
    assert r.engine.tick() == 2
    recs = r.sink.records()
    assert [(x["lead_id"], x["policy"], x["outcome"]) for x in recs] == [
        ("A", "first_touch", "met"),
        ("B", "first_touch", "breached"),
    ]
    assert r.engine.views.snapshot()["open"] == {}
    assert recs[0]["elapsed_seconds"] == 1800.0
    assert recs[0]["stopped_at"] == "2026-11-22T09:30:00Z"
    assert recs[1]["deadline"] == "2026-11-23T06:00:00Z"
    assert recs[1]["decided_at"] == ts_text(T0 + 10 * D)
    assert recs[1]["watermark"] == ts_text(T0 + 10 * D - LATENESS)
    assert outcome_count(r, "first_touch", "met", "emea") == 1.0
    assert outcome_count(r, "first_touch", "breached", "emea") == 1.0
    assert r.sample("leadsla_sla_corrections_total", policy="first_touch", team="emea") is None
    assert r.sample("leadsla_sla_corrections_total", policy="first_touch", team="none") == 0.0
    assert r.engine.views.snapshot()["partitions"][0]["caught_up"] is True
    assert r.engine.tick() == 0
    assert len(r.sink.outcomes) == 2


def test_backlog_never_touched_lead_waits_for_the_partition_to_catch_up() -> None:
    r = Rig(wall=T0 + 5 * D)
    r.hw[0] = 50
    r.send("B", "lead.handed_off", T0, "b-h")
    for i in range(5):  # other leads' events, all within the replay horizon of B's deadline
        r.send(f"X{i}", "lead.created", T0 + (i + 1) * 3 * H, f"x{i}")
    for _ in range(3):
        r.wall.now += 10 * S
        assert r.engine.tick() == 0
    assert r.sink.outcomes == []
    r.hw[0] = 6
    assert r.sink.outcomes == []
    r.engine.tick()
    assert r.sink.summary() == [("B", "first_touch", "breached")]
    assert r.sink.records()[0]["decided_at"] == ts_text(T0 + 5 * D + 30 * S)


def test_backlog_beyond_the_replay_horizon_is_decided_during_replay() -> None:
    r = Rig(wall=T0 + 10 * D)
    r.hw[0] = 1000
    r.send("A", "lead.handed_off", T0, "a-h")
    r.send("C", "lead.created", T0 + 3 * D, "c-1")  # 3 days later: past the 1 day horizon
    assert r.engine.tick() == 1
    recs = r.sink.records()
    assert [(x["lead_id"], x["outcome"]) for x in recs] == [("A", "breached")]
    assert recs[0]["watermark"] == ts_text(T0 + 2 * D)
    assert r.engine.views.snapshot()["partitions"][0]["caught_up"] is False


def test_backlog_ending_with_the_followup_is_met() -> None:
    # The follow-up is the backlog's last record: reading it catches the
    # partition up, but it is still judged by event time, not the wall clock.
    r = Rig(wall=T0 + 10 * D)
    r.hw[0] = 2
    r.send("A", "lead.handed_off", T0, "a-h")
    r.send("A", "lead.contact_attempt", T0 + 30 * M, "a-c")
    assert r.sink.outcomes == []
    assert r.engine.views.snapshot()["partitions"][0]["caught_up"] is True
    assert r.engine.tick() == 1
    assert r.sink.summary() == [("A", "first_touch", "met")]
    assert r.sample("leadsla_sla_corrections_total", policy="first_touch", team="none") == 0.0
    assert r.engine.views.snapshot()["partitions"][0]["watermark"] == (T0 + 10 * D - LATENESS) / S


def test_restart_after_downtime_followup_read_last_is_met() -> None:
    r1 = Rig(wall=T0 + 5 * S)
    r1.live()
    r1.send("A", "lead.handed_off", T0, "a-h")  # applied live: the clock runs
    assert r1.engine.views.snapshot()["open"] == {"first_touch": {"none": 1}}
    # Down for a day; meanwhile the CRM published the timely follow-up.
    r2 = Rig(wall=T0 + D, store=_recovered(r1))
    r2.hw[0] = 2
    r2.next_offset[0] = 1
    r2.engine.rebuild([0], {0: 1})
    assert r2.engine.views.snapshot()["partitions"][0]["caught_up"] is False
    r2.send("A", "lead.contact_attempt", T0 + 30 * M, "a-c")
    r2.engine.tick()
    (rec,) = r2.sink.records()
    assert (rec["outcome"], rec["elapsed_seconds"]) == ("met", 1800.0)


# -- (2) live: the timer breaches a clock nobody touches ------------------------------


@pytest.mark.parametrize("offset", [0, 250_000])
def test_live_breach_only_after_deadline_plus_lateness(offset: int) -> None:
    start = T0 + offset
    deadline = start + H
    r = Rig(wall=start + 5 * S)
    r.live()
    r.send("A", "lead.handed_off", start, "a-h")
    assert r.engine.views.snapshot()["open"] == {"first_touch": {"none": 1}}
    expected = due_wall(deadline + 1)  # a breach needs the watermark past the deadline
    assert deadline + LATENESS < expected <= deadline + LATENESS + S
    r.wall.now = deadline + LATENESS - 3 * S
    r.engine.tick()
    decided_at = None
    while r.wall.now <= deadline + LATENESS + 2 * S:
        r.engine.tick()
        if r.sink.outcomes:
            decided_at = r.wall.now
            break
        r.wall.now += 50_000
    assert decided_at == expected
    assert decided_at > deadline + LATENESS
    (rec,) = r.sink.records()
    assert (rec["outcome"], rec["started_at"], rec["deadline"]) == ("breached", ts_text(start), ts_text(deadline))
    assert rec["decided_at"] == ts_text(expected)
    assert rec["was_at_risk"] is True
    assert r.engine.views.snapshot()["open"] == {}
    assert outcome_count(r, "first_touch", "breached") == 1.0


def test_the_next_due_wall_time_is_the_earliest_bucket_plus_the_allowed_lateness() -> None:
    r = Rig(wall=T0 + 5 * S)
    assert r.engine.next_due_wall_us() is None
    r.live()
    r.send("A", "lead.handed_off", T0, "a-h")
    r.send("B", "lead.handed_off", T0 + 10 * M, "b-h")
    # A's next wake (at-risk or its deadline) is the earliest; the timer acts
    # at the end of its bucket plus the allowed lateness.
    wake = min(r.engine.runtimes[0].index._where.values()) * BUCKET_US
    assert r.engine.next_due_wall_us() == wake + LATENESS
    assert due_wall(wake - 1) == r.engine.next_due_wall_us()


def test_live_stop_within_the_allowed_lateness_is_met() -> None:
    r = Rig(wall=T0 + 5 * S)
    r.live()
    r.send("A", "lead.handed_off", T0, "a-h")
    r.wall.now = DEADLINE + LATENESS  # the watermark is exactly at the deadline
    r.engine.tick()
    assert r.sink.outcomes == []
    r.send("A", "lead.connected", DEADLINE - 1 * S, "a-c")
    (rec,) = r.sink.records()
    assert (rec["outcome"], rec["elapsed_seconds"]) == ("met", 3599.0)
    assert r.sample("leadsla_events_late_total") == 2.0  # the handoff was behind the watermark too


def test_live_late_stop_after_a_breach_is_a_correction() -> None:
    r = Rig(wall=T0 + 5 * S)
    r.live()
    r.send("A", "lead.handed_off", T0, "a-h", team="emea", rep="r1")
    r.wall.now = due_wall(DEADLINE + 1)
    r.engine.tick()
    r.send("A", "lead.contact_attempt", T0 + 30 * M, "a-c")  # a CRM sync, far too late
    recs = r.sink.records()
    assert [x["outcome"] for x in recs] == ["breached", "corrected"]
    corr = recs[1]
    assert corr["decision_id"] == decision_id("A", "first_touch", T0, "corrected", 1)
    assert corr["decision_id"] != recs[0]["decision_id"]
    assert (corr["started_at"], corr["deadline"], corr["stopped_at"]) == (
        "2026-11-22T09:00:00Z", "2026-11-22T10:00:00Z", "2026-11-22T09:30:00Z")
    assert corr["elapsed_seconds"] == 1800.0
    assert r.sample("leadsla_sla_corrections_total", policy="first_touch", team="emea") == 1.0
    assert outcome_count(r, "first_touch", "breached", "emea") == 1.0
    assert outcome_count(r, "first_touch", "met", "emea") == 0  # created at 0 when the clock started
    assert outcome_count(r, "first_touch", "met", "none") == 0.0
    # A stop dated after the deadline for an already-breached clock: only its elapsed time.
    r.send("B", "lead.handed_off", T0, "b-h", team="emea")
    r.wall.now += 2 * H
    r.engine.tick()
    # Neither a breach nor a correction observes an elapsed time.
    assert r.sample("leadsla_sla_elapsed_seconds_count", policy="first_touch", team="emea") == 0
    r.send("B", "lead.contact_attempt", T0 + 2 * H, "b-c")
    assert len(r.sink.records()) == 3  # A breached + corrected, B breached
    assert r.sample("leadsla_sla_elapsed_seconds_sum", policy="first_touch", team="emea") == 7200.0
    assert r.sample("leadsla_sla_elapsed_seconds_count", policy="first_touch", team="emea") == 1.0
    assert r.sample("leadsla_sla_elapsed_seconds_bucket", policy="first_touch", team="emea", le="3600.0") == 0.0
    assert r.sample("leadsla_sla_elapsed_seconds_bucket", policy="first_touch", team="emea", le="7200.0") == 1.0


# -- (3) duplicates ---------------------------------------------------------------------


def test_duplicate_record_counts_once_and_is_not_persisted() -> None:
    r = Rig(wall=T0 + 5 * S)
    r.live()
    key, value = record("A", "lead.handed_off", T0, "a-h", team="emea")
    r.send_raw(key, value)
    assert [(p, lead) for p, lead, _ in r.sink.persisted] == [(0, "A")]
    r.send_raw(key, value)
    assert r.sample("leadsla_events_duplicate_total") == 1.0
    assert r.sample("leadsla_events_total", type="lead.handed_off") == 1.0
    assert [(p, lead) for p, lead, _ in r.sink.persisted] == [(0, "A")]
    assert r.engine.views.snapshot()["open"] == {"first_touch": {"emea": 1}}
    # Same event id, different content: still the same event.
    r.send("A", "lead.handed_off", T0 + M, "a-h", team="apac")
    assert r.sample("leadsla_events_duplicate_total") == 2.0
    assert r.engine.views.lead("A")["owner"] == {"team": "emea", "rep": None}
    # A re-sent stop after the decision changes nothing.
    r.send("A", "lead.contact_attempt", T0 + 2 * S, "a-c")
    r.send("A", "lead.contact_attempt", T0 + 2 * S, "a-c")
    assert r.sink.summary() == [("A", "first_touch", "met")]
    assert r.sample("leadsla_events_duplicate_total") == 3.0
    assert r.sample("leadsla_events_total", type="lead.contact_attempt") == 1.0
    assert len(r.sink.persisted) == 2


# -- (4) dead letters -------------------------------------------------------------------

_OK = orjson.loads(record("A", "lead.handed_off", T0, "a-h")[1])


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (b"A", b"\xff\xfe{", "malformed"),
        (b"A", b"[1, 2]", "malformed"),
        (b"A", orjson.dumps({**_OK, "occurred_at": "yesterday"}), "invalid"),
        (b"B", orjson.dumps(_OK), "invalid"),
        (None, orjson.dumps(_OK), "invalid"),
        (b"A", orjson.dumps({**_OK, "occurred_at": "0001-01-01T00:30:00+01:00"}), "invalid"),
        (b"A", orjson.dumps({**_OK, "occurred_at": "9999-12-31T23:30:00-01:00"}), "invalid"),
        (b"A", orjson.dumps({**_OK, "type": "lead.teleported"}), "unknown_type"),
        (b"A", orjson.dumps({**_OK, "attributes": {"notes": "x" * 400}}), "too_large"),
    ],
)
def test_each_rejection_goes_to_the_dead_letter_sink(key: bytes | None, value: bytes, reason: str) -> None:
    r = Rig(wall=T0 + 5 * S, max_event_bytes=300)
    r.live()
    r.send_raw(key, value)
    expected = decode(key, value, 300, T0 + 5 * S, 15 * M)
    assert r.sink.dead == [(key, value, reason, expected.error)]
    assert r.sink.dead[0][1] is value  # the original bytes, unchanged
    for other in ("malformed", "invalid", "unknown_type", "too_large"):
        assert r.sample("leadsla_events_rejected_total", reason=other) == (1.0 if other == reason else 0.0)
    assert r.sample("leadsla_events_total", type="lead.handed_off") == 0.0
    assert r.store == {}
    assert r.sink.persisted == [] and r.sink.outcomes == []
    assert r.engine.views.snapshot()["partitions"][0]["lag"] == 0  # the offset still counts as read


def test_rejections_accumulate_per_reason() -> None:
    r = Rig(wall=T0 + 5 * S)
    r.live()
    r.send_raw(b"A", b"nope")
    r.send_raw(b"A", b"{}")
    r.send_raw(b"A", b'{"type": 3}')
    r.send_raw(b"A", None)
    r.send("A", "lead.handed_off", T0, "a-h")
    assert [d[2] for d in r.sink.dead] == ["malformed", "invalid", "invalid", "malformed"]
    assert r.sample("leadsla_events_rejected_total", reason="malformed") == 2.0
    assert r.sample("leadsla_events_rejected_total", reason="invalid") == 2.0
    assert r.sample("leadsla_events_total", type="lead.handed_off") == 1.0


# -- (5) gauges -------------------------------------------------------------------------


def test_open_and_at_risk_gauges_per_policy() -> None:
    r = Rig(TWO, wall=T0 + 30 * M)
    r.live()

    def open_(policy: str, team: str) -> float | None:
        return r.sample("leadsla_sla_open_clocks", policy=policy, team=team)

    def risk(policy: str, team: str) -> float | None:
        return r.sample("leadsla_sla_at_risk_clocks", policy=policy, team=team)

    assert (open_("first_touch", "none"), open_("disposition", "none")) == (0.0, 0.0)
    r.send("A", "lead.handed_off", T0, "a-h", team="emea")
    r.send("B", "lead.handed_off", T0, "b-h", team="apac")
    r.send("C", "lead.handed_off", T0, "c-h", team="emea")
    assert (open_("first_touch", "emea"), open_("first_touch", "apac")) == (2.0, 1.0)
    assert (open_("disposition", "emea"), open_("disposition", "apac")) == (2.0, 1.0)
    assert open_("first_touch", "none") is None
    r.send("A", "lead.contact_attempt", T0 + 10 * M, "a-c")
    assert (open_("first_touch", "emea"), open_("disposition", "emea")) == (1.0, 2.0)
    r.send("C", "lead.disqualified", T0 + 20 * M, "c-d")  # stops both of C's clocks
    assert (open_("first_touch", "emea"), open_("disposition", "emea")) == (None, 1.0)
    assert open_("first_touch", "none") is None  # apac's series is still there
    assert risk("first_touch", "none") == 0.0
    # 80 % of the goal (48 min): B's first_touch is at risk.
    r.wall.now = due_wall(T0 + 48 * M)
    r.engine.tick()
    assert risk("first_touch", "apac") == 1.0
    assert r.sample("leadsla_sla_at_risk_total", policy="first_touch", team="apac") == 1.0
    assert risk("disposition", "none") == 0.0
    assert r.engine.views.snapshot()["at_risk"] == {"first_touch": {"apac": 1}}
    # The breach takes it out of both gauges.
    r.wall.now = due_wall(DEADLINE + 1)
    r.engine.tick()
    assert r.sink.summary()[-1] == ("B", "first_touch", "breached")
    assert risk("first_touch", "apac") is None
    assert risk("first_touch", "none") == 0.0
    assert open_("first_touch", "none") == 0.0
    assert (open_("disposition", "emea"), open_("disposition", "apac")) == (1.0, 1.0)
    assert r.engine.views.snapshot()["open"] == {"disposition": {"emea": 1, "apac": 1}}


def test_team_labels_are_capped() -> None:
    r = Rig(wall=T0 + 5 * S, max_team_labels=2)
    r.live()
    for i, team in enumerate(["t1", "t2", "t3", "t4"]):
        r.send(f"L{i}", "lead.handed_off", T0, f"h{i}", team=team)
    r.send("L9", "lead.handed_off", T0, "h9")
    assert r.engine.views.snapshot()["open"] == {"first_touch": {"t1": 1, "t2": 1, "other": 2, "none": 1}}
    assert r.sample("leadsla_handoffs_total", team="other") == 2.0
    assert r.sample("leadsla_handoffs_total", team="t3") is None


# -- (6) recovery and revocation ------------------------------------------------------


def _recovered(r: Rig) -> dict[str, LeadEntry]:
    """The table after recovery: each lead's last state through the changelog codec."""
    return {lead: state_from_bytes(state_to_bytes(e.partition, e.state)) for lead, e in r.store.items()}


def test_rebuild_restores_open_clocks_and_the_deadline_index() -> None:
    r1 = Rig(wall=T0 + 5 * S)
    r1.live()
    r1.live(1)
    r1.send("A", "lead.handed_off", T0, "a-h", team="emea")  # deadline T0+1h
    r1.send("B", "lead.handed_off", T0 - 30 * M, "b-h", team="apac")  # deadline T0+30m
    r1.send("C", "lead.handed_off", T0 - 10 * M, "c-h")
    r1.send("C", "lead.contact_attempt", T0 - 5 * M, "c-c")  # met: nothing running
    r1.send("Z", "lead.handed_off", T0, "z-h", partition=1)  # another worker's partition
    r1.engine.tick()
    assert r1.sink.summary() == [("C", "first_touch", "met")]

    # A restart: a new engine over the recovered table, resuming where the group left off.
    r2 = Rig(wall=T0 + 10 * S, store=_recovered(r1), window_store=dict(r1.window_store))
    r2.hw[0] = r1.next_offset[0]
    r2.engine.rebuild([0], {0: r1.next_offset[0]})
    snap = r2.engine.views.snapshot()
    assert snap["ready"] is True
    assert snap["open"] == {"first_touch": {"emea": 1, "apac": 1}}
    assert snap["partitions"] == {0: {"lag": 0, "watermark": (T0 + 8 * S) / S, "caught_up": True, "indexed": 3}}
    assert r2.sample("leadsla_sla_open_clocks", policy="first_touch", team="apac") == 1.0
    assert len(r2.engine.runtimes[0].index) == 3

    r2.wall.now = due_wall(T0 + 30 * M + 1)
    r2.engine.tick()
    (rec,) = r2.sink.records()
    assert (rec["lead_id"], rec["outcome"]) == ("B", "breached")
    assert rec["decision_id"] == decision_id("B", "first_touch", T0 - 30 * M, "decided", 1)
    assert r2.engine.views.snapshot()["open"] == {"first_touch": {"emea": 1}}

    r2.engine.revoke([0])
    assert r2.engine.runtimes == {}
    snap = r2.engine.views.snapshot()
    assert (snap["open"], snap["partitions"]) == ({}, {})
    r2.wall.now = due_wall(DEADLINE + 1)
    assert r2.engine.tick() == 0
    assert len(r2.sink.outcomes) == 1  # A is no longer this worker's to decide


def test_rebuild_without_committed_offsets_is_a_backlog() -> None:
    r1 = Rig(wall=T0 + 5 * S)
    r1.live()
    r1.send("A", "lead.handed_off", T0, "a-h")
    r2 = Rig(wall=T0 + 3 * D, store=_recovered(r1))
    r2.hw[0] = 1
    r2.engine.rebuild([0], {0: None})
    part = r2.engine.views.snapshot()["partitions"][0]
    assert part == {"lag": 1, "watermark": (T0 - D) / S, "caught_up": False, "indexed": 1}
    r2.engine.tick()
    assert r2.sink.outcomes == []
    # Re-reading the partition from the start: the duplicate is recognised.
    r2.send("A", "lead.handed_off", T0, "a-h")
    assert r2.sample("leadsla_events_duplicate_total") == 1.0
    r2.engine.tick()
    assert r2.sink.summary() == [("A", "first_touch", "breached")]


def test_rebuild_restores_windows_of_teams_with_a_separator_in_their_name() -> None:
    r1 = Rig(wall=T0 + 10 * M)
    r1.live()
    r1.send("A", "lead.handed_off", T0, "a-h", team="sales|emea")
    r1.engine.tick()
    assert window_key(3600, T0 // S, "handoffs", "sales|emea", 0) in r1.window_store
    r2 = Rig(wall=T0 + 10 * M, store=_recovered(r1), window_store=dict(r1.window_store))
    r2.hw[0] = 1
    r2.engine.rebuild([0], {0: 1})
    assert r2.engine.views.snapshot()["windows"] == {
        ("handoffs", "sales|emea", "1h"): 1,
        ("handoffs", "sales|emea", "1d"): 1,
    }


def test_clock_of_a_policy_removed_before_a_restart_runs_out_silently() -> None:
    r1 = Rig(TWO, wall=T0 + 5 * S)
    r1.live()
    r1.send("A", "lead.handed_off", T0, "a-h", team="emea")
    assert r1.engine.views.snapshot()["open"] == {"first_touch": {"emea": 1}, "disposition": {"emea": 1}}
    r2 = Rig(MINIMAL_YAML, wall=T0 + 10 * S, store=_recovered(r1))
    r2.hw[0] = 1
    r2.engine.rebuild([0], {0: 1})
    assert r2.engine.views.snapshot()["open"] == {"first_touch": {"emea": 1}}
    r2.wall.now = T0 + 3 * D  # past both deadlines
    assert r2.engine.tick() == 1
    assert r2.sink.summary() == [("A", "first_touch", "breached")]
    assert r2.engine.views.snapshot()["open"] == {}
    assert r2.engine.views.snapshot()["at_risk"] == {}
    assert "disposition" not in r2.exposition()
    assert "disposition" not in r2.engine.views.lead("A")["clocks"]  # dropped once due


# -- (7) state GC -------------------------------------------------------------------------


def test_quiet_lead_is_forgotten_after_the_state_ttl() -> None:
    r = Rig(wall=T0 + 5 * S, state_ttl="1h")
    r.live()
    r.send("A", "lead.created", T0, "a-1")
    r.send("C", "lead.handed_off", T0, "c-h")
    r.send("C", "lead.contact_attempt", T0 + M, "c-c")
    assert set(r.store) == {"A", "C"}
    # A's event (T0) arrived with the watermark at T0 + 3 s: its TTL counts from there.
    r.wall.now = due_wall(T0 + 3 * S + H) - 1
    r.engine.tick()
    assert set(r.store) == {"A", "C"}
    r.wall.now = due_wall(T0 + 3 * S + H)
    r.engine.tick()
    assert set(r.store) == {"C"}
    assert r.sink.persisted[-1] == (0, "A", None)
    assert r.engine.views.lead("A") is None
    r.wall.now = due_wall(T0 + M + H) - 1
    r.engine.tick()
    assert "C" in r.store
    r.wall.now = due_wall(T0 + M + H)
    r.engine.tick()
    assert r.store == {}
    assert r.sink.persisted[-1] == (0, "C", None)
    assert [x for x in r.sink.persisted if x[2] is None] == [(0, "A", None), (0, "C", None)]
    assert r.engine.views.snapshot()["partitions"][0]["indexed"] == 0
    # Its dedupe memory went with it: the same event id counts again.
    r.send("A", "lead.created", T0, "a-1")
    assert r.sample("leadsla_events_total", type="lead.created") == 2.0
    assert r.sample("leadsla_events_duplicate_total") == 0.0


def test_running_clock_keeps_the_lead_until_decided() -> None:
    r = Rig(wall=T0 + 5 * S, state_ttl="10m")
    r.live()
    r.send("A", "lead.handed_off", T0, "a-h")
    r.wall.now = due_wall(T0 + 48 * M)  # well past last event + TTL, clock still running
    r.engine.tick()
    assert "A" in r.store
    r.wall.now = due_wall(DEADLINE + 1)
    r.engine.tick()
    assert r.sink.summary() == [("A", "first_touch", "breached")]
    r.engine.tick()  # rescheduled at last_event_at + ttl, which has passed: due next pass
    assert r.store == {}
    assert r.sink.persisted[-1] == (0, "A", None)


# -- (8) windows --------------------------------------------------------------------------


def test_handoffs_and_touches_land_in_the_current_windows_and_flush_once() -> None:
    r = Rig(wall=T0 + 10 * M)
    r.live()
    r.send("A", "lead.handed_off", T0, "a-h", team="emea")
    r.send("B", "lead.handed_off", T0 + 2 * M, "b-h", team="apac")
    r.send("A", "lead.contact_attempt", T0 + 5 * M, "a-c1")  # first follow-up: 300 s
    r.send("A", "lead.connected", T0 + 6 * M, "a-c2")
    cells = {("handoffs", "emea"): 1, ("handoffs", "apac"): 1, ("attempts", "emea"): 2,
             ("first", "emea"): 1, ("latency", "emea"): 300.0}
    assert r.engine.views.snapshot()["windows"] == {(m, t, w): v for (m, t), v in cells.items() for w in ("1h", "1d")}
    assert r.window_store == {} and r.sink.windows == []

    r.engine.tick()
    hour, day = T0 // S, T0 // S - 9 * 3600
    expected = {}
    for (metric, team), v in cells.items():
        expected[f"3600|{hour}|{metric}|{team}|0"] = v
        expected[f"86400|{day}|{metric}|{team}|0"] = v
    assert r.window_store == expected
    assert sorted(r.sink.windows) == sorted((0, k, v) for k, v in expected.items())
    r.engine.tick()
    assert len(r.sink.windows) == 10  # nothing changed: nothing re-sent

    r.send("B", "lead.contact_attempt", T0 + 7 * M, "b-c")
    r.engine.tick()
    assert sorted(r.sink.windows[10:]) == sorted([
        (0, f"3600|{hour}|attempts|apac|0", 1),
        (0, f"3600|{hour}|first|apac|0", 1),
        (0, f"3600|{hour}|latency|apac|0", 300.0),
        (0, f"86400|{day}|attempts|apac|0", 1),
        (0, f"86400|{day}|first|apac|0", 1),
        (0, f"86400|{day}|latency|apac|0", 300.0),
    ])
    assert r.sample("leadsla_window_handoffs", team="emea", window="1h") == 1.0
    assert r.sample("leadsla_window_followup_attempts", team="emea", window="1d") == 2.0
    assert r.sample("leadsla_window_first_followup_seconds_sum", team="apac", window="1h") == 300.0
    assert r.sample("leadsla_followup_latency_seconds_sum", team="emea") == 300.0
    assert r.sample("leadsla_followup_latency_seconds_count", team="emea") == 1.0
    assert r.sample("leadsla_followup_attempts_total", team="emea") == 2.0
    assert r.sample("leadsla_handoffs_total", team="apac") == 1.0

    # Past the 1h window's retention (2 days after it ends) its cells are deleted.
    assert WINDOWS[0] == (3600, "1h", 2 * 86400)
    r.wall.now = T0 + H + 2 * D + S + S
    r.engine.tick()
    gone = sorted(k for _, k, v in r.sink.windows if v is None)
    assert gone == sorted(
        [k for k in expected if k.startswith("3600|")]
        + [f"3600|{hour}|attempts|apac|0", f"3600|{hour}|first|apac|0", f"3600|{hour}|latency|apac|0"]
    )
    assert sorted(r.window_store) == sorted(
        [k for k in expected if k.startswith("86400|")]
        + [f"86400|{day}|attempts|apac|0", f"86400|{day}|first|apac|0", f"86400|{day}|latency|apac|0"]
    )
    assert r.engine.views.snapshot()["windows"] == {}  # a new hour and a new day by the wall clock


# -- (9) timer slices -----------------------------------------------------------------------


def test_tick_limit_decides_everything_across_calls() -> None:
    r = Rig(wall=T0 + 5 * S)
    r.live()
    leads = [f"L{i:02d}" for i in range(25)]
    for i, lead in enumerate(leads):
        r.send(lead, "lead.handed_off", T0, f"h{i}")
    assert r.engine.pending() is False
    r.wall.now = T0 + 2 * H
    assert r.engine.tick(limit=10) == 10
    assert r.engine.pending() is True
    assert r.engine.tick(limit=10) == 10
    assert r.engine.pending() is True
    assert r.engine.tick(limit=10) == 5
    assert r.engine.pending() is False
    assert r.engine.tick(limit=10) == 0
    recs = r.sink.records()
    assert sorted(x["lead_id"] for x in recs) == leads
    assert {x["outcome"] for x in recs} == {"breached"}
    assert outcome_count(r, "first_touch", "breached") == 25.0
    assert r.engine.views.snapshot()["open"] == {}


def test_tick_default_limit_is_the_timer_batch() -> None:
    r = Rig(wall=T0 + 5 * S, timer_batch=4)
    r.live()
    for i in range(9):
        r.send(f"L{i}", "lead.handed_off", T0, f"h{i}")
    r.wall.now = T0 + 2 * H
    assert [r.engine.tick(), r.engine.tick(), r.engine.tick(), r.engine.tick()] == [4, 4, 1, 0]


# -- (10) lead view -----------------------------------------------------------------------


def test_lead_view_of_a_running_lead() -> None:
    r = Rig(TWO, wall=T0 + M)
    r.live()
    r.send("A", "lead.handed_off", T0, "a-h", team="emea", rep="r-1")
    r.send("A", "lead.contact_attempt", T0 + 5 * S, "a-c")
    r.send("A", "lead.qualified", T0 + 10 * M, "a-q")  # ahead of the watermark: waiting
    assert r.engine.views.lead("A") == {
        "lead_id": "A",
        "partition": 0,
        "owner": {"team": "emea", "rep": "r-1"},
        "last_event_at": "2026-11-22T09:10:00Z",
        "waiting_events": 1,
        "clocks": {
            "first_touch": {
                "status": "idle", "cycle": 1, "started_at": "2026-11-22T09:00:00Z", "deadline": None,
                "judged_not_before": None, "at_risk": False, "team": "emea", "rep": "r-1", "last_outcome": "met",
                "last_deadline": "2026-11-22T10:00:00Z", "corrected_at": None,
            },
            "disposition": {
                "status": "running", "cycle": 1, "started_at": "2026-11-22T09:00:00Z",
                "deadline": "2026-11-24T09:00:00Z", "judged_not_before": None, "at_risk": False, "team": "emea",
                "rep": "r-1", "last_outcome": None, "last_deadline": None, "corrected_at": None,
            },
        },
        "too_late": [],
    }
    assert r.engine.views.lead("nobody") is None


# -- misc -------------------------------------------------------------------------------


def test_snapshot_of_a_fresh_engine() -> None:
    r = Rig(MINIMAL_YAML)
    snap = r.engine.views.snapshot()
    assert {k: snap[k] for k in ("open", "at_risk", "partitions", "windows", "ready", "last_event_wall")} == {
        "open": {}, "at_risk": {}, "partitions": {}, "windows": {}, "ready": False, "last_event_wall": None,
    }
    r.send("A", "lead.created", T0, "a-1", partition=2)
    snap = r.engine.views.snapshot()
    assert snap["last_event_wall"] == T0 / S
    # Never fetched (no highwater): a backlog, the watermark trails by the replay horizon.
    assert snap["partitions"] == {2: {"lag": None, "watermark": (T0 - D) / S, "caught_up": False, "indexed": 1}}


# -- open clocks: received and not decided ----------------------------------------------

OPEN_POLICIES = """
policies:
  - {name: first_touch, start: lead.handed_off, stop: [lead.contact_attempt], goal: 1h}
  - {name: disposition, start: lead.handed_off, stop: [lead.qualified], goal: 4h,
     pause: lead.accepted, resume: lead.connected}
"""


def test_a_live_handoff_is_open_at_once_not_after_the_lateness() -> None:
    r = Rig(OPEN_POLICIES, wall=T0 + 10 * S, allowed_lateness="2m")
    r.live()
    r.send("A", "lead.handed_off", T0 + 5 * S, "h", team="emea")
    # The watermark (wall - 2m) is behind the handoff: the clock has not
    # started in event time, yet the lead waits and the gauge says so.
    assert r.engine.views.snapshot()["open"] == {"first_touch": {"emea": 1}, "disposition": {"emea": 1}}
    r.send("A", "lead.contact_attempt", T0 + 8 * S, "a")
    assert r.engine.views.snapshot()["open"]["first_touch"] == {"emea": 1}  # met, but not decided yet
    r.wall.now = T0 + 3 * M
    r.engine.tick()
    assert r.sink.summary() == [("A", "first_touch", "met")]
    assert r.engine.views.snapshot()["open"] == {"disposition": {"emea": 1}}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ABC"),
                          st.sampled_from(["lead.handed_off", "lead.contact_attempt", "lead.qualified",
                                           "lead.accepted", "lead.connected"]),
                          st.integers(0, 6 * 60), st.sampled_from(["emea", "apac", None]),
                          st.integers(0, 12)),
                min_size=1, max_size=40))
def test_open_gauge_always_equals_the_leads_open_clocks(steps) -> None:
    r = Rig(OPEN_POLICIES, wall=T0, allowed_lateness="2m")
    r.live()
    for i, (lead, etype, minute, team, advance) in enumerate(steps):
        r.wall.now += advance * M
        fields = {"team": team} if team else {}
        r.send(lead, etype, T0 + minute * M, f"e{i}", **fields)
        r.engine.tick()
        want: dict[str, dict[str, int]] = {}
        for entry in r.store.values():
            for name, t in clock.open_clocks(entry.state).items():
                label = t or "none"
                want.setdefault(name, {}).setdefault(label, 0)
                want[name][label] += 1
        assert r.engine.views.snapshot()["open"] == want


def test_progress_while_catching_up_names_counts_not_leads() -> None:
    r = Rig(wall=T0 + 10 * D)
    r.hw[0] = 5
    r.send("lead-secret", "lead.handed_off", T0, "h", team="emea")
    r.engine.tick()
    lines = r.engine.views.progress()
    assert lines == ["catching up: 4 records left in 1 partition(s); newest event time 2026-11-22T09:00:00Z"]
    assert r.engine.views.progress() == []  # at most every 10 s
    r.hw[0] = 1
    r.engine.tick()
    assert r.engine.views.progress() == ["partition 0 caught up at offset 1: judging by the wall clock now"]
    assert r.engine.views.progress() == []
    assert not any("lead-secret" in line for line in lines)


def test_rep_queue_lists_open_clocks_nearest_deadline_first() -> None:
    r = Rig(OPEN_POLICIES, wall=T0 + 10 * H)
    r.live()
    r.send("A", "lead.handed_off", T0 + 9 * H, "h1", team="emea", rep="rep-7")
    r.send("B", "lead.handed_off", T0 + 8 * H, "h2", team="emea", rep="rep-7")
    r.send("C", "lead.handed_off", T0 + 8 * H, "h3", team="emea", rep="rep-2")
    r.send("B", "lead.contact_attempt", T0 + 8 * H + M, "a2")
    r.engine.tick()
    queue = r.engine.views.rep_queue("rep-7")
    # B's first touch is met and gone; C belongs to another rep.
    assert [(q["lead_id"], q["policy"], q["deadline"], q["status"]) for q in queue] == [
        ("A", "first_touch", ts_text(T0 + 10 * H), "running"),
        ("B", "disposition", ts_text(T0 + 12 * H), "running"),
        ("A", "disposition", ts_text(T0 + 13 * H), "running"),
    ]
    assert r.engine.views.rep_queue("nobody") == []


# -- every offset reaches the engine ------------------------------------------------------


def test_a_gap_in_offsets_is_counted_and_read_again_once() -> None:
    r = Rig(wall=T0 + 5 * S)
    asked: list[tuple[int, int, int]] = []
    r.engine.reread = lambda partition, first, end: asked.append((partition, first, end))
    r.engine.rebuild([0], {0: 10})  # the group resumes at offset 10
    r.engine.handle(0, 10, *record("A", "lead.handed_off", T0, "a-h"))
    r.engine.handle(0, 13, *record("B", "lead.handed_off", T0, "b-h"))  # 11 and 12 never came
    assert asked == [(0, 11, 13)]
    assert r.sample("leadsla_offset_gaps_total") == 2
    # the re-read delivers 11..13 again: in order now, 13 is a duplicate
    r.engine.handle(0, 11, *record("C", "lead.handed_off", T0, "c-h"))
    r.engine.handle(0, 12, *record("D", "lead.handed_off", T0, "d-h"))
    r.engine.handle(0, 13, *record("B", "lead.handed_off", T0, "b-h"))
    r.engine.handle(0, 14, *record("E", "lead.handed_off", T0, "e-h"))
    assert asked == [(0, 11, 13)] and r.sample("leadsla_offset_gaps_total") == 2
    assert sorted(r.store) == ["A", "B", "C", "D", "E"]
    assert r.sample("leadsla_events_duplicate_total") == 1


def test_a_gap_still_there_after_one_read_holds_no_records_and_is_accepted() -> None:
    r = Rig(wall=T0 + 5 * S)
    asked: list[tuple[int, int, int]] = []
    r.engine.reread = lambda partition, first, end: asked.append((partition, first, end))
    r.engine.rebuild([0], {0: 0})
    r.engine.handle(0, 0, *record("A", "lead.handed_off", T0, "a-h"))
    r.engine.handle(0, 2, *record("B", "lead.handed_off", T0, "b-h"))  # 1: a transaction marker
    r.engine.handle(0, 2, *record("B", "lead.handed_off", T0, "b-h"))  # read again: 1 is still missing
    r.engine.handle(0, 3, *record("C", "lead.handed_off", T0, "c-h"))
    assert asked == [(0, 1, 2)]
    assert r.engine.runtimes[0].next_offset == 4


def test_offsets_before_the_resume_position_is_known_set_it() -> None:
    r = Rig(wall=T0 + 5 * S)
    asked: list[tuple[int, int, int]] = []
    r.engine.reread = lambda partition, first, end: asked.append((partition, first, end))
    r.engine.rebuild([0], {0: None})  # the broker could not say where the group resumes
    r.engine.handle(0, 7, *record("A", "lead.handed_off", T0, "a-h"))
    r.engine.handle(0, 8, *record("B", "lead.handed_off", T0, "b-h"))
    assert asked == [] and r.engine.runtimes[0].last_offset == 8


def test_losing_a_partition_drops_its_leads_windows_and_series() -> None:
    r = Rig(wall=T0 + 5 * S)
    r.live(0)
    r.live(1)
    r.send("A", "lead.handed_off", T0, "a-h", team="emea", partition=0)
    r.send("B", "lead.handed_off", T0, "b-h", team="emea", partition=1)
    r.wall.now += 5 * S
    r.engine.tick()
    assert r.engine.views.snapshot()["open"] == {"first_touch": {"emea": 2}}
    assert any(key.endswith("|1") for key in r.window_store)
    r.engine.revoke([0, 1])  # a rebalance begins: the leads stay for Faust's recovery
    assert sorted(r.store) == ["A", "B"]
    r.engine.keep_only([0])  # ... and partition 0 is this worker's again
    r.engine.rebuild([0], {0: 1})
    assert sorted(r.store) == ["A"]
    assert not any(key.endswith("|1") for key in r.window_store)
    assert r.engine.views.snapshot()["open"] == {"first_touch": {"emea": 1}}
    assert r.sample("leadsla_consumer_lag", partition="1") is None
    assert r.sample("leadsla_partition_caught_up", partition="0") == 1.0


def test_a_depth_clock_reports_its_attempts_in_the_outcome_and_the_histogram() -> None:
    depth = """
policies:
  - name: follow_up_depth
    start: lead.handed_off
    attempt: lead.contact_attempt
    min_attempts: 2
    stop: lead.connected
    give_up: lead.disqualified
    goal: 1h
"""
    r = Rig(depth, wall=T0 + 2 * H)
    r.live()
    r.send("A", "lead.handed_off", T0, "a-h")
    r.send("A", "lead.contact_attempt", T0 + M, "a-1")
    r.send("A", "lead.contact_attempt", T0 + 2 * M, "a-2")
    r.send("B", "lead.handed_off", T0, "b-h")
    r.send("B", "lead.connected", T0 + M, "b-c")
    r.send("C", "lead.handed_off", T0, "c-h")
    r.send("C", "lead.disqualified", T0 + M, "c-d")
    r.wall.now += 5 * S
    r.engine.tick()
    got = {rec["lead_id"]: (rec["outcome"], rec.get("attempts")) for rec in r.sink.records()}
    assert got == {"A": ("met", 2), "B": ("met", None), "C": ("breached", 0)}
    assert r.sample("leadsla_followup_depth_attempts_count", policy="follow_up_depth") == 2
    assert r.sample("leadsla_followup_depth_attempts_sum", policy="follow_up_depth") == 2


def test_won_revenue_is_linked_to_the_first_clock_of_each_policy() -> None:
    r = Rig(wall=T0 + 10 * D)
    r.live()
    r.send("A", "lead.handed_off", T0, "a-h")
    r.send("A", "lead.contact_attempt", T0 + M, "a-c")  # met
    r.send("B", "lead.handed_off", T0, "b-h")  # breached by the timer
    r.wall.now += 5 * S
    r.engine.tick()
    r.send("A", "deal.won", T0 + 2 * D, "a-w", amount=1000.0, currency="USD")
    r.send("B", "deal.won", T0 + 2 * D, "b-w", amount=250.0, currency="USD")
    r.send("C", "deal.won", T0 + 2 * D, "c-w", amount=40.0, currency="USD")  # never handed off
    assert r.sample("leadsla_revenue_won_total", policy="first_touch", outcome="met") == 1000
    assert r.sample("leadsla_revenue_won_total", policy="first_touch", outcome="breached") == 250
    assert r.sample("leadsla_revenue_won_total", policy="first_touch", outcome="none") == 40
    assert r.sample("leadsla_revenue_won_total", policy="first_touch", outcome="open") == 0
    # Won while its handoff still waits for the watermark (a history import): open, not "never started".
    now = r.wall.now
    r.send("D", "lead.handed_off", now - S, "d-h")  # within the allowed lateness (2 s): pending
    assert r.engine.views.lead_clocks("D")["clocks"][0]["state"] == "pending"
    r.send("D", "deal.won", now - S // 2, "d-w", amount=77.0, currency="USD")
    assert r.sample("leadsla_revenue_won_total", policy="first_touch", outcome="open") == 77
    assert r.sample("leadsla_revenue_won_total", policy="first_touch", outcome="none") == 40


def test_an_event_the_engine_fails_on_is_dead_lettered_and_the_next_one_goes_on(monkeypatch: Any) -> None:
    from leadsla.models import clock as clock_module

    r = Rig(wall=T0 + 5 * S)
    r.live(0)
    real = clock_module.apply

    def failing(st: Any, event: Any, *args: Any) -> Any:
        if event.lead_id == "bad":
            raise ZeroDivisionError("lead bad")
        return real(st, event, *args)

    monkeypatch.setattr(clock_module, "apply", failing)
    r.send("bad", "lead.handed_off", T0, "b-h")
    r.send("good", "lead.handed_off", T0, "g-h")
    assert [(k, reason, error) for k, _, reason, error in r.sink.dead] == [
        (b"bad", "processing_error", "could not be processed: ZeroDivisionError")]
    assert r.sample("leadsla_events_rejected_total", reason="processing_error") == 1
    assert "good" in r.store and r.engine.views.lead("good") is not None


def test_an_event_dated_before_1970_is_invalid_not_a_crash() -> None:
    r = Rig(MINIMAL_YAML + """
targets:
  - {name: mqls, deliver: lead.mql, goal: 1, timezone: America/New_York}
""", wall=T0 + 5 * S)
    r.live(0)
    r.send("old", "lead.mql", ts("0001-01-01T00:10:00Z"), "o-1")
    r.send("new", "lead.mql", ts("1970-01-01T00:00:00Z"), "n-1")
    assert [(k, reason, error) for k, _, reason, error in r.sink.dead] == [
        (b"old", "invalid", "occurred_at 0001-01-01T00:10:00Z is before 1970-01-01T00:00:00Z")]
    assert r.sample("leadsla_events_total", type="lead.mql") == 1


# -- a policies file changed between runs ------------------------------------------


THREE_HOURS = MINIMAL_YAML.replace("goal: 1h ", "goal: 3h ")


def test_a_goal_changed_between_runs_is_applied_from_each_clock_start(caplog: pytest.LogCaptureFixture) -> None:
    r1 = Rig(THREE_HOURS, wall=T0 + 2 * H)
    r1.live()
    r1.send("A", "lead.handed_off", T0, "a-h", team="emea")  # 2 h ago, under a 3 h goal: running
    r1.send("B", "lead.handed_off", T0 + 90 * M, "b-h", team="emea")  # 30 min ago: running either way
    r1.engine.tick()
    assert r1.sink.summary() == []

    # The SLA meeting shortened the goal to 1 h; the worker starts again with it.
    r2 = Rig(MINIMAL_YAML, wall=T0 + 2 * H, store=_recovered(r1))
    r2.hw[0] = r1.next_offset[0]
    with caplog.at_level(logging.WARNING, logger="leadsla"):
        r2.engine.rebuild([0], {0: r1.next_offset[0]})
    (line,) = [rec.getMessage() for rec in caplog.records if "changed since the recovered state" in rec.getMessage()]
    assert line == ("policy first_touch changed since the recovered state (goal 3h -> 1h): the goal in force "
                    "applies from each clock's start; 2 running clock(s) moved, 1 already past the new deadline "
                    "(decided as the watermark passes it)")
    assert "A" not in line and "B" not in line.replace("(breached", "")
    # The view, the index and the gauges follow the new goal before any decision.
    view = r2.engine.views.lead("A")
    assert view is not None
    assert (view["clocks"]["first_touch"]["deadline"]) == format_timestamp_us(T0 + H)
    assert {p for p, _, _ in r2.sink.persisted} == {0}
    assert sorted(lead for _, lead, _ in r2.sink.persisted) == ["A", "B"]

    # The handoffs arrived late (at T0 + 2 h): each clock is judged no earlier
    # than one allowed lateness after its arrival, then by its new deadline.
    r2.wall.now += 3 * S
    r2.engine.tick()
    (rec,) = r2.sink.records()
    assert (rec["lead_id"], rec["outcome"], rec["deadline"], rec["goal_seconds"]) == (
        "A", "breached", format_timestamp_us(T0 + H), 3600.0)
    assert r2.sample("leadsla_sla_open_clocks", policy="first_touch", team="emea") == 1.0
    assert r2.engine.views.lead("B")["clocks"]["first_touch"]["deadline"] == format_timestamp_us(T0 + 150 * M)

    # A third start with the same file: nothing moves, nothing is logged again.
    caplog.clear()
    r3 = Rig(MINIMAL_YAML, wall=T0 + 2 * H, store=_recovered(r2))
    with caplog.at_level(logging.WARNING, logger="leadsla"):
        r3.engine.rebuild([0], {0: r1.next_offset[0]})
    assert [rec for rec in caplog.records if "changed since" in rec.getMessage()] == []
    assert r3.sink.persisted == []


def test_a_policy_removed_between_runs_closes_its_clocks(caplog: pytest.LogCaptureFixture) -> None:
    both = MINIMAL_YAML + """\
  - name: disposition
    start: lead.handed_off
    stop: lead.qualified
    goal: 2d
"""
    r1 = Rig(both, wall=T0 + 10 * M)
    r1.live()
    r1.send("A", "lead.handed_off", T0, "a-h", team="emea")
    r2 = Rig(MINIMAL_YAML, wall=T0 + 10 * M, store=_recovered(r1))
    r2.hw[0] = r1.next_offset[0]
    with caplog.at_level(logging.WARNING, logger="leadsla"):
        r2.engine.rebuild([0], {0: r1.next_offset[0]})
    assert [rec.getMessage() for rec in caplog.records if "no longer" in rec.getMessage()] == [
        "policy disposition is no longer in the policies file: 1 running clock(s) closed without a decision"]
    assert set(r2.store["A"].state.clocks) == {"first_touch"}
    assert r2.engine.views.snapshot()["open"] == {"first_touch": {"emea": 1}}
    r2.wall.now = T0 + 3 * 24 * H
    r2.engine.tick()
    assert r2.sink.summary() == [("A", "first_touch", "breached")]


def test_a_calendar_change_under_business_days_names_each_clock_s_business_time() -> None:
    from leadsla.models.clock import Rebased
    from leadsla.streams.engine import PolicyChanges

    ps = pol("""
calendars:
  office: {hours: {mon-fri: "09:00-17:00"}}
policies:
  - {name: biz, start: lead.handed_off, stop: lead.connected, goal: 1bd, calendar: office}
""")
    changes = PolicyChanges()
    changes.add([Rebased("biz", 10 * H, 8 * H, T0 + 10 * H, T0 + 8 * H)], T0)
    assert changes.lines(ps) == [
        "policy biz changed since the recovered state (goal 1bd: business time 10h -> 8h): the goal in force "
        "applies from each clock's start; 1 running clock(s) moved, 0 already past the new deadline "
        "(decided as the watermark passes it)"]


def test_a_month_old_lead_is_remembered_for_the_state_ttl_after_it_arrives() -> None:
    """A history import of events older than the state TTL: the stop that
    came first waits for its late start, and a re-sent event is a duplicate,
    as for a live lead."""
    r = Rig(wall=T0)
    r.live()
    old = T0 - 40 * D
    r.send("old", "lead.contact_attempt", old + 10 * S, "old-a")  # the follow-up first
    r.wall.now += 3 * S
    r.engine.tick()
    assert "old" in r.store  # not forgotten though its events are 40 days old
    r.send("old", "lead.handed_off", old, "old-h")  # its handoff, 10 s before it
    r.wall.now += 3 * S
    r.engine.tick()
    assert r.sink.summary() == [("old", "first_touch", "met")]
    r.send("old", "lead.contact_attempt", old + 10 * S, "old-a")  # re-sent
    assert r.sample("leadsla_events_duplicate_total") == 1.0
    # Forgotten once quiet for the TTL after its arrival (in watermark time).
    r.wall.now += 31 * D
    r.engine.tick()
    assert "old" not in r.store


def test_the_queue_puts_an_overdue_clock_before_at_risk_ones_with_later_deadlines() -> None:
    """A clock past its deadline that the lagging watermark has not flagged at
    risk yet still comes first: it is the most urgent there is."""
    two = """
policies:
  - {name: fast, start: lead.handed_off, stop: lead.contact_attempt, goal: 1h, at_risk: 0.9}
  - {name: slow, start: lead.qualified, stop: lead.accepted, goal: 10h, at_risk: 0.5}
"""
    r = Rig(two, wall=T0, allowed_lateness="15m")
    r.live()
    r.send("X", "lead.handed_off", T0 - 62 * M, "x-h")  # deadline T0 - 2 min; at risk at T0 - 8 min
    r.send("Y", "lead.qualified", T0 - 6 * H, "y-q")  # at risk since T0 - 1 h; deadline T0 + 4 h
    r.engine.tick()
    rows = r.engine.views.queue()["clocks"]
    assert [(c["lead_id"], c["policy"], c["at_risk"], c["overdue"]) for c in rows] == [
        ("X", "fast", False, True), ("Y", "slow", True, False)]
