"""Periods of delivery targets: month, ISO week and quarter, in a time zone,
with the contract's goal line (goal × d ÷ n)."""

from __future__ import annotations

import pytest
from hypothesis import given
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
