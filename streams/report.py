"""What ``leadsla calculate`` and ``leadsla recalibrate`` print: a plain
aligned table for people, one JSON object for programs.

Tables are ASCII text (no colours, no box drawing), so they read the same in
a terminal, a log file and an e-mail. JSON numbers are exact where whole
(``int``) and the nearest float otherwise; ratios of an empty funnel are
``null``.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

from leadsla.models.events import format_timestamp_us
from leadsla.models.funnel import BREACHED, MET, OPEN, UNTRACKED, Funnel, FunnelError, LeadGoal, number
from leadsla.streams.history import ReadStats


def _count(n: int) -> str:
    return f"{n:,}"


def _leads(n: int) -> str:
    return f"{n:,} lead" if n == 1 else f"{n:,} leads"


def _money(x: Fraction) -> str:
    if x.denominator == 1:
        return f"{x.numerator:,}"
    return _plain(x, 2) if abs(x) < Fraction(1, 100) else f"{_decimal(x, 2):,.2f}"


def _decimal(x: Fraction, places: int) -> Decimal:
    """``x`` rounded half-even to ``places`` decimals, exactly (no float:
    a goal of 10^20 leads keeps its digits)."""
    with localcontext(prec=max(28, len(str(abs(x.numerator) // x.denominator)) + places + 2)):
        return (Decimal(x.numerator) / Decimal(x.denominator)).quantize(Decimal(1).scaleb(-places))


def _plain(x: Fraction, places: int = 4) -> str:
    """Up to ``places`` decimals, trailing zeros dropped (0.5, 0.125, 0.3333);
    a value too small for them keeps its first two significant digits
    (0.00001), never rounded to 0."""
    value = Fraction(x)
    if value and abs(value) < Fraction(1, 10**places):
        places = min(20, 1 - math.floor(math.log10(abs(float(value)))))
    text = f"{_decimal(value, places):,.{places}f}".rstrip("0").rstrip(".")
    return text or "0"


def _pct(x: Fraction) -> str:
    """A fraction as a percentage, up to two decimals (50%, 12.5%, 33.33%;
    0.001% for a tiny one, as ``_plain``)."""
    return _plain(x * 100, 2) + "%"


def table(title: str, rows: list[tuple[str, str, str]]) -> str:
    """``title`` then one line per (label, value, note): labels left-aligned,
    values right-aligned, notes after them."""
    lw = max(len(r[0]) for r in rows)
    vw = max(len(r[1]) for r in rows)
    lines = [title]
    for label, value, note in rows:
        lines.append(f"  {label:<{lw}}  {value:>{vw}}" + (f"   {note}" if note else ""))
    return "\n".join(lines)


def goal_rows(g: LeadGoal, quota_note: str = "") -> list[tuple[str, str, str]]:
    """The calculator's table rows, each figure with the formula that gave it."""
    return [
        ("quota", _money(g.quota), quota_note),
        ("marketing share", _pct(g.marketing_share), ""),
        ("marketing revenue goal", _money(g.marketing_revenue_goal), "quota x marketing share"),
        ("deal size", _money(g.deal_size), ""),
        ("customers needed", _count(g.customers_needed),
         f"ceil({_money(g.marketing_revenue_goal)} / {_money(g.deal_size)})"),
        ("close rate", _pct(g.close_rate), ""),
        ("leads needed", _count(g.leads_needed), f"ceil({_count(g.customers_needed)} / {_plain(g.close_rate)})"),
        ("leads per day", _plain(g.leads_per_day, 2), f"{_count(g.leads_needed)} / {g.days} days"),
    ]


def goal_text(g: LeadGoal) -> str:
    """``leadsla calculate``'s table."""
    return table(f"Marketing's lead goal for a period of {g.days} days", goal_rows(g))


def _ratio(x: Fraction | None) -> float | int | None:
    return None if x is None else number(x)


def _bound(us: int | None) -> str | None:
    return None if us is None else format_timestamp_us(us)


