"""Marketing's side of the SLA in numbers: the lead-goal calculator and the
observed funnel it is recalibrated from (contract §10).

Everything here is exact. Money, shares and rates are ``Fraction``s: a
ceiling taken on binary floating point can land one above the truth
(``0.3 * 1000 / 100`` is ``3.0000000000000004`` in floats, so a float ceiling
says 4 customers where 3 are needed). A float that comes in is read as the
decimal it prints as (``0.3`` means three tenths), which is what a person or
a JSON document wrote.

Pure: no I/O, no wall clock. ``leadsla calculate`` and ``leadsla
recalibrate`` (``streams/cli.py``, ``streams/history.py``) do the reading and
printing.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from leadsla.models.clock import LeadState, advance, apply, open_clocks
from leadsla.models.events import EventType, LeadEvent, parse_timestamp_us
from leadsla.models.policy import PolicySet

Number = int | float | str | Decimal | Fraction

DEFAULT_DAYS = 30
# Inputs are refused beyond these magnitudes: a Decimal such as 1e999999999
# would otherwise become an integer of a billion digits.
MAX_MAGNITUDE = 10**30
_DAY_US = 86_400_000_000
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)

_WON = EventType.DEAL_WON


class FunnelError(ValueError):
    """A value the calculator cannot use. ``name`` is the parameter
    (``quota``, ``marketing_share``, ``deal_size``, ``close_rate``, ``days``)
    and ``problem`` what is wrong with it; ``str()`` is ``name: problem``."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


def exact(value: Number, name: str = "value") -> Fraction:
    """``value`` as an exact ``Fraction``.

    Text is read as a decimal number (``"0.3"``, ``"5000"``, ``"1e3"``); a
    float as the decimal its ``repr`` shows (``0.3`` -> 3/10, not the binary
    neighbour). Raises ``FunnelError(name, …)`` for text that is not a
    number, for NaN and infinities, and for magnitudes above 1e30 or non-zero
    ones below 1e-30.
    """
    if isinstance(value, bool):
        raise FunnelError(name, f"must be a number, got {value!r}")
    if isinstance(value, float | str):
        text = repr(value) if isinstance(value, float) else value.strip()
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise FunnelError(name, f"must be a number, got {str(value)!r}") from None
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise FunnelError(name, f"must be a finite number, got {value}")
        # Checked on the exponent before the exact value is built (see MAX_MAGNITUDE).
        if not value.is_zero() and not -30 <= value.adjusted() <= 30:
            raise FunnelError(name, f"must be between 1e-30 and 1e30 in size, got {value}")
    out = Fraction(value)
    if abs(out) > MAX_MAGNITUDE or (out and abs(out) < Fraction(1, MAX_MAGNITUDE)):
        raise FunnelError(name, f"must be between 1e-30 and 1e30 in size, got {float(out):g}")
    return out


def ceil_div(numerator: Fraction | int, denominator: Fraction | int) -> int:
    """⌈numerator ÷ denominator⌉, exactly. ``denominator`` must not be 0."""
    return math.ceil(Fraction(numerator) / Fraction(denominator))


def number(x: Fraction | int) -> int | float:
    """A JSON-friendly number: an ``int`` when ``x`` is whole, else the
    nearest float."""
    x = Fraction(x)
    return x.numerator if x.denominator == 1 else float(x)


@dataclass(frozen=True, slots=True)
class LeadGoal:
    """The calculator's result: contract §10's formulas and their inputs.

    Money (``quota``, ``deal_size``, ``marketing_revenue_goal``) is in the
    quota's currency; ``marketing_share`` and ``close_rate`` are fractions
    in (0, 1]; ``days`` is the period's length; ``leads_per_day`` is leads
    per calendar day of the period, exact (not rounded).
    """

    quota: Fraction
    marketing_share: Fraction
    deal_size: Fraction
    close_rate: Fraction
    days: int
    marketing_revenue_goal: Fraction  # quota × share
    customers_needed: int  # ⌈goal ÷ deal size⌉
    leads_needed: int  # ⌈customers ÷ close rate⌉
    leads_per_day: Fraction  # leads ÷ days

    def as_dict(self) -> dict[str, int | float]:
        """The figures and inputs as JSON numbers (``int`` where whole, ``float`` otherwise)."""
        return {
            "quota": number(self.quota),
            "marketing_share": number(self.marketing_share),
            "deal_size": number(self.deal_size),
            "close_rate": number(self.close_rate),
            "days": self.days,
            "marketing_revenue_goal": number(self.marketing_revenue_goal),
            "customers_needed": self.customers_needed,
            "leads_needed": self.leads_needed,
            "leads_per_day": number(self.leads_per_day),
        }


