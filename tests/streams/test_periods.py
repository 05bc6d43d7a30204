"""Periods and accountability at run time (contract §9): partitions report
their share of each period once their closed time passes its end; the ledger
judges a period once every partition is closed through it, carries strikes and
points, and publishes one record per level and period."""

from __future__ import annotations

import zlib
from typing import Any

import orjson

from leadsla.streams.ledger import Ledger
from leadsla.streams.metrics import LedgerCollector
from tests.models.conftest import D, H, M, ts

from .conftest import Rig, S

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
SEP, OCT, NOV = ts("2026-09-01T00:00:00Z"), ts("2026-10-01T00:00:00Z"), ts("2026-11-01T00:00:00Z")
NOW = NOV + 9 * D  # 10 November


class Reports:
    """Carries the reports a rig's engine sent to a ledger, as the topic
    would: a keyed record to the partition its key hashes to, a
    closed-through report to the partition it names, in send order."""

    def __init__(self, rig: Rig, partitions: int = 2) -> None:
        self.rig = rig
        self.partitions = partitions
        self.store: dict[str, Any] = {}
        self.ledger = Ledger(rig.policies, self.store, rig.sink, partitions, rig.wall)
        self.seen = 0

    def deliver(self) -> None:
        reports = self.rig.sink.reports
        for key, value, partition in reports[self.seen:]:
            tp = partition if partition is not None else zlib.crc32(key.encode()) % self.partitions
            self.ledger.handle(tp, key.encode(), value)
        self.seen = len(reports)

    def records(self) -> list[dict[str, Any]]:
        return [orjson.loads(v) for _, v in self.rig.sink.periods]


def _history(r: Rig) -> None:
    # emea misses September and October (one of two met is 0.5: met; none is a miss).
    for month, outcomes in ((SEP, ("breached", "breached")), (OCT, ("breached", "met"))):
        for i, outcome in enumerate(outcomes):
            lead = f"e-{month}-{i}"
            at = month + 3 * D + i * H
            r.send(lead, "lead.handed_off", at, f"{lead}-h", team="emea", partition=i % 2)
            if outcome == "met":
                r.send(lead, "lead.contact_attempt", at + 10 * M, f"{lead}-c", partition=i % 2)
    # October for emea: a third, breached: 1 met of 3 is below 0.5.
    r.send("e-oct-3", "lead.handed_off", OCT + 20 * D, "e-oct-3-h", team="emea", partition=1)
    # apac: a single met lead in September, below min_decisions.
    r.send("a-sep", "lead.handed_off", SEP + 5 * D, "a-sep-h", team="apac", partition=0)
    r.send("a-sep", "lead.contact_attempt", SEP + 5 * D + M, "a-sep-c", partition=0)
    # Marketing delivers 2 in September (met), 1 in October (missed).
    r.send("m1", "lead.mql", SEP + D, "m1", partition=0)
    r.send("m2", "lead.mql", SEP + 2 * D, "m2", partition=1)
    r.send("m3", "lead.mql", OCT + 2 * D, "m3", partition=1)


def _replay() -> tuple[Rig, Reports]:
    r = Rig(POLICIES, wall=NOW, partitions=2)
    rep = Reports(r)
    _history(r)
    r.live(0)
    r.live(1)
    for _ in range(3):
        r.wall.now += S
        r.engine.tick()
        rep.deliver()
    return r, rep


def _by(records: list[dict[str, Any]]) -> dict[tuple[str, str | None, str], dict[str, Any]]:
    return {(x["name"], x["team"], x["period"]): x for x in records}


def test_a_backlog_replay_judges_each_past_period_once_in_order() -> None:
    r, rep = _replay()
    got = _by(rep.records())
    assert sorted(got) == [
        ("first_touch", "apac", "2026-09"),
        ("first_touch", "emea", "2026-09"),
        ("first_touch", "emea", "2026-10"),
        ("mqls", None, "2026-09"),
        ("mqls", None, "2026-10"),
    ]  # November is still running: not judged
    sep = got[("first_touch", "emea", "2026-09")]
    assert (sep["met"], sep["judged"], sep["achieved"], sep["strikes"], sep["under_review"]) == (False, True, 0.0, 1, False)
    assert (sep["decided"], sep["met_clocks"], sep["breached_clocks"], sep["objective"]) == (2, 0, 2, 0.5)
    assert (sep["kind"], sep["period_start"], sep["period_end"]) == ("policy", "2026-09-01T00:00:00Z",
                                                                      "2026-10-01T00:00:00Z")
    oct_ = got[("first_touch", "emea", "2026-10")]
    assert (oct_["met"], oct_["achieved"], oct_["strikes"], oct_["under_review"]) == (False, 1 / 3, 2, True)
    apac = got[("first_touch", "apac", "2026-09")]
    assert (apac["met"], apac["judged"], apac["strikes"], apac["points"]) == (True, False, 0, 0)
    m_sep, m_oct = got[("mqls", None, "2026-09")], got[("mqls", None, "2026-10")]
    assert (m_sep["kind"], m_sep["achieved"], m_sep["goal"], m_sep["met"], m_sep["points"]) == ("target", 2, 2, True, 1)
    assert (m_oct["achieved"], m_oct["met"], m_oct["strikes"], m_oct["points_total"]) == (1, False, 1, 1)
    # Re-sent or not, a record's id is the same; every record has its own.
    assert len({x["decision_id"] for x in rep.records()}) == 5


