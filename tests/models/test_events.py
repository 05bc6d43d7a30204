"""Lead events (contract §1): what validates, what is refused, and exact timestamps."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from leadsla.models.events import EVENT_TYPES, EventType, LeadEvent, format_timestamp_us, parse_timestamp_us
from tests.models.conftest import H, M

T0 = 1_795_338_900_000_000  # 2026-11-22T09:15:00Z

BASE: dict[str, Any] = {
    "event_id": "evt-1",
    "lead_id": "lead-42",
    "type": "lead.handed_off",
    "occurred_at": "2026-11-22T09:15:00Z",
}


def validate(**changes: Any) -> LeadEvent:
    return LeadEvent.model_validate({**BASE, **changes})


def errors(**changes: Any) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as info:
        validate(**changes)
    return [(e["loc"], e["type"]) for e in info.value.errors()]


# -- accepted shapes -------------------------------------------------------------


def test_minimal_event() -> None:
    e = validate()
    assert (e.event_id, e.lead_id, e.type, e.occurred_at) == ("evt-1", "lead-42", EventType.HANDED_OFF, T0)
    assert (e.source, e.team, e.amount, e.currency, e.attributes) == (None, None, None, None, {})


def test_full_event_from_json_bytes() -> None:
    raw = json.dumps(
        {
            "event_id": "e-77",
            "lead_id": "L-9",
            "type": "deal.won",
            "occurred_at": "2026-11-22T10:15:00.250+01:00",
            "source": "marketing",
            "segment": "enterprise",
            "persona": "cfo",
            "team": "emea",
            "rep": "r-12",
            "region": "dach",
            "channel": "call",
            "amount": 12500.5,
            "currency": "EUR",
            "attributes": {"campaign": "spring", "tier": "gold"},
        }
    ).encode()
    e = LeadEvent.model_validate_json(raw)
    assert e.type is EventType.DEAL_WON
    assert e.occurred_at == T0 + 250_000
    assert (e.source, e.segment, e.persona, e.team, e.rep, e.region, e.channel) == (
        "marketing",
        "enterprise",
        "cfo",
        "emea",
        "r-12",
        "dach",
        "call",
    )
    assert (e.amount, e.currency) == (12500.5, "EUR")
    assert e.attributes == {"campaign": "spring", "tier": "gold"}
    assert e.dimension("segment") == "enterprise"
    assert e.dimension("attributes.tier") == "gold"
    assert e.dimension("attributes.missing") is None
    assert e.dimension("currency") == "EUR"
    assert e.dimension("persona") == "cfo"


@pytest.mark.parametrize(
    ("occurred_at", "expected"),
    [
        ("2026-11-22T09:15:00Z", T0),
        ("2026-11-22T09:15:00z", T0),
        ("2026-11-22t09:15:00Z", T0),
        ("2026-11-22 09:15:00Z", T0),
        ("2026-11-22T09:15:00+00:00", T0),
        ("2026-11-22T09:15:00-00:00", T0),
        ("2026-11-22T10:15:00+01:00", T0),
        ("2026-11-22T04:15:00-05:00", T0),
        ("2026-11-22T14:45:00+05:30", T0),
        ("2026-11-23T00:15:00+15:00", T0),
        ("2026-11-22T09:15:00.5Z", T0 + 500_000),
        ("2026-11-22T09:15:00.123Z", T0 + 123_000),
        ("2026-11-22T09:15:00.123456Z", T0 + 123_456),
        ("2026-11-22T09:15:00.123456789Z", T0 + 123_456),  # beyond microseconds: truncated
        ("2026-11-22T10:15:00.000001+01:00", T0 + 1),
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T01:00:00+01:00", 0),
        ("1969-12-31T23:59:59.999999Z", -1),
        ("2024-02-29T12:00:00Z", 1_709_208_000_000_000),
    ],
)
def test_timestamps(occurred_at: str, expected: int) -> None:
    assert parse_timestamp_us(occurred_at) == expected
    assert validate(occurred_at=occurred_at).occurred_at == expected


@pytest.mark.parametrize("etype", sorted(EVENT_TYPES))
def test_every_contract_type_is_accepted(etype: str) -> None:
    assert validate(type=etype).type.value == etype


def test_contract_types_are_exactly_these() -> None:
    assert {
        "lead.created",
        "lead.mql",
        "lead.handed_off",
        "lead.contact_attempt",
        "lead.connected",
        "lead.accepted",
        "lead.qualified",
        "lead.disqualified",
        "lead.recycled",
        "opportunity.created",
        "deal.won",
        "deal.lost",
    } == EVENT_TYPES


def test_unknown_extra_fields_are_ignored() -> None:
    e = validate(schema_version=3, payload={"nested": [1, 2]}, email="x@example.com")
    assert e.event_id == "evt-1"
    assert not hasattr(e, "schema_version")
    assert "email" not in e.model_dump()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_id", "x"),
        ("event_id", "x" * 200),
        ("lead_id", "y" * 200),
        ("lead_id", "ü"),
        ("source", "sales"),
        ("source", "marketing"),
        ("amount", 0),
        ("amount", 0.0),
        ("amount", 10),
        ("currency", "USD"),
        ("segment", None),
        ("attributes", {}),
    ],
)
def test_boundaries_accepted(field: str, value: Any) -> None:
    assert getattr(validate(**{field: value}), field) == value


def test_events_are_frozen() -> None:
    e = validate()
    with pytest.raises(ValidationError):
        e.lead_id = "other"


# -- rejected ----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["event_id", "lead_id", "type", "occurred_at"])
def test_missing_required_field(field: str) -> None:
    data = {k: v for k, v in BASE.items() if k != field}
    with pytest.raises(ValidationError) as info:
        LeadEvent.model_validate(data)
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [((field,), "missing")]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"event_id": ""}, [(("event_id",), "string_too_short")]),
        ({"lead_id": ""}, [(("lead_id",), "string_too_short")]),
        ({"event_id": "x" * 201}, [(("event_id",), "string_too_long")]),
        ({"lead_id": "x" * 201}, [(("lead_id",), "string_too_long")]),
        ({"event_id": 17}, [(("event_id",), "string_type")]),
        ({"lead_id": 42}, [(("lead_id",), "string_type")]),
        ({"lead_id": None}, [(("lead_id",), "string_type")]),
        ({"event_id": ["a"]}, [(("event_id",), "string_type")]),
        ({"type": "lead.unknown"}, [(("type",), "enum")]),
        ({"type": "LEAD.HANDED_OFF"}, [(("type",), "enum")]),
        ({"type": None}, [(("type",), "enum")]),
        ({"amount": -0.01}, [(("amount",), "greater_than_equal")]),
        ({"amount": True}, [(("amount",), "float_type")]),
        ({"amount": "10"}, [(("amount",), "float_type")]),
        ({"amount": float("nan")}, [(("amount",), "finite_number")]),
        ({"amount": float("inf")}, [(("amount",), "finite_number")]),
        ({"currency": "eur"}, [(("currency",), "string_pattern_mismatch")]),
        ({"currency": "EURO"}, [(("currency",), "string_pattern_mismatch")]),
        ({"currency": "EU"}, [(("currency",), "string_pattern_mismatch")]),
        ({"currency": "E1R"}, [(("currency",), "string_pattern_mismatch")]),
        ({"attributes": {"tier": 1}}, [(("attributes", "tier"), "string_type")]),
        ({"attributes": {"tier": None}}, [(("attributes", "tier"), "string_type")]),
        ({"attributes": {"tier": ["a"]}}, [(("attributes", "tier"), "string_type")]),
        ({"attributes": ["tier"]}, [(("attributes",), "dict_type")]),
        ({"source": "partner"}, [(("source",), "literal_error")]),
        ({"source": "Sales"}, [(("source",), "literal_error")]),
        ({"team": 5}, [(("team",), "string_type")]),
        ({"segment": "s" * 201}, [(("segment",), "string_too_long")]),
    ],
)
def test_invalid_fields(changes: dict[str, Any], expected: list[tuple[tuple[Any, ...], str]]) -> None:
    assert errors(**changes) == expected


@pytest.mark.parametrize(
    "occurred_at",
    [
        "2026-11-22T09:15:00",  # no offset
        "2026-11-22",  # date only
        "2026-11-22T09:15Z",  # no seconds
        "2026-13-01T09:15:00Z",  # month 13
        "2026-02-30T09:15:00Z",  # no such day
        "2026-11-22T24:00:00Z",
        "2026-11-22T09:60:00Z",
        "2026-11-22T09:15:00+0100",  # offset without colon
        "2026-11-22T09:15:00+1:00",
        "2026-11-22T09:15:00+24:00",
        "2026-11-22T09:15:00.Z",
        "22.11.2026 09:15:00Z",
        "2026-11-22T09:15:00Z ",
        "",
        1795338900,  # an epoch number
        1795338900.0,
        None,
    ],
)
def test_bad_timestamps(occurred_at: Any) -> None:
    assert errors(occurred_at=occurred_at) == [(("occurred_at",), "value_error")]
    with pytest.raises(ValueError):
        parse_timestamp_us(occurred_at)


def test_bad_timestamp_message_shows_the_expected_form() -> None:
    with pytest.raises(ValueError) as info:
        parse_timestamp_us("2026-11-22T09:15:00")
    assert str(info.value) == "must be an RFC 3339 timestamp with an offset, e.g. 2026-11-22T09:15:00Z"


def test_several_problems_are_all_reported() -> None:
    assert sorted(errors(event_id="", amount=-1, currency="x")) == [
        (("amount",), "greater_than_equal"),
        (("currency",), "string_pattern_mismatch"),
        (("event_id",), "string_too_short"),
    ]


# -- formatting ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("us", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (T0, "2026-11-22T09:15:00Z"),
        (T0 + 250_000, "2026-11-22T09:15:00.250Z"),
        (T0 + 1_000, "2026-11-22T09:15:00.001Z"),
        (T0 + 123_456, "2026-11-22T09:15:00.123456Z"),
        (T0 + 1, "2026-11-22T09:15:00.000001Z"),
        (T0 + 2 * H + 3 * M, "2026-11-22T11:18:00Z"),
        (-1, "1969-12-31T23:59:59.999999Z"),
        (-1_000, "1969-12-31T23:59:59.999Z"),
    ],
)
def test_format_timestamp_us(us: int, text: str) -> None:
    assert format_timestamp_us(us) == text
    assert parse_timestamp_us(text) == us


_LO = parse_timestamp_us("1900-01-01T00:00:00Z")
_HI = parse_timestamp_us("2200-01-01T00:00:00Z")


@settings(max_examples=300, deadline=None)
@given(st.integers(_LO, _HI))
def test_format_parse_round_trip(us: int) -> None:
    text = format_timestamp_us(us)
    assert text.endswith("Z")
    assert parse_timestamp_us(text) == us


@settings(max_examples=300, deadline=None)
@given(st.integers(_LO + 86_400_000_000, _HI - 86_400_000_000), st.integers(-23 * 60 - 59, 23 * 60 + 59))
def test_any_offset_converts_to_the_same_utc_instant(us: int, offset_min: int) -> None:
    tz = timezone(timedelta(minutes=offset_min))
    local = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
    text = local.astimezone(tz).isoformat(timespec="microseconds")
    assert parse_timestamp_us(text) == us