def funnel_dict(f: Funnel, topic: str, stats: ReadStats, goal: LeadGoal | None,
                goal_error: FunnelError | None, quota_observed: bool) -> dict[str, Any]:
    """``leadsla recalibrate --json``: the observed figures, the revenue by
    first-touch outcome and ``next_period`` (the calculator's object, or
    null with ``next_period_unavailable`` saying why)."""
    out: dict[str, Any] = {
        "from": _bound(f.start_us),
        "to": _bound(f.end_us),
        "topic": topic,
        "records": stats.records,
        "rejected": dict(sorted(stats.rejected.items())),
        "duplicates": f.duplicates,
        "events": f.events,
        "out_of_range": f.out_of_range,
        "leads": f.leads,
        "marketing_leads": f.marketing_leads,
        "customers": f.customers,
        "close_rate": _ratio(f.close_rate),
        "average_deal_size": _ratio(f.average_deal_size),
        "marketing_revenue": number(f.marketing_won),
        "won_revenue": number(f.won),
        "won_leads": f.won_leads,
        "marketing_revenue_share": _ratio(f.marketing_revenue_share),
        "sales_cycle_days": _ratio(f.sales_cycle_days),
    }
    ft = f.first_touch
    if ft is not None:
        out["first_touch_policy"] = ft.policy
        out["revenue_first_touch_met"] = number(ft.met)
        out["revenue_first_touch_breached"] = number(ft.breached)
        out["revenue_first_touch_open"] = number(ft.open)
        out["revenue_first_touch_untracked"] = number(ft.untracked)
        out["won_leads_first_touch"] = {k: ft.leads[k] for k in (MET, BREACHED, OPEN, UNTRACKED)}
    out["next_period"] = None if goal is None else {**goal.as_dict(), "quota_observed": quota_observed}
    if goal is None and goal_error is not None:
        out["next_period_unavailable"] = goal_error.problem
    return out


def funnel_text(f: Funnel, topic: str, stats: ReadStats, goal: LeadGoal | None,
                goal_error: FunnelError | None, quota_observed: bool) -> str:
    """``leadsla recalibrate``'s tables: the funnel, revenue by first touch, the next period's goal."""
    span = f"from {_bound(f.start_us) or 'the first event'} to {_bound(f.end_us) or 'the last'}"
    rejected = sum(stats.rejected.values())
    read = (f"{topic}: {stats.records:,} records, {f.events:,} events in range, {f.duplicates:,} duplicates, "
            f"{f.out_of_range:,} outside the range, {rejected:,} rejected")

    def opt(x: Fraction | None, show: Any) -> str:
        return "-" if x is None else str(show(x))

    parts = [table(f"Observed funnel, {span}\n({read})", [
        ("leads", _count(f.leads), "with an event in the range"),
        ("marketing leads", _count(f.marketing_leads), "source: marketing"),
        ("customers", _count(f.customers), "marketing leads with a deal.won"),
        ("close rate", opt(f.close_rate, _pct), "customers / marketing leads"),
        ("marketing revenue", _money(f.marketing_won), "the customers' won amount"),
        ("average deal size", opt(f.average_deal_size, _money), "marketing revenue / customers"),
        ("all won revenue", _money(f.won), _leads(f.won_leads) + " of any source"),
        ("marketing revenue share", opt(f.marketing_revenue_share, _pct), "marketing revenue / all won revenue"),
        ("sales cycle, days", opt(f.sales_cycle_days, lambda x: _plain(x, 1)), "mean, first event to first deal.won"),
    ])]
    ft = f.first_touch
    if ft is not None:
        parts.append(table(f"Won revenue by first touch (policy {ft.policy})", [
            ("met", _money(ft.met), _leads(ft.leads[MET])),
            ("breached", _money(ft.breached), _leads(ft.leads[BREACHED])),
            ("open", _money(ft.open), _leads(ft.leads[OPEN]) + ", clock still running"),
            ("untracked", _money(ft.untracked), _leads(ft.leads[UNTRACKED]) + ", no clock started"),
        ]))
    if goal is not None:
        note = "won revenue observed in the range" if quota_observed else "--quota"
        parts.append(table(f"Next period: {goal.days} days", goal_rows(goal, note)))
    elif goal_error is not None:
        parts.append(f"Next period: no goal: {goal_error.problem}")
    return "\n\n".join(parts)
