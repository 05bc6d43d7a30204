"""models.funnel: the lead-goal calculator (exact ceilings, validation) and
the observed funnel with its first-touch revenue split, on hand-made events."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadsla.models.funnel import (
    BREACHED,
    DUPLICATE,
    MET,
    OPEN,
    OUT_OF_RANGE,
    UNTRACKED,
    FunnelBuilder,
    FunnelError,
    exact,
    first_outcome,
    lead_goal,
    observe,
    parse_instant,
)
from tests.models.conftest import MINIMAL_YAML, D, H, M, ev, pol, ts

T0 = ts("2026-11-02T09:00:00Z")

# -- the calculator ------------------------------------------------------------------


def test_the_guides_worked_example() -> None:
    g = lead_goal(5000, 1, 100, 0.5)
    assert (g.marketing_revenue_goal, g.customers_needed, g.leads_needed) == (5000, 50, 100)
    assert g.leads_per_day == Fraction(100, 30)
    assert g.as_dict() == {
        "quota": 5000, "marketing_share": 1, "deal_size": 100, "close_rate": 0.5, "days": 30,
        "marketing_revenue_goal": 5000, "customers_needed": 50, "leads_needed": 100,
        "leads_per_day": 100 / 30,
    }


@pytest.mark.parametrize(
    ("quota", "share", "deal", "rate", "customers", "leads"),
    [
        # In floats 0.3 * 1000 / 100 is 3.0000000000000004 and its ceiling 4.
        (1000, "0.3", 100, 1, 3, 3),
        (1000, 0.3, 100, 1, 3, 3),
        # 0.07 * 100 is 7.000000000000001 in floats.
        (100, "0.07", 1, 1, 7, 7),
        (100, 1, 1, 0.07, 100, 1429),
        # 3 / 0.3 is 10.000000000000002 in floats: 10 leads, not 11.
        (300, 1, 100, "0.3", 3, 10),
        (300, 1, 100, 0.3, 3, 10),
        (5001, 1, 100, 0.5, 51, 102),
        (1, 1, 1000, 1, 1, 1),  # a part of a customer is a whole customer
        ("12345.67", "0.6", "99.99", "0.125", 75, 600),
        (Decimal("1e6"), Fraction(1, 3), 7, Fraction(2, 3), 47620, 71430),
    ],
)
def test_ceilings_are_exact(quota: object, share: object, deal: object, rate: object, customers: int,
                            leads: int) -> None:
    g = lead_goal(quota, share, deal, rate)  # type: ignore[arg-type]
    assert (g.customers_needed, g.leads_needed) == (customers, leads)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 1, 1, 1), "quota: must be more than 0, got 0"),
        ((-5, 1, 1, 1), "quota: must be more than 0, got -5"),
        ((1, 0, 1, 1), "marketing_share: must be more than 0 and at most 1"),
        ((1, "1.01", 1, 1), "marketing_share: must be more than 0 and at most 1 (a fraction: 0.6 is 60 %), got 1.01"),
        ((1, 1, 0, 1), "deal_size: must be more than 0, got 0"),
        ((1, 1, 1, 0), "close_rate: must be more than 0 and at most 1"),
        ((1, 1, 1, 2), "close_rate: must be more than 0 and at most 1 (a fraction: 0.25 is 25 %), got 2"),
        ((1, 1, 1, 1, 0), "days: must be a whole number of days, 1 or more, got 0"),
        (("five", 1, 1, 1), "quota: must be a number, got 'five'"),
        (("nan", 1, 1, 1), "quota: must be a finite number"),
        ((float("inf"), 1, 1, 1), "quota: must be a finite number"),
        (("1e999999999", 1, 1, 1), "quota: must be between 1e-30 and 1e30 in size"),
        ((1, 1, 1, "1e-31"), "close_rate: must be between 1e-30 and 1e30 in size"),
        ((10**31, 1, 1, 1), "quota: must be between 1e-30 and 1e30 in size"),
        ((True, 1, 1, 1), "quota: must be a number"),
    ],
)
def test_bad_inputs_name_the_parameter(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(FunnelError) as info:
        lead_goal(*args)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)
    assert info.value.name == message.split(":")[0]


def test_a_float_means_the_decimal_it_prints_as() -> None:
    assert exact(0.1) == Fraction(1, 10)
    assert exact("  0.25 ") == Fraction(1, 4)
    assert exact(Decimal("1.5")) == Fraction(3, 2)


# Decimals as people write them: up to 4 places for rates, 2 for money.
rates = st.integers(1, 10_000).map(lambda n: Fraction(n, 10_000))
money = st.integers(1, 10**12).map(lambda n: Fraction(n, 100))


@given(quota=money, share=rates, deal=money, rate=rates, days=st.integers(1, 366))
def test_ceilings_are_enough_and_minimal(quota: Fraction, share: Fraction, deal: Fraction, rate: Fraction,
                                         days: int) -> None:
    g = lead_goal(quota, share, deal, rate, days)
    goal = quota * share
    assert g.marketing_revenue_goal == goal
    # Enough customers at this deal size, and one fewer would not be.
    assert g.customers_needed * deal >= goal
    assert (g.customers_needed - 1) * deal < goal
    # Enough leads at this close rate, and one fewer would not be.
    assert g.leads_needed * rate >= g.customers_needed
    assert (g.leads_needed - 1) * rate < g.customers_needed
    assert g.leads_per_day * days == g.leads_needed


@given(quota=money, share=rates, deal=money, rate=rates)
def test_text_float_and_fraction_inputs_agree(quota: Fraction, share: Fraction, deal: Fraction,
                                              rate: Fraction) -> None:
    def text(x: Fraction) -> str:
        return str(Decimal(x.numerator) / Decimal(x.denominator))

    by_fraction = lead_goal(quota, share, deal, rate)
    assert lead_goal(text(quota), text(share), text(deal), text(rate)) == by_fraction
    assert lead_goal(float(text(quota)), float(text(share)), float(text(deal)), float(text(rate))) == by_fraction


def test_range_bounds() -> None:
    assert parse_instant("2026-11-01") == ts("2026-11-01T00:00:00Z")
    assert parse_instant("2026-11-01T01:00:00+01:00") == ts("2026-11-01T00:00:00Z")
    with pytest.raises(FunnelError, match=r"--from: expected YYYY-MM-DD \(UTC\) or an RFC 3339 timestamp"):
        parse_instant("2026-11-01T00:00:00", "--from")  # no offset
    with pytest.raises(FunnelError):
        parse_instant("2026-13-01")


# -- the observed funnel -------------------------------------------------------------

FT = pol(MINIMAL_YAML)


def test_the_funnels_figures() -> None:
    events = [
        # m1: marketing customer, two wins (amounts add up), cycle 2 days to the first win.
        ev("lead.created", T0, "m1-a", "m1", source="marketing"),
        ev("deal.won", T0 + 2 * D, "m1-b", "m1", amount=1000.5),
        ev("deal.won", T0 + 3 * D, "m1-c", "m1", amount=500),
        # m2: marketing lead by a later event only; won after 4 days.
        ev("lead.created", T0, "m2-a", "m2"),
        ev("lead.mql", T0 + D, "m2-b", "m2", source="marketing"),
        ev("deal.won", T0 + 4 * D, "m2-c", "m2", amount=0.1),
        # m3: marketing lead, never won.
        ev("lead.created", T0, "m3-a", "m3", source="marketing"),
        # s1: sales-sourced win.
        ev("lead.created", T0, "s1-a", "s1", source="sales"),
        ev("deal.won", T0 + D, "s1-b", "s1", amount=2000),
    ]
    f = observe(events)
    assert (f.events, f.leads, f.marketing_leads, f.customers, f.won_leads) == (9, 4, 3, 2, 3)
    assert f.marketing_won == Fraction("1500.6")
    assert f.won == Fraction("3500.6")
    assert f.close_rate == Fraction(2, 3)
    assert f.average_deal_size == Fraction("750.3")
    assert f.marketing_revenue_share == Fraction("1500.6") / Fraction("3500.6")
    assert f.sales_cycle_days == 3
    assert f.first_touch is None
    g = f.next_period()
    assert g.quota == Fraction("3500.6")
    assert g.customers_needed == math.ceil(Fraction("1500.6") / Fraction("750.3"))  # 2
    assert g.leads_needed == 3


def test_duplicates_count_once_and_the_range_is_half_open() -> None:
    b = FunnelBuilder(start_us=T0, end_us=T0 + D)
    assert b.add(ev("lead.created", T0 - 1, "a", "x", source="marketing")) == OUT_OF_RANGE
    assert b.add(ev("lead.created", T0, "b", "y", source="marketing")) == "counted"
    assert b.add(ev("deal.won", T0 + D - 1, "c", "y", amount=5)) == "counted"
    assert b.add(ev("deal.won", T0 + D - 1, "c", "y", amount=5)) == DUPLICATE
    # The first of an id counts, whatever the repeat says.
    assert b.add(ev("deal.won", T0 + 1, "c", "y", amount=99)) == DUPLICATE
    assert b.add(ev("deal.won", T0 + D, "d", "y", amount=7)) == OUT_OF_RANGE
    f = b.result()
    assert (f.events, f.duplicates, f.out_of_range, f.leads, f.customers, f.won) == (2, 2, 2, 1, 1, 5)
    # x's only event was out of range: x is no lead of this range.
    assert f.marketing_leads == 1


def test_an_empty_funnel_has_no_ratios_and_no_goal() -> None:
    f = observe([ev("lead.created", T0, "a", "x", source="sales")])
    assert (f.close_rate, f.average_deal_size, f.marketing_revenue_share, f.sales_cycle_days) == (None,) * 4
    with pytest.raises(FunnelError, match="no marketing leads"):
        f.next_period()
    f = observe([ev("lead.created", T0, "a", "x", source="marketing")])
    assert f.close_rate == 0
    with pytest.raises(FunnelError, match="no marketing lead won a deal"):
        f.next_period(quota=1000)
    f = observe([ev("deal.won", T0, "a", "x", source="marketing")])  # no amount
    with pytest.raises(FunnelError, match="carry no amount"):
        f.next_period()


def test_next_period_with_a_quota() -> None:
    f = observe([
        ev("lead.created", T0, "a", "x", source="marketing"),
        ev("lead.created", T0, "b", "y", source="marketing"),
        ev("deal.won", T0 + H, "c", "y", amount=100),
    ])
    g = f.next_period(quota=5000, days=10)
    assert (g.close_rate, g.deal_size, g.marketing_share) == (Fraction(1, 2), 100, 1)
    assert (g.customers_needed, g.leads_needed, g.leads_per_day) == (50, 100, 10)


# -- first touch -----------------------------------------------------------------------


def _lead(lead: str, *events: tuple[str, int]) -> list[object]:
    return [ev(t, at, f"{lead}-{i}", lead) for i, (t, at) in enumerate(events)]


@pytest.mark.parametrize(
    ("events", "watermark", "expected"),
    [
        ([("lead.handed_off", T0), ("lead.contact_attempt", T0 + 30 * M)], T0 + D, MET),
        ([("lead.handed_off", T0), ("lead.contact_attempt", T0 + H)], T0 + D, MET),  # at the deadline: met
        ([("lead.handed_off", T0), ("lead.contact_attempt", T0 + H + 1)], T0 + D, BREACHED),
        ([("lead.handed_off", T0)], T0 + D, BREACHED),  # never touched: the watermark passes the deadline
        ([("lead.handed_off", T0)], T0 + 30 * M, OPEN),  # still within the goal at the end
        ([("lead.created", T0), ("deal.won", T0 + D)], T0 + D, UNTRACKED),  # no handoff
        ([("lead.contact_attempt", T0)], T0 + D, UNTRACKED),  # a stop with no clock
        # In arrival order the touch comes first; in event time the handoff does.
        ([("lead.contact_attempt", T0 + 10 * M), ("lead.handed_off", T0)], T0 + D, MET),
        # Only the first clock counts: a second handoff breached later changes nothing.
        ([("lead.handed_off", T0), ("lead.connected", T0 + M), ("lead.handed_off", T0 + D)], T0 + 3 * D, MET),
        ([("lead.handed_off", T0), ("lead.handed_off", T0 + 2 * H), ("lead.connected", T0 + 2 * H + M)],
         T0 + 3 * D, BREACHED),
    ],
)
def test_first_touch_outcome(events: list[tuple[str, int]], watermark: int, expected: str) -> None:
    assert first_outcome("L", _lead("L", *events), FT, "first_touch", watermark) == expected  # type: ignore[arg-type]


def test_revenue_split_by_first_touch() -> None:
    events = [
        *_lead("met", ("lead.handed_off", T0), ("lead.contact_attempt", T0 + M)),
        ev("deal.won", T0 + D, "met-w", "met", amount=100, source="marketing"),
        *_lead("late", ("lead.handed_off", T0), ("lead.contact_attempt", T0 + 2 * H)),
        ev("deal.won", T0 + D, "late-w", "late", amount=40),
        *_lead("open", ("lead.handed_off", T0 + 5 * D)),
        ev("deal.won", T0 + 5 * D + M, "open-w", "open", amount=2.5),
        ev("deal.won", T0 + D, "none-w", "none", amount=7),
        *_lead("lost", ("lead.handed_off", T0)),  # breached, but never won: no revenue
    ]
    # The range ends 30 minutes after the last handoff: its clock is open.
    f = observe(events, end_us=T0 + 5 * D + 30 * M, policies=FT)
    ft = f.first_touch
    assert ft is not None
    assert (ft.met, ft.breached, ft.open, ft.untracked) == (100, 40, Fraction("2.5"), 7)
    assert ft.leads == {MET: 1, BREACHED: 1, OPEN: 1, UNTRACKED: 1}
    assert ft.met + ft.breached + ft.open + ft.untracked == f.won
    # Judged later, the open clock is breached.
    later = observe(events, end_us=T0 + 6 * D, policies=FT).first_touch
    assert later is not None and (later.breached, later.open) == (Fraction("42.5"), 0)


def test_business_hours_come_from_the_policy() -> None:
    office = pol("""
        calendars:
          office: {timezone: UTC, hours: {mon-fri: "09:00-17:00"}}
        policies:
          - name: fast
            calendar: office
            start: lead.handed_off
            stop: lead.contact_attempt
            goal: 1h
    """)
    friday_evening = ts("2026-11-06T16:30:00Z")
    events = _lead("L", ("lead.handed_off", friday_evening), ("lead.contact_attempt", ts("2026-11-09T09:20:00Z")))
    assert first_outcome("L", events, office, "fast", ts("2026-11-10T00:00:00Z")) == MET  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        FunnelBuilder(policies=office, policy="first_touch")
