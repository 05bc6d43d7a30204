"""Delivery targets at run time: day cells per partition in a changelog-backed
table, the contract's gauges for the current period, the waterfall by day,
the forecast, and exact recovery after a restart."""

from __future__ import annotations

import copy

from tests.models.conftest import D, H, ts

from .conftest import MINIMAL_YAML, Rig, S, record

TARGETS = MINIMAL_YAML + """
targets:
  - name: mql_volume
    deliver: lead.mql
    goal: 90
    value: {by: persona, weights: {executive: 100, director: 50}, default: 10}
    value_goal: 3000
"""
NOV = ts("2026-11-01T00:00:00Z")
NOW = NOV + 9 * D + 12 * H  # 10 November, noon: day 10 of 30


def _rig(**kw: object) -> Rig:
    r = Rig(TARGETS, wall=NOW, **kw)  # type: ignore[arg-type]
    r.live(0)
    r.live(1)
    return r


def _deliver(r: Rig) -> None:
    r.send("A", "lead.mql", NOV + 1 * H, "a1", persona="executive", partition=0)  # day 1
    r.send("A", "lead.mql", NOV + 2 * D, "a2", persona="director", partition=0)  # the same lead again: once
    r.send("B", "lead.mql", NOV + 2 * D, "b1", persona="director", partition=1)  # day 3
    r.send("C", "lead.mql", NOV + 9 * D, "c1", partition=1)  # day 10, default value
    r.send("D", "lead.mql", NOV - H, "d1", partition=0)  # October: another period
    r.wall.now += S
    r.engine.tick()


def test_the_current_period_gauges_add_up_the_partitions() -> None:
    r = _rig()
    _deliver(r)
    v = r.sample
    assert v("leadsla_target_delivered", target="mql_volume") == 3
    assert v("leadsla_target_value_delivered", target="mql_volume") == 160
    assert v("leadsla_target_goal", target="mql_volume") == 90
    assert v("leadsla_target_value_goal", target="mql_volume") == 3000
    assert v("leadsla_target_goal_line", target="mql_volume") == 30  # 90 x 10 / 30
    assert v("leadsla_target_period_day", target="mql_volume") == 10
    assert v("leadsla_target_period_days", target="mql_volume") == 30
    # 3 leads in 9.5 days (and a second): at that pace, 3 x 30 days / 9.5 days by the end of November
    elapsed = r.wall.now - NOV
    assert abs(v("leadsla_target_forecast", target="mql_volume") - 3 * 30 * D / elapsed) < 1e-9
    cumulative = [v("leadsla_target_delivered_cumulative", target="mql_volume", day=str(d)) for d in range(1, 12)]
    assert cumulative == [1, 1, 2, 2, 2, 2, 2, 2, 2, 3, None]  # no point for a day still to come
    assert v("leadsla_target_goal_line_cumulative", target="mql_volume", day="30") == 90


def test_a_restart_recovers_the_cells_exactly() -> None:
    r1 = _rig()
    _deliver(r1)
    assert sorted(r1.delivery_store) == sorted(key for _, key, _ in r1.sink.deliveries)
    r2 = Rig(TARGETS, wall=r1.wall.now, delivery_store=copy.deepcopy(r1.delivery_store))
    r2.engine.rebuild([0, 1], {0: 0, 1: 0})
    for name in ("leadsla_target_delivered", "leadsla_target_value_delivered", "leadsla_target_forecast"):
        assert r2.sample(name, target="mql_volume") == r1.sample(name, target="mql_volume")


def test_cells_of_periods_past_the_previous_one_are_dropped() -> None:
    r = _rig()
    _deliver(r)
    r.wall.now = ts("2027-01-02T00:00:00Z")  # November's period ended before December did
    r.engine.tick()
    assert all(key.split("|")[1] not in ("2026-10", "2026-11") for key in r.delivery_store)
    assert (0, "mql_volume|2026-10|" + str(ts("2026-10-01T00:00:00Z")) + "|31|0", None) in r.sink.deliveries
    assert r.sample("leadsla_target_delivered", target="mql_volume") == 0


def test_a_lost_partition_takes_its_cells_along() -> None:
    r = _rig()
    _deliver(r)
    r.engine.keep_only([0])
    assert all(key.endswith("|0") for key in r.delivery_store)
    assert r.sample("leadsla_target_delivered", target="mql_volume") == 1


def test_a_duplicate_delivers_nothing() -> None:
    r = _rig()
    key, value = record("A", "lead.mql", NOV + H, "a1")
    r.engine.handle(0, 0, key, value)
    r.engine.handle(0, 1, key, value)
    r.wall.now += S
    r.engine.tick()
    assert r.sample("leadsla_target_delivered", target="mql_volume") == 1


def test_each_depth_policy_exports_its_min_attempts() -> None:
    r = Rig(TARGETS + "", wall=NOW)
    assert r.sample("leadsla_followup_min_attempts", policy="first_touch") is None
    depth = Rig("""
policies:
  - {name: follow_up_depth, start: lead.handed_off, attempt: lead.contact_attempt, min_attempts: 6,
     stop: lead.connected, goal: 5d}
""", wall=NOW)
    assert depth.sample("leadsla_followup_min_attempts", policy="follow_up_depth") == 6