def lead_goal(
    quota: Number, marketing_share: Number, deal_size: Number, close_rate: Number, days: int = DEFAULT_DAYS
) -> LeadGoal:
    """Marketing's lead goal from the sales quota (contract §10).

    - marketing revenue goal = quota × marketing_share
    - customers needed = ⌈quota × marketing_share ÷ deal_size⌉
    - leads needed = ⌈customers needed ÷ close_rate⌉
    - leads per day = leads needed ÷ days

    ``quota`` (revenue for the period) and ``deal_size`` (average revenue per
    won customer) must be positive, in one currency; ``marketing_share`` (the
    part of the quota marketing's leads bring) and ``close_rate`` (won
    customers per lead) in (0, 1]; ``days`` a whole number ≥ 1. Numbers are
    read by :func:`exact`. Raises :class:`FunnelError` naming the first bad
    parameter.

    >>> g = lead_goal(5000, 1, 100, "0.5")
    >>> (g.customers_needed, g.leads_needed)
    (50, 100)
    """
    q = exact(quota, "quota")
    s = exact(marketing_share, "marketing_share")
    d = exact(deal_size, "deal_size")
    r = exact(close_rate, "close_rate")
    if q <= 0:
        raise FunnelError("quota", f"must be more than 0, got {_show(q)}")
    if not 0 < s <= 1:
        raise FunnelError("marketing_share", f"must be more than 0 and at most 1 (a fraction: 0.6 is 60 %), got {_show(s)}")
    if d <= 0:
        raise FunnelError("deal_size", f"must be more than 0, got {_show(d)}")
    if not 0 < r <= 1:
        raise FunnelError("close_rate", f"must be more than 0 and at most 1 (a fraction: 0.25 is 25 %), got {_show(r)}")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise FunnelError("days", f"must be a whole number of days, 1 or more, got {days!r}")
    goal = q * s
    customers = ceil_div(goal, d)
    leads = ceil_div(customers, r)
    return LeadGoal(q, s, d, r, days, goal, customers, leads, Fraction(leads, days))


