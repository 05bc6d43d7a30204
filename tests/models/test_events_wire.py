"""WireEvent, the typed decode of contract §1, against LeadEvent."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest

from leadsla.models.events import LeadEvent, WireEvent

WIRE = msgspec.json.Decoder(WireEvent)
BASE: dict[str, Any] = {
    "event_id": "evt-1",
    "lead_id": "lead-42",
    "type": "lead.handed_off",
    "occurred_at": "2026-11-22T09:15:00Z",
}


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"team": None, "rep": "r-1"},  # a null sent is a field set, as pydantic counts it
        {"amount": 10},  # an integer amount is a float
        {"amount": 0, "currency": "EUR", "source": "sales"},
        {"attributes": {}, "segment": "s" * 200},
        {"attributes": {"k" * 200: "v" * 1000, "tier": "gold"}},
        {"occurred_at": "2026-11-22t10:15:00.123456789+01:00", "type": "deal.won"},
    ],
)
def test_a_wire_event_is_the_event_pydantic_builds(changes: dict[str, Any]) -> None:
    raw = orjson.dumps({**BASE, **changes})
    got, expected = WIRE.decode(raw).event(), LeadEvent.model_validate(orjson.loads(raw))
    assert got == expected
    assert list(got.__dict__.items()) == list(expected.__dict__.items())
    assert [type(v) for v in got.__dict__.values()] == [type(v) for v in expected.__dict__.values()]
    assert got.model_fields_set == expected.model_fields_set
    assert got.model_dump(exclude_unset=True) == expected.model_dump(exclude_unset=True)
    with pytest.raises(ValueError):
        got.lead_id = "other"  # type: ignore[misc]  # frozen like any LeadEvent


@pytest.mark.parametrize(
    "changes",
    [
        {"schema_version": 3},  # valid for LeadEvent: decoded the reference way
        {"currency": "EUR\n"},
        {"amount": True},
        {"event_id": ""},
        {"lead_id": "x" * 201},
        {"type": "lead.teleported"},
        {"source": "partner"},
        {"attributes": {"k": 1}},
        {"attributes": {f"k{i}": "v" for i in range(101)}},
        {"team": 7},
    ],
)
def test_anything_unusual_is_refused_by_the_wire_type(changes: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError):
        WIRE.decode(orjson.dumps({**BASE, **changes}))


def test_a_wire_event_with_a_bad_timestamp_raises_value_error() -> None:
    w = WIRE.decode(orjson.dumps({**BASE, "occurred_at": "2026-02-30T09:00:00Z"}))
    with pytest.raises(ValueError, match="day is out of range for month"):
        w.event()
