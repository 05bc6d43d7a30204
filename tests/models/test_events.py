"""Lead events (contract §1): what validates, what is refused, and exact timestamps."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from leadsla.models.events import (
    EVENT_TYPES,
    MAX_TIMESTAMP_US,
    MIN_TIMESTAMP_US,
    EventType,
    LeadEvent,
    format_timestamp_us,
    parse_timestamp_us,
)
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
        ("2026-11-22T09:15:00.1234567-00:00", T0 + 123_456),
        ("2026-11-22T09:15:00+23:59", T0 - 1439 * M),
        ("2026-11-21T09:15:00-23:59", T0 - M),
        ("0001-01-01T00:00:00Z", -62_135_596_800_000_000),
        ("0999-12-31T23:59:59Z", -30_610_224_001_000_000),
        ("9999-12-31T23:59:59.999999Z", 253_402_300_799_999_999),
        ("9999-12-31T23:59:59.999999999Z", 253_402_300_799_999_999),
        # an offset can put the instant just outside what format_timestamp_us writes
        ("0001-01-01T00:00:00+00:01", -62_135_596_800_000_000 - M),
        ("9999-12-31T23:59:59.999999-00:01", 253_402_300_799_999_999 + M),
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
        "2026-11-22T09:15:00+00:60",  # offset minute 60
        "2026-11-22T09:15:60Z",  # a leap second: datetime cannot hold it
        "2026-11-22T09:15:00.1234567890Z",  # 10 fractional digits
        "0000-01-01T00:00:00Z",  # no year 0
        "10000-01-01T00:00:00Z",
        "\uff12\uff10\uff12\uff16-11-22T09:15:00Z",  # fullwidth digits
        "2026-11-22T09:15:00.\u0661\u0662Z",  # Arabic-Indic digits
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

# What format_timestamp_us writes: RFC 3339 section 5.6 in UTC, a four-digit
# year, no fraction / milliseconds / microseconds, always Z.
SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3}|\.[0-9]{6})?Z")


def expected_text(us: int) -> str:
    """An independent spelling of ``us``: datetime arithmetic from year 1 and
    ``isoformat``, which always writes four year digits."""
    dt = datetime(1, 1, 1) + timedelta(microseconds=us - MIN_TIMESTAMP_US)
    head = dt.isoformat(timespec="seconds")
    if dt.microsecond == 0:
        return head + "Z"
    if dt.microsecond % 1000 == 0:
        return f"{head}.{dt.microsecond // 1000:03d}Z"
    return f"{head}.{dt.microsecond:06d}Z"


def test_formattable_range_is_year_1_to_9999() -> None:
    assert parse_timestamp_us("0001-01-01T00:00:00Z") == MIN_TIMESTAMP_US == -62_135_596_800_000_000
    assert parse_timestamp_us("9999-12-31T23:59:59.999999Z") == MAX_TIMESTAMP_US
    assert (datetime.max - datetime.min) // timedelta(microseconds=1) == MAX_TIMESTAMP_US - MIN_TIMESTAMP_US


@pytest.mark.parametrize(
    ("us", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (T0, "2026-11-22T09:15:00Z"),
        (T0 + 250_000, "2026-11-22T09:15:00.250Z"),
        (T0 + 1_000, "2026-11-22T09:15:00.001Z"),
        (T0 + 123_456, "2026-11-22T09:15:00.123456Z"),
        (T0 + 1, "2026-11-22T09:15:00.000001Z"),
        (T0 + 999_999, "2026-11-22T09:15:00.999999Z"),
        (T0 + 2 * H + 3 * M, "2026-11-22T11:18:00Z"),
        (T0 + 14 * H + 44 * M + 59_999_000, "2026-11-22T23:59:59.999Z"),
        (-1, "1969-12-31T23:59:59.999999Z"),
        (-1_000, "1969-12-31T23:59:59.999Z"),
        (1_709_208_000_000_000, "2024-02-29T12:00:00Z"),
        # four year digits, whatever strftime does on the platform
        (MIN_TIMESTAMP_US, "0001-01-01T00:00:00Z"),
        (MIN_TIMESTAMP_US + 1, "0001-01-01T00:00:00.000001Z"),
        (-30_610_224_001_000_000, "0999-12-31T23:59:59Z"),
        (-30_610_224_000_000_000, "1000-01-01T00:00:00Z"),
        (-59_011_459_200_000_000, "0100-01-01T00:00:00Z"),
        (-61_851_686_400_000_000, "0009-12-31T00:00:00Z"),
        (MAX_TIMESTAMP_US - 999, "9999-12-31T23:59:59.999Z"),
        (MAX_TIMESTAMP_US, "9999-12-31T23:59:59.999999Z"),
    ],
)
def test_format_timestamp_us(us: int, text: str) -> None:
    assert format_timestamp_us(us) == text
    assert parse_timestamp_us(text) == us
    assert expected_text(us) == text


# Every instant an event can carry into an outcome record (the codec refuses
# occurred_at before year 1) up to the last one RFC 3339 can write, with each
# output shape drawn often: whole seconds, whole milliseconds, microseconds.
INSTANTS = st.one_of(
    st.integers(MIN_TIMESTAMP_US, MAX_TIMESTAMP_US),
    st.integers(MIN_TIMESTAMP_US // 1_000_000, MAX_TIMESTAMP_US // 1_000_000).map(lambda s: s * 1_000_000),
    st.integers(MIN_TIMESTAMP_US // 1_000, MAX_TIMESTAMP_US // 1_000).map(lambda ms: ms * 1_000),
)


@settings(max_examples=2000, deadline=None)
@given(INSTANTS)
@example(MIN_TIMESTAMP_US)
@example(MAX_TIMESTAMP_US)
@example(-30_610_224_001_000_000)  # 0999-12-31T23:59:59Z
def test_every_formattable_instant_round_trips(us: int) -> None:
    text = format_timestamp_us(us)
    assert SHAPE.fullmatch(text), text
    assert text == expected_text(us)
    assert parse_timestamp_us(text) == us
    assert validate(occurred_at=text).occurred_at == us


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.integers(max_value=MIN_TIMESTAMP_US - 1), st.integers(min_value=MAX_TIMESTAMP_US + 1)))
@example(MIN_TIMESTAMP_US - 1)
@example(MAX_TIMESTAMP_US + 1)
def test_instants_outside_years_1_to_9999_are_refused(us: int) -> None:
    with pytest.raises(ValueError) as info:
        format_timestamp_us(us)
    assert str(info.value) == (
        f"cannot format {us} epoch microseconds as RFC 3339: "
        "outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z"
    )


@st.composite
def rfc3339_texts(draw: st.DrawFn) -> tuple[str, int]:
    """Any RFC 3339 date-time the parser accepts, and its instant computed
    independently: epoch microseconds, digits past the sixth dropped."""
    day = draw(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
    h, m, s = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
    digits = draw(st.text("0123456789", min_size=0, max_size=9))
    sep = draw(st.sampled_from("Tt "))
    if draw(st.booleans()):
        offset_min, offset = 0, draw(st.sampled_from("Zz"))
    else:
        sign, magnitude = draw(st.sampled_from("+-")), draw(st.integers(0, 23 * 60 + 59))
        offset_min = magnitude if sign == "+" else -magnitude  # "-00:00" is UTC too
        offset = f"{sign}{magnitude // 60:02d}:{magnitude % 60:02d}"
    frac = f".{digits}" if digits else ""
    text = f"{day.year:04d}-{day.month:02d}-{day.day:02d}{sep}{h:02d}:{m:02d}:{s:02d}{frac}{offset}"
    local_s = (day.toordinal() - date(1970, 1, 1).toordinal()) * 86_400 + h * 3600 + m * 60 + s
    return text, (local_s - offset_min * 60) * 1_000_000 + int(digits[:6].ljust(6, "0"))


@settings(max_examples=2000, deadline=None)
@given(rfc3339_texts())
@example(("0001-01-01T00:00:00Z", MIN_TIMESTAMP_US))
@example(("0001-01-01T00:00:00+00:01", MIN_TIMESTAMP_US - M))
@example(("0001-01-01T23:59:00+23:59", MIN_TIMESTAMP_US))
@example(("9999-12-31T23:59:59.999999999Z", MAX_TIMESTAMP_US))
@example(("9999-12-31T23:59:59.999999999-00:01", MAX_TIMESTAMP_US + M))
@example(("9999-12-31 00:00:59.999999999-23:59", MAX_TIMESTAMP_US))
def test_any_accepted_text_formats_to_text_that_reads_back(case: tuple[str, int]) -> None:
    text, us = case
    assert parse_timestamp_us(text) == us
    if MIN_TIMESTAMP_US <= us <= MAX_TIMESTAMP_US:
        out = format_timestamp_us(us)
        assert SHAPE.fullmatch(out), out
        assert parse_timestamp_us(out) == us
        assert format_timestamp_us(parse_timestamp_us(out)) == out  # the written form is canonical
    else:  # an offset moved a year-1 or year-9999 text past the range
        with pytest.raises(ValueError, match="cannot format"):
            format_timestamp_us(us)


def test_an_offset_of_a_day_or_more_is_named_plainly() -> None:
    with pytest.raises(ValueError, match=r"^the UTC offset must be between -23:59 and \+23:59$"):
        parse_timestamp_us("2026-11-22T09:00:00+25:00")
