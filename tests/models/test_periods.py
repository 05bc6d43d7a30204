"""Periods of delivery targets: month, ISO week and quarter, in a time zone,
with the contract's goal line (goal × d ÷ n)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadsla.models.periods import MONTH, QUARTER, WEEK, next_period, period_of
from tests.models.conftest import ts


@pytest.mark.parametrize(
    ("at", "kind", "zone", "label", "start", "days"),
    [
        ("2026-11-30T23:59:59Z", MONTH, "UTC", "2026-11", "2026-11-01T00:00:00Z", 30),
        ("2026-12-01T00:00:00Z", MONTH, "UTC", "2026-12", "2026-12-01T00:00:00Z", 31),
        ("2026-11-30T23:30:00Z", MONTH, "Europe/Berlin", "2026-12", "2026-11-30T23:00:00Z", 31),
        ("2028-02-15T12:00:00Z", MONTH, "UTC", "2028-02", "2028-02-01T00:00:00Z", 29),
        ("2026-11-30T12:00:00Z", WEEK, "UTC", "2026-W49", "2026-11-30T00:00:00Z", 7),
        ("2027-01-01T12:00:00Z", WEEK, "UTC", "2026-W53", "2026-12-28T00:00:00Z", 7),
        ("2026-11-30T12:00:00Z", QUARTER, "UTC", "2026-Q4", "2026-10-01T00:00:00Z", 92),
        ("2026-03-31T23:00:00Z", QUARTER, "America/New_York", "2026-Q1", "2026-01-01T05:00:00Z", 90),
    ],
)
def test_period_of(at: str, kind: str, zone: str, label: str, start: str, days: int) -> None:
    p = period_of(ts(at), kind, zone)
    assert (p.label, p.start_us, p.days) == (label, ts(start), days)
    assert p.start_us <= ts(at) < p.end_us


def test_a_dst_month_keeps_its_local_midnights() -> None:
    p = period_of(ts("2026-10-15T12:00:00Z"), MONTH, "Europe/Berlin")
    assert (p.start_us, p.end_us) == (ts("2026-09-30T22:00:00Z"), ts("2026-10-31T23:00:00Z"))
    assert p.day_of(ts("2026-10-31T22:59:59Z"), "Europe/Berlin") == 31


def test_goal_line_is_goal_times_day_over_days() -> None:
    p = period_of(ts("2026-11-10T09:00:00Z"))
    day = p.day_of(ts("2026-11-10T09:00:00Z"), "UTC")
    assert day == 10
    assert p.goal_line(100, day) == pytest.approx(100 * 10 / 30)
    assert p.goal_line(100, p.days) == 100


def test_unknown_period_kind() -> None:
    with pytest.raises(ValueError, match="unknown period 'year'"):
        period_of(0, "year")


@given(st.integers(ts("1990-01-01T00:00:00Z"), ts("2090-01-01T00:00:00Z")),
       st.sampled_from([MONTH, WEEK, QUARTER]), st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]))
def test_periods_tile_time(t_us: int, kind: str, zone: str) -> None:
    p = period_of(t_us, kind, zone)
    assert p.start_us <= t_us < p.end_us
    nxt = next_period(p, zone)
    assert nxt.start_us == p.end_us
    assert period_of(p.end_us - 1, kind, zone) == p
    assert 1 <= p.day_of(t_us, zone) <= p.days


# -- accountability (contract §9) ------------------------------------------------


def test_a_policy_level_is_met_at_its_objective_and_strikes_count_misses_in_a_row() -> None:
    from leadsla.models.periods import judge_policy

    v = judge_policy(19, 1, 0.95, 10, strikes_before=2, review_after=3, points=5)
    assert (v.met, v.judged, v.achieved, v.strikes, v.points, v.under_review) == (True, True, 0.95, 0, 5, False)
    v = judge_policy(18, 2, 0.95, 10, strikes_before=2, review_after=3, points=5)
    assert (v.met, v.strikes, v.points, v.under_review) == (False, 3, 0, True)
    assert judge_policy(18, 2, 0.95, 10, strikes_before=0, review_after=3, points=5).under_review is False


def test_too_few_decisions_are_not_judged_on_a_ratio() -> None:
    from leadsla.models.periods import judge_policy

    v = judge_policy(0, 3, 0.95, 10, strikes_before=2, review_after=3, points=5)
    # Not a miss (no strike, the run of misses ends) and no points either.
    assert (v.met, v.judged, v.achieved, v.strikes, v.points, v.under_review) == (True, False, 0.0, 0, 0, False)
    assert judge_policy(0, 0, 0.95, 1, 0, 3, 1).achieved is None


def test_a_target_needs_its_goal_and_its_value_goal() -> None:
    from leadsla.models.periods import judge_target

    assert judge_target(100, 4000, 100, 4000, 1, 3, 2).met is True
    assert judge_target(100, 3999, 100, 4000, 1, 3, 2).strikes == 2
    assert judge_target(99, 9999, 100, None, 2, 3, 2).under_review is True
    assert judge_target(100, 0, 100, None, 2, 3, 2).points == 2


def test_a_period_record_id_is_stable_and_distinct() -> None:
    from leadsla.models.periods import period_decision_id

    a = period_decision_id("policy", "first_touch", "emea", "2026-10")
    assert a == period_decision_id("policy", "first_touch", "emea", "2026-10")
    assert len({a, period_decision_id("policy", "first_touch", "emea", "2026-11"),
                period_decision_id("policy", "first_touch", "apac", "2026-10"),
                period_decision_id("target", "first_touch", "emea", "2026-10")}) == 4


def test_the_earliest_instant_an_event_may_carry_has_a_period_in_any_zone() -> None:
    from leadsla.models.events import MIN_TIMESTAMP_US

    p = period_of(MIN_TIMESTAMP_US + 600_000_000, "month", "America/New_York")
    assert (p.label, p.days) == ("0001-01", 31)


_ZONES = ["UTC", "Europe/Berlin", "America/New_York", "America/Goose_Bay", "Pacific/Apia", "Australia/Lord_Howe",
          "Asia/Kathmandu", "Pacific/Kiritimati"]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([MONTH, WEEK, QUARTER]),
    st.sampled_from(_ZONES),
    st.lists(st.integers(ts("2011-01-01T00:00:00Z"), ts("2028-01-01T00:00:00Z")), min_size=1, max_size=8),
    st.lists(st.integers(-3 * 86_400_000_000, 3 * 86_400_000_000), min_size=1, max_size=8),
)
def test_period_of_answers_as_from_the_local_date(kind: str, zone: str, starts: list[int], steps: list[int]) -> None:
    """period_of reuses the period it found last for an instant two days
    inside it; the answer is always the period of the instant's local date,
    across DST switches, period ends and zones that skipped a day (Apia) or
    moved their clocks at 00:01 (Goose Bay)."""
    from leadsla.models.periods import _local_date, _period

    for t0 in starts:
        t = t0
        for step in steps:
            t += step
            assert period_of(t, kind, zone) == _period(kind, zone, _local_date(t, zone))
