"""Shared helpers for the pure-domain tests: timestamps, events, policies and
a small driver that feeds a lead's events to the clock state machine."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

from leadsla.models.clock import Decision, Effect, LeadState, advance, apply
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


@dataclass
class Lead:
    """One lead's state plus every effect it produced."""

    policies: PolicySet
    lead_id: str = "L1"
    state: LeadState = field(default_factory=LeadState)
    effects: list[Effect] = field(default_factory=list)
    now: int = 0

    def apply(self, event: LeadEvent, watermark: int) -> list[Effect] | None:
        self.now += 1
        out = apply(self.state, event, self.policies, watermark, self.now)
        if out is not None:
            self.effects.extend(out)
        return out

    def advance(self, watermark: int) -> list[Effect]:
        self.now += 1
        out = advance(self.state, self.policies, self.lead_id, watermark, self.now)
        self.effects.extend(out)
        return out

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.effects if isinstance(e, kind)]

    @property
    def decisions(self) -> list[Decision]:
        return self.of(Decision)