def test_strikes_review_and_points_are_metrics() -> None:
    r, rep = _replay()
    collector = LedgerCollector(lambda: rep.ledger.levels({0, 1}), lambda: rep.ledger.late_partials,
                                rep.ledger.points_team)
    r.registry.register(collector)

    def v(metric: str, **labels: str) -> float | None:
        return r.registry.get_sample_value(metric, labels)

    assert v("leadsla_period_strikes", kind="policy", name="first_touch", team="emea") == 2
    assert v("leadsla_period_under_review", kind="policy", name="first_touch", team="emea") == 1
    assert v("leadsla_period_met", kind="policy", name="first_touch", team="emea") == 0
    assert v("leadsla_period_achieved", kind="policy", name="first_touch", team="emea") == 1 / 3
    assert v("leadsla_period_strikes", kind="policy", name="first_touch", team="apac") == 0
    assert v("leadsla_period_strikes", kind="target", name="mqls", team="") == 1
    assert v("leadsla_team_points", team="marketing") == 1
    assert v("leadsla_team_points", team="apac") == 0  # its only period was not judged
    # A worker shows only the levels of the report partitions it owns.
    r2 = Rig(POLICIES, wall=NOW, partitions=2)
    r2.registry.register(LedgerCollector(lambda: rep.ledger.levels(set()), lambda: 0, rep.ledger.points_team))
    assert r2.registry.get_sample_value("leadsla_period_strikes",
                                        {"kind": "policy", "name": "first_touch", "team": "emea"}) is None


def test_a_period_waits_for_every_partition() -> None:
    r = Rig(POLICIES, wall=NOW, partitions=2)
    rep = Reports(r)
    _history(r)
    r.live(0)  # partition 1 is still reading its backlog, far behind
    r.hw[1] = 1000
    r.wall.now += S
    r.engine.tick()
    rep.deliver()
    # Partition 1's backlog reached late October: September is closed everywhere, October not yet.
    assert sorted((x["name"], x["period"]) for x in rep.records()) == [
        ("first_touch", "2026-09"), ("first_touch", "2026-09"), ("mqls", "2026-09")]
    r.live(1)
    r.wall.now += S
    r.engine.tick()
    rep.deliver()
    assert len(rep.records()) == 5


def test_re_sent_reports_change_nothing_and_a_late_share_is_counted_not_judged() -> None:
    r, rep = _replay()
    before = rep.records()
    # A restart: the runtime is rebuilt from the changelogs and reports everything again.
    r.engine.rebuild([0, 1], {0: r.next_offset[0], 1: r.next_offset[1]})
    r.wall.now += S
    r.engine.tick()
    rep.deliver()
    assert rep.records() == before
    assert rep.ledger.late_partials > 0
    # A decision that comes after its period was judged does not re-judge it.
    late = rep.ledger.late_partials
    r.send("x", "lead.handed_off", OCT + 25 * D, "x-h", team="emea", partition=0)
    r.wall.now += 5 * S  # a late start is judged one allowed lateness after it arrived
    r.engine.tick()
    assert ("x", "first_touch", "breached") in r.sink.summary()
    rep.deliver()
    assert [x for x in rep.records() if x["period"] == "2026-10" and x["team"] == "emea"] == \
        [x for x in before if x["period"] == "2026-10" and x["team"] == "emea"]
    assert rep.ledger.late_partials > late