def _show(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{float(x):g}"


def parse_instant(text: str, name: str = "date") -> int:
    """A range bound: ``YYYY-MM-DD`` (that day's 00:00 UTC) or an RFC 3339
    timestamp with an offset. Returns epoch microseconds (UTC). Raises
    ``FunnelError(name, …)`` for anything else."""
    text = text.strip()
    if _DATE.fullmatch(text):
        text += "T00:00:00Z"
    try:
        return parse_timestamp_us(text)
    except ValueError:
        raise FunnelError(name, f"expected YYYY-MM-DD (UTC) or an RFC 3339 timestamp such as "
                                f"2026-11-01T00:00:00Z, got {text!r}") from None


# -- the observed funnel ----------------------------------------------------------

COUNTED, DUPLICATE, OUT_OF_RANGE = "counted", "duplicate", "out_of_range"
MET, BREACHED, OPEN, UNTRACKED = "met", "breached", "open", "untracked"


def money(amount: float | None) -> Fraction:
    """An event's ``amount`` as an exact decimal (None counts as 0)."""
    return Fraction(0) if amount is None else Fraction(Decimal(repr(amount)))


@dataclass(frozen=True, slots=True)
class FirstTouchRevenue:
    """Won revenue split by how a lead's first clock of ``policy`` ended:
    ``met``/``breached`` by the first decided cycle, ``open`` when a cycle
    began and was still running at the end of the replay, ``untracked`` when
    none began (no handoff in the range, or one the policy does not match).
    The four amounts add up to the range's whole won revenue; ``leads``
    counts the won leads in each group, by the same keys."""

    policy: str
    met: Fraction
    breached: Fraction
    open: Fraction
    untracked: Fraction
    leads: dict[str, int]


@dataclass(frozen=True, slots=True)
class Funnel:
    """What the history of ``lead-events`` shows for one range of event time.

    Counts are distinct leads or events; money is the sum of ``deal.won``
    ``amount``s as written (currencies are not converted); instants are
    epoch µs. The ratios are ``None`` where their denominator is 0.
    """

    start_us: int | None  # the range's first instant (inclusive), None: no bound
    end_us: int | None  # the range's end (exclusive), None: no bound
    events: int  # distinct events in the range
    duplicates: int  # records whose event id was already seen
    out_of_range: int  # distinct events outside the range
    leads: int  # distinct leads with an event in the range
    marketing_leads: int  # leads with source: marketing on any event in the range
    customers: int  # marketing leads with a deal.won in the range
    won_leads: int  # leads (any source) with a deal.won in the range
    marketing_won: Fraction  # the customers' won amount
    won: Fraction  # every lead's won amount
    cycle_us: int  # sum over customers of (first deal.won − first event)
    first_touch: FirstTouchRevenue | None

    @property
    def close_rate(self) -> Fraction | None:
        """customers ÷ marketing leads."""
        return Fraction(self.customers, self.marketing_leads) if self.marketing_leads else None

    @property
    def average_deal_size(self) -> Fraction | None:
        """The customers' won amount ÷ customers."""
        return self.marketing_won / self.customers if self.customers else None

    @property
    def marketing_revenue_share(self) -> Fraction | None:
        """The customers' won amount ÷ all won amount."""
        return self.marketing_won / self.won if self.won else None

    @property
    def sales_cycle_days(self) -> Fraction | None:
        """Mean days (of 86,400 s) from a customer's first event to its first deal.won."""
        return Fraction(self.cycle_us, self.customers * _DAY_US) if self.customers else None

    def next_period(self, quota: Number | None = None, days: int = DEFAULT_DAYS) -> LeadGoal:
        """The calculator fed with the observed close rate, average deal size
        and marketing revenue share; ``quota`` defaults to the won revenue
        observed in the range. Raises :class:`FunnelError` when a figure is
        missing or zero (named by the calculator parameter it would feed,
        with what the history lacks) or ``quota``/``days`` are bad."""
        if self.marketing_leads == 0:
            raise FunnelError("close_rate", "no marketing leads in the range")
        if self.customers == 0:
            raise FunnelError("close_rate", "no marketing lead won a deal in the range")
        if self.marketing_won == 0:
            raise FunnelError("deal_size", "the marketing leads' deal.won events carry no amount")
        goal_quota: Number = self.won if quota is None else quota
        assert self.close_rate is not None and self.average_deal_size is not None
        assert self.marketing_revenue_share is not None
        return lead_goal(goal_quota, self.marketing_revenue_share, self.average_deal_size, self.close_rate, days)


@dataclass(slots=True)
class _Lead:
    marketing: bool = False
    first_at: int = 0
    won_at: int | None = None  # the first deal.won
    won: Fraction | None = None  # sum of deal.won amounts; None: no deal.won
    clock_events: list[LeadEvent] = field(default_factory=list)


class FunnelBuilder:
    """Accumulates events one at a time (any order) into a :class:`Funnel`.

    ``start_us``/``end_us`` bound the range of ``occurred_at`` kept: [start,
    end), either may be None. With ``policies``, the policy named ``policy``
    (``KeyError`` if there is none) is replayed per won lead for
    :class:`FirstTouchRevenue`; only events that policy can use are kept for
    that, so memory grows with leads and their clock events, not with every
    event.
    """

    def __init__(
        self,
        start_us: int | None = None,
        end_us: int | None = None,
        policies: PolicySet | None = None,
        policy: str = "first_touch",
    ) -> None:
        self.start_us = start_us
        self.end_us = end_us
        self._policy_name = policy
        self._policies: PolicySet | None = None
        self._types: frozenset[str] = frozenset()
        if policies is not None:
            chosen = policies.by_name(policy)
            # Only the chosen policy runs: the others' clocks would cost time
            # and change nothing here. replace() keeps whatever else the set holds.
            self._policies = dataclasses.replace(policies, policies=(chosen,))
            self._types = chosen.types()
        self._seen: set[str] = set()
        self._leads: dict[str, _Lead] = {}
        self._events = 0
        self._duplicates = 0
        self._outside = 0
        self._latest: int | None = None

    def add(self, event: LeadEvent) -> str:
        """Count one event: returns ``DUPLICATE`` for an event id already
        added (the first one counts, whatever its content), ``OUT_OF_RANGE``
        for an ``occurred_at`` outside the range, else ``COUNTED``."""
        if event.event_id in self._seen:
            self._duplicates += 1
            return DUPLICATE
        self._seen.add(event.event_id)
        t = event.occurred_at
        if (self.start_us is not None and t < self.start_us) or (self.end_us is not None and t >= self.end_us):
            self._outside += 1
            return OUT_OF_RANGE
        self._events += 1
        if self._latest is None or t > self._latest:
            self._latest = t
        lead = self._leads.get(event.lead_id)
        if lead is None:
            lead = self._leads[event.lead_id] = _Lead(first_at=t)
        elif t < lead.first_at:
            lead.first_at = t
        if event.source == "marketing":
            lead.marketing = True
        if event.type == _WON:
            lead.won = money(event.amount) + (lead.won or 0)
            if lead.won_at is None or t < lead.won_at:
                lead.won_at = t
        if event.type.value in self._types:
            lead.clock_events.append(event)
        return COUNTED

    def result(self, watermark_us: int | None = None) -> Funnel:
        """The funnel of everything added so far.

        The clock replay runs each won lead's events through
        ``clock.apply`` in event-time order, each at a watermark just below
        it (as a live worker would see them on time), then ``clock.advance``
        to ``watermark_us``: a clock whose deadline that passes is breached,
        one still running is open. ``watermark_us`` defaults to the range's
        end, or without one to the latest event; it is never taken below the
        latest event. Callable more than once."""
        leads = self._leads.values()
        customers = [lead for lead in leads if lead.marketing and lead.won is not None]
        won = sum((lead.won for lead in leads if lead.won is not None), Fraction(0))
        first_touch = None
        if self._policies is not None:
            w = watermark_us if watermark_us is not None else self.end_us
            if self._latest is not None:
                w = self._latest if w is None else max(w, self._latest)
            first_touch = self._first_touch(w if w is not None else 0)
        return Funnel(
            start_us=self.start_us,
            end_us=self.end_us,
            events=self._events,
            duplicates=self._duplicates,
            out_of_range=self._outside,
            leads=len(self._leads),
            marketing_leads=sum(1 for lead in leads if lead.marketing),
            customers=len(customers),
            won_leads=sum(1 for lead in leads if lead.won is not None),
            marketing_won=sum((lead.won for lead in customers if lead.won is not None), Fraction(0)),
            won=won,
            cycle_us=sum(lead.won_at - lead.first_at for lead in customers if lead.won_at is not None),
            first_touch=first_touch,
        )

    def _first_touch(self, watermark: int) -> FirstTouchRevenue:
        assert self._policies is not None
        amounts = {MET: Fraction(0), BREACHED: Fraction(0), OPEN: Fraction(0), UNTRACKED: Fraction(0)}
        counts = dict.fromkeys(amounts, 0)
        for lead_id, lead in self._leads.items():
            if lead.won is None:
                continue
            group = first_outcome(lead_id, lead.clock_events, self._policies, self._policy_name, watermark)
            amounts[group] += lead.won
            counts[group] += 1
        return FirstTouchRevenue(self._policy_name, amounts[MET], amounts[BREACHED], amounts[OPEN],
                                 amounts[UNTRACKED], counts)


def first_outcome(lead_id: str, events: Iterable[LeadEvent], policies: PolicySet, policy: str, watermark: int) -> str:
    """How the first clock of ``policy`` for one lead ended, replaying
    ``events`` (that lead's, deduplicated, any order) through the clock core
    in event-time order and then to ``watermark`` (epoch µs): ``MET`` or
    ``BREACHED`` (its first decision), ``OPEN`` (a cycle began, none was
    decided) or ``UNTRACKED`` (no cycle began)."""
    st = LeadState()
    for e in sorted(events, key=lambda e: e.occurred_at):
        # Just below the event: it waits in the buffer and is applied, in
        # the core's own tie order, once a later event or the final advance
        # moves past it, after any deadline that passed before it.
        w = e.occurred_at - 1
        for d in apply(st, e, policies, w, w).decisions:
            if d.policy == policy:
                return d.outcome
    for d in advance(st, policies, lead_id, watermark, watermark).decisions:
        if d.policy == policy:
            return d.outcome
    clock = st.clocks.get(policy)
    if policy in open_clocks(st) or (clock is not None and clock.cycle > 0):
        return OPEN
    return UNTRACKED


def observe(
    events: Iterable[LeadEvent],
    start_us: int | None = None,
    end_us: int | None = None,
    policies: PolicySet | None = None,
    policy: str = "first_touch",
    watermark_us: int | None = None,
) -> Funnel:
    """The funnel of ``events`` (any order, duplicates allowed) in
    [``start_us``, ``end_us``): :class:`FunnelBuilder` in one call."""
    builder = FunnelBuilder(start_us, end_us, policies, policy)
    for e in events:
        builder.add(e)
    return builder.result(watermark_us)
