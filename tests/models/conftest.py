"""Shared helpers for the pure-domain tests: timestamps, events, policies and
a small driver that feeds a lead's events to the clock state machine."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

from leadsla.models.clock import Decision, LeadState, Transition, advance, apply
from leadsla.models.events import LeadEvent, format_timestamp_us, parse_timestamp_us
from leadsla.models.policy import PolicySet, parse_policies

US = 1_000_000
S = US
M = 60 * US
H = 3600 * US
D = 24 * H

MINIMAL_YAML = """\
policies:
  - name: first_touch            # [a-z0-9_]+, unique
    start: lead.handed_off       # a type or a list of types
    stop: [lead.contact_attempt, lead.connected, lead.disqualified, lead.recycled]
    goal: 1h                     # 90s, 15m, 1h, 2d, or ISO 8601 (PT1H)
"""

OFFICE_CALENDAR_YAML = """\
calendars:
  office:
    timezone: Europe/Berlin
    hours:
      mon-fri: "09:00-17:00"
    holidays: [2026-12-25]
"""


def ts(text: str) -> int:
    """RFC 3339 text -> epoch microseconds."""
    return parse_timestamp_us(text)


def pol(text: str, source: str = "p.yaml") -> PolicySet:
    return parse_policies(textwrap.dedent(text), source=source)


def ev(etype: str, at: int | str, event_id: str, lead_id: str = "L1", **fields: Any) -> LeadEvent:
    occurred = at if isinstance(at, str) else format_timestamp_us(at)
    return LeadEvent.model_validate(
        {"event_id": event_id, "lead_id": lead_id, "type": etype, "occurred_at": occurred, **fields}
    )


def decision_key(d: Decision) -> tuple[Any, ...]:
    """What must not depend on arrival order (not decided_at / watermark)."""
    return (d.policy, d.outcome, d.cycle, d.started_at, d.deadline, d.stopped_at, d.elapsed_us, d.decision_id)


# The fields of a Transition that are events of the lead's history, in the
# order a test lists them; opened/closed (gauge bookkeeping) are read apart.
HISTORY = ("handoffs", "touches", "started", "at_risk", "pauses_expired", "decisions", "late_stops", "too_late")


def flat(tr: Transition) -> list[Any]:
    """A transition's history entries as one list, in ``HISTORY`` order."""
    return [e for name in HISTORY for e in getattr(tr, name)]


@dataclass
class Lead:
    """One lead's state plus every transition it went through.

    ``now`` is the processing time passed to the core: by default a counter
    far below any watermark (so a late start is never held), or a value a
    test sets."""

    policies: PolicySet
    lead_id: str = "L1"
    state: LeadState = field(default_factory=LeadState)
    effects: list[Any] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    now: int = 0

    def apply(self, event: LeadEvent, watermark: int) -> list[Any] | None:
        self.now += 1
        tr = apply(self.state, event, self.policies, watermark, self.now)
        self.transitions.append(tr)
        if tr.duplicate:
            return None
        out = flat(tr)
        self.effects.extend(out)
        return out

    def advance(self, watermark: int) -> list[Any]:
        self.now += 1
        tr = advance(self.state, self.policies, self.lead_id, watermark, self.now)
        self.transitions.append(tr)
        out = flat(tr)
        self.effects.extend(out)
        return out

    def of_started(self) -> list[Any]:
        """The cycles begun, in order."""
        return [s for tr in self.transitions for s in tr.started]

    def gauges(self) -> dict[tuple[str, str | None], int]:
        """The open-clock counts this lead's transitions add up to, by (policy, team)."""
        out: dict[tuple[str, str | None], int] = {}
        for tr in self.transitions:
            for ref in tr.opened:
                out[(ref.policy, ref.team)] = out.get((ref.policy, ref.team), 0) + 1
            for ref in tr.closed:
                out[(ref.policy, ref.team)] = out.get((ref.policy, ref.team), 0) - 1
        return {k: v for k, v in out.items() if v}

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.effects if isinstance(e, kind)]

    @property
    def decisions(self) -> list[Decision]:
        return self.of(Decision)