def test_period_cells_survive_a_restart_through_their_changelog() -> None:
    r = Rig(POLICIES, wall=NOW, partitions=2)
    _history(r)
    r.live(0)
    r.live(1)
    r.wall.now += S
    r.engine.tick()
    cells = {k: list(v) for k, v in r.period_store.items()}
    assert sum(v[1] for k, v in cells.items() if k.startswith("first_touch|2026-10|")) == 2
    assert sum(v[0] for k, v in cells.items() if k.startswith("first_touch|2026-10|")) == 1
    # What the sink wrote to the changelog is what the table holds.
    written: dict[str, Any] = {}
    for _, key, value in r.sink.period_cells:
        written[key] = value
    assert {k: v for k, v in written.items() if v is not None} == cells
    r2 = Rig(POLICIES, wall=r.wall.now, partitions=2, store=r.store, period_store=dict(cells),
             delivery_store=dict(r.delivery_store))
    r2.live(0)
    r2.live(1)
    got = {k: list(v) for rt in r2.engine.runtimes.values() for k, v in rt.period_cells.items()}
    want = {k: list(v) for rt in r.engine.runtimes.values() for k, v in rt.period_cells.items()}
    assert got == want


def test_a_correction_turns_a_breach_into_a_met_clock_in_the_breach_period() -> None:
    r = Rig(POLICIES, wall=OCT + 10 * D, partitions=2)
    r.live(0)
    t = OCT + 10 * D - 3 * H
    r.send("c", "lead.handed_off", t, "c-h", team="emea")
    r.wall.now += 5 * S
    r.engine.tick()  # breached at t + 1h, one allowed lateness after the handoff arrived
    cell = next(v for k, v in r.engine.runtimes[0].period_cells.items() if k[:3] == ("first_touch", "emea", "2026-10"))
    assert cell == [0, 1]
    r.send("c", "lead.contact_attempt", t + 30 * M, "c-c")  # far too late to count but dated in time: a correction
    outcomes = [x["outcome"] for x in r.sink.records()]
    assert outcomes == ["breached", "corrected"]
    assert cell == [1, 0]


def _ledger_alone() -> tuple[Ledger, Any, dict[str, Any]]:
    r = Rig(POLICIES, wall=NOW, partitions=2)
    store: dict[str, Any] = {}
    return Ledger(r.policies, store, r.sink, 2, r.wall), r.sink, store


def _share(end: int, partition: int, met: int, breached: int, label: str = "2026-10") -> bytes:
    return orjson.dumps({"period": label, "start": OCT, "end": end, "partition": partition, "met": met,
                         "breached": breached})


def test_a_first_share_after_every_partition_closed_is_judged_at_once() -> None:
    ledger, sink, _ = _ledger_alone()
    for p in (0, 1):
        ledger.handle(0, b"~closed|0", orjson.dumps({"partition": p, "closed": NOV + H}))
    assert sink.periods == []
    assert ledger.handle(0, b"policy|first_touch|emea", _share(NOV, 1, 3, 0)) == 1
    (name, value), = sink.periods
    rec = orjson.loads(value)
    assert (name, rec["team"], rec["period"], rec["met"], rec["decided"]) == ("first_touch", "emea", "2026-10", True, 3)
    # Judged once: the other partition's share, later still, is dropped and counted.
    assert ledger.handle(0, b"policy|first_touch|emea", _share(NOV, 0, 0, 9)) == 0
    assert len(sink.periods) == 1 and ledger.late_partials == 1


def test_a_period_is_judged_when_the_last_partition_closes_it_not_before() -> None:
    ledger, sink, store = _ledger_alone()
    ledger.handle(1, b"policy|first_touch|emea", _share(NOV, 0, 1, 1))
    ledger.handle(1, b"~closed|1", orjson.dumps({"partition": 0, "closed": NOV + H}))
    ledger.handle(1, b"policy|first_touch|emea", _share(NOV, 1, 1, 0))
    ledger.handle(1, b"~closed|1", orjson.dumps({"partition": 1, "closed": NOV - H}))  # not yet past the end
    assert sink.periods == [] and ledger.low_watermark(1) == NOV - H
    ledger.handle(1, b"~closed|1", orjson.dumps({"partition": 1, "closed": NOV}))
    rec = orjson.loads(sink.periods[0][1])
    assert (rec["met_clocks"], rec["breached_clocks"], rec["achieved"]) == (2, 1, 2 / 3)
    # A closed-through time never goes back (a worker taking a partition over starts lower).
    ledger.handle(1, b"~closed|1", orjson.dumps({"partition": 1, "closed": NOV - 5 * D}))
    assert store["~closed|1"]["closed"]["1"] == NOV


def test_a_malformed_report_is_skipped_and_logged_without_its_content(caplog: Any) -> None:
    ledger, sink, store = _ledger_alone()
    assert ledger.handle(0, b"policy|first_touch|emea", b"{not json lead-42") == 0
    assert ledger.handle(0, b"nokind", _share(NOV, 0, 1, 0)) == 0
    assert store == {} and sink.periods == []
    assert all("lead-42" not in r.getMessage() for r in caplog.records)
    assert sum("malformed period report" in r.getMessage() for r in caplog.records) == 2
