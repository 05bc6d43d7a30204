"""Wire format: raw Kafka records in, validated events or a rejection out;
decisions and lead state out as bytes. The only module that knows the bytes."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from leadsla.models.clock import Clock, Decision, LeadState
from leadsla.models.events import EVENT_TYPES, LeadEvent, format_timestamp_us

MALFORMED, INVALID, UNKNOWN_TYPE, TOO_LARGE = "malformed", "invalid", "unknown_type", "too_large"
REASONS = (MALFORMED, INVALID, UNKNOWN_TYPE, TOO_LARGE)

# The earliest instant an outcome record can spell (datetime's year 1, UTC).
# An offset can put valid-looking text just outside it ("0001-01-01T00:30:00+01:00"),
# which would crash formatting later instead of going to the dead-letter topic.
MIN_OCCURRED_US = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    error: str


def decode(key: bytes | None, value: bytes | None, max_bytes: int, now_us: int, max_skew_us: int) -> LeadEvent | Rejection:
    """Validate one record exactly as contract §1–2 says; never raises."""
    size = len(value or b"") + len(key or b"")
    if size > max_bytes:
        return Rejection(TOO_LARGE, f"record is {size} bytes; the limit is {max_bytes}")
    if value is None:
        return Rejection(MALFORMED, "record has no value")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return Rejection(MALFORMED, f"not JSON: {exc}")
    if not isinstance(data, dict):
        return Rejection(MALFORMED, f"expected a JSON object, got {type(data).__name__}")
    etype = data.get("type")
    if isinstance(etype, str) and etype not in EVENT_TYPES:
        return Rejection(UNKNOWN_TYPE, f"unknown event type {etype[:100]!r}")
    try:
        event = LeadEvent.model_validate(data)
    except ValidationError as exc:
        return Rejection(INVALID, _first_error(exc))
    if key is None:
        return Rejection(INVALID, "record has no key; the key must be the lead_id")
    if key != event.lead_id.encode():
        return Rejection(INVALID, "record key is not the lead_id (a lead's events must share a partition)")
    # The messages quote the text as sent: past year 9999 in UTC (an offset on
    # 9999-12-31) the instant cannot be formatted, and decode must not raise.
    if event.occurred_at < MIN_OCCURRED_US:
        return Rejection(INVALID, f"occurred_at {data['occurred_at']} is before 0001-01-01T00:00:00Z")
    if event.occurred_at > now_us + max_skew_us:
        return Rejection(INVALID, f"occurred_at {data['occurred_at']} is in the future")
    return event


def _first_error(exc: ValidationError) -> str:
    errs = exc.errors(include_url=False, include_input=False)
    parts = []
    for e in errs[:3]:
        loc = ".".join(str(x) for x in e["loc"]) or "record"
        parts.append(f"{loc}: {e['msg'].removeprefix('Value error, ')}")
    more = f" (+{len(errs) - 3} more)" if len(errs) > 3 else ""
    return "; ".join(parts) + more


def outcome_record(d: Decision, goal_us: int) -> bytes:
    """One ``sla-outcomes`` value (contract §5, plus a few more fields)."""
    rec: dict[str, object] = {
        "decision_id": d.decision_id,
        "lead_id": d.lead_id,
        "policy": d.policy,
        "outcome": d.outcome,
        "cycle": d.cycle,
        "started_at": format_timestamp_us(d.started_at),
        "deadline": format_timestamp_us(d.deadline),
        "decided_at": format_timestamp_us(d.decided_at),
        "watermark": format_timestamp_us(d.watermark),
        "goal_seconds": goal_us / 1_000_000,
        "stopped_at": None if d.stopped_at is None else format_timestamp_us(d.stopped_at),
        "elapsed_seconds": None if d.elapsed_us is None else d.elapsed_us / 1_000_000,
        "team": d.team,
        "rep": d.rep,
        "was_at_risk": d.was_at_risk,
    }
    return orjson.dumps(rec)


# -- lead state <-> changelog bytes ---------------------------------------------

_CLOCK_FIELDS = Clock.__slots__  # type: ignore[attr-defined]


def state_to_bytes(partition: int, st: LeadState) -> bytes:
    return orjson.dumps(
        {
            "p": partition,
            "s": st.seen,
            "b": [[t, h, ty, [list(r) for r in roles], team, rep] for t, h, ty, roles, team, rep in st.buffer],
            "c": {name: [getattr(c, f) for f in _CLOCK_FIELDS] for name, c in st.clocks.items()},
            "l": st.last_event_at,
            "o": [st.owner_team, st.owner_rep, st.handoff_at, st.touched],
        }
    )


def state_from_bytes(raw: bytes) -> tuple[int, LeadState]:
    d = orjson.loads(raw)
    st = LeadState(
        seen=d["s"],
        buffer=[(t, h, ty, tuple((n, r) for n, r in roles), team, rep) for t, h, ty, roles, team, rep in d["b"]],
        clocks={name: Clock(*vals) for name, vals in d["c"].items()},
        last_event_at=d["l"],
    )
    st.owner_team, st.owner_rep, st.handoff_at, st.touched = d["o"]
    return d["p"], st
