"""Lead lifecycle events: the input contract (contract §1) as a pydantic model.

Validation is exactly the contract's: required ids and type, an RFC 3339
timestamp with an offset, optional bounded dimensions; unknown top-level fields
are ignored so upstream producers can add fields without breaking the monitor.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


class EventType(StrEnum):
    CREATED = "lead.created"
    MQL = "lead.mql"
    HANDED_OFF = "lead.handed_off"
    CONTACT_ATTEMPT = "lead.contact_attempt"
    CONNECTED = "lead.connected"
    ACCEPTED = "lead.accepted"
    QUALIFIED = "lead.qualified"
    DISQUALIFIED = "lead.disqualified"
    RECYCLED = "lead.recycled"
    OPPORTUNITY_CREATED = "opportunity.created"
    DEAL_WON = "deal.won"
    DEAL_LOST = "deal.lost"


EVENT_TYPES: frozenset[str] = frozenset(t.value for t in EventType)

# RFC 3339 section 5.6: full-date "T" full-time, with a mandatory offset.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_timestamp_us(value: str) -> int:
    """RFC 3339 text -> epoch microseconds (UTC). Raises ValueError."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2026-11-22T09:15:00Z")
    text = value
    frac = re.search(r"\.(\d+)", text)
    if frac and len(frac.group(1)) > 6:  # datetime keeps microseconds; drop the rest
        text = text[: frac.start(1) + 6] + text[frac.end(1) :]
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text.replace("t", "T"))
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def format_timestamp_us(us: int) -> str:
    """Epoch microseconds -> RFC 3339 in UTC (``...Z``), millisecond precision when exact."""
    dt = datetime.fromtimestamp(us // 1_000_000, tz=UTC).replace(microsecond=us % 1_000_000)
    if dt.microsecond % 1000 == 0:
        text = dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{dt.microsecond // 1000:03d}" if dt.microsecond else "")
    else:
        text = dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text + "Z"


def _timestamp(value: Any) -> int:
    return parse_timestamp_us(value)


Id = Annotated[str, Field(min_length=1, max_length=200)]
Dim = Annotated[str, Field(max_length=200)]


class LeadEvent(BaseModel):
    """One validated lead event. ``occurred_at`` is epoch microseconds (UTC)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    event_id: Id
    lead_id: Id
    type: Annotated[EventType, Field(strict=False)]
    occurred_at: Annotated[int, BeforeValidator(_timestamp)]
    source: Literal["marketing", "sales"] | None = None
    segment: Dim | None = None
    persona: Dim | None = None
    team: Dim | None = None
    rep: Dim | None = None
    region: Dim | None = None
    channel: Dim | None = None
    amount: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    attributes: dict[Annotated[str, Field(max_length=200)], Annotated[str, Field(max_length=1000)]] = Field(
        default_factory=dict, max_length=100
    )

    def dimension(self, name: str) -> str | None:
        """A matching dimension: a top-level field or ``attributes.<key>``."""
        if name.startswith("attributes."):
            return self.attributes.get(name[len("attributes.") :])
        value = getattr(self, name, None)
        return None if value is None else str(value)


MATCH_FIELDS = ("source", "segment", "persona", "team", "rep", "region", "channel", "currency")
