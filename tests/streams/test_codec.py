"""streams.codec: every dead-letter reason of contract §2, valid events,
sla-outcomes records (§5) and the lead-state changelog bytes."""

from __future__ import annotations

import copy

import msgspec
import orjson
import pytest

from leadsla.models.clock import (
    BREACHED,
    IDLE,
    MET,
    PAUSED,
    RUNNING,
    Decision,
    LeadState,
    advance,
    apply,
    decision_id,
)
from leadsla.models.events import EventType, LeadEvent, parse_timestamp_us
from leadsla.streams.codec import (
    INVALID,
    MALFORMED,
    REASONS,
    STATE_VERSION,
    TOO_LARGE,
    UNKNOWN_TYPE,
    Rejection,
    decode,
    outcome_record,
    state_from_bytes,
    state_to_bytes,
)
from tests.models.conftest import H, M, ev, pol, ts

NOW = ts("2026-11-22T10:00:00Z")
SKEW = 15 * M
LIMIT = 65536

BASE = {
    "event_id": "e-1",
    "lead_id": "L1",
    "type": "lead.handed_off",
    "occurred_at": "2026-11-22T09:15:00Z",
    "team": "emea",
    "rep": "r-7",
}


def value(**changes: object) -> bytes:
    """BASE with fields changed; a value of ``...`` removes the field."""
    data = {k: v for k, v in {**BASE, **changes}.items() if v is not ...}
    return orjson.dumps(data)


def dec(key: bytes | None, val: bytes | None, limit: int = LIMIT) -> LeadEvent | Rejection:
    return decode(key, val, limit, NOW, SKEW)


def test_reasons_are_the_contract_ones() -> None:
    # The contract's four, and one of leadsla's own for an event the engine failed on.
    assert REASONS == ("malformed", "invalid", "unknown_type", "too_large", "processing_error")
    assert REASONS[:4] == (MALFORMED, INVALID, UNKNOWN_TYPE, TOO_LARGE)


# -- malformed --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("val", "error"),
    [
        (b"\xff\xfe\x00", "not JSON: str is not valid UTF-8: surrogates not allowed: line 1 column 1 (char 0)"),
        (b'{"event_id": "e-1", "lead_id": "L1"', "not JSON: unexpected end of data: line 1 column 36 (char 35)"),
        (b"{not json}", "not JSON: unexpected character, expected a string key: line 1 column 2 (char 1)"),
        (b"", "not JSON: Input is a zero-length, empty document: line 1 column 1 (char 0)"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b'[{"event_id": "e-1"}]', "expected a JSON object, got list"),
        (b'"lead.handed_off"', "expected a JSON object, got str"),
        (b"42", "expected a JSON object, got int"),
        (b"null", "expected a JSON object, got NoneType"),
        (None, "record has no value"),
    ],
)
def test_malformed(val: bytes | None, error: str) -> None:
    assert dec(b"L1", val) == Rejection(MALFORMED, error)


# -- invalid ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "val", "error"),
    [
        (b"L1", value(occurred_at=...), "occurred_at: Field required"),
        (b"L1", value(event_id=...), "event_id: Field required"),
        (b"L1", value(lead_id=...), "lead_id: Field required"),
        (b"L1", value(type=...), "type: Field required"),
        (b"", value(lead_id=""), "lead_id: String should have at least 1 character"),
        (b"L1", value(event_id=""), "event_id: String should have at least 1 character"),
        (b"x" * 201, value(lead_id="x" * 201), "lead_id: String should have at most 200 characters"),
        (
            b"L1",
            value(occurred_at="2026-11-22 9am"),
            "occurred_at: must be an RFC 3339 timestamp with an offset, e.g. 2026-11-22T09:15:00Z",
        ),
        (
            b"L1",
            value(occurred_at="2026-11-22T09:15:00"),
            "occurred_at: must be an RFC 3339 timestamp with an offset, e.g. 2026-11-22T09:15:00Z",
        ),
        (
            b"L1",
            value(occurred_at=1764000000),
            "occurred_at: must be an RFC 3339 timestamp with an offset, e.g. 2026-11-22T09:15:00Z",
        ),
        (b"L1", value(occurred_at="2026-02-30T09:00:00Z"), "occurred_at: day is out of range for month"),
        (b"L1", value(lead_id=42), "lead_id: Input should be a valid string"),
        (b"L1", value(event_id=["e-1"]), "event_id: Input should be a valid string"),
        (b"L1", value(team=7), "team: Input should be a valid string"),
        (b"L1", value(type=5), "type: Input should be 'lead.created', 'lead.mql', 'lead.handed_off', 'lead.contact_attempt', 'lead.connected', 'lead.accepted', 'lead.qualified', 'lead.disqualified', 'lead.recycled', 'opportunity.created', 'deal.won' or 'deal.lost'"),
        (b"L1", value(source="partner"), "source: Input should be 'marketing' or 'sales'"),
        (b"L1", value(amount=-1), "amount: Input should be greater than or equal to 0"),
        (b"L1", value(amount="100"), "amount: Input should be a valid number"),
        (b"L1", value(currency="eur"), "currency: String should match pattern '^[A-Z]{3}$'"),
        (b"L1", value(attributes={"form": 1}), "attributes.form: Input should be a valid string"),
        (b"L1", value(attributes=["form"]), "attributes: Input should be a valid dictionary"),
        (None, value(), "record has no key; the key must be the lead_id"),
        (b"L2", value(), "record key is not the lead_id (a lead's events must share a partition)"),
        (b"", value(), "record key is not the lead_id (a lead's events must share a partition)"),
        (b"l1", value(), "record key is not the lead_id (a lead's events must share a partition)"),
        (b"L1", value(occurred_at="2026-11-22T10:15:00.001Z"), "occurred_at 2026-11-22T10:15:00.001Z is in the future"),
        (b"L1", value(occurred_at="2026-11-23T09:00:00Z"), "occurred_at 2026-11-23T09:00:00Z is in the future"),
    ],
)
def test_invalid(key: bytes | None, val: bytes, error: str) -> None:
    assert dec(key, val) == Rejection(INVALID, error)


def test_invalid_reports_at_most_three_errors() -> None:
    val = orjson.dumps({"type": "lead.mql", "team": 1, "rep": 2, "region": 3, "segment": 4})
    r = dec(b"L1", val)
    assert isinstance(r, Rejection)
    assert r.reason == INVALID
    assert r.error == "event_id: Field required; lead_id: Field required; occurred_at: Field required (+4 more)"


@pytest.mark.parametrize(
    "occurred_at",
    [
        # Valid RFC 3339 whose UTC instant is past the year 9999: the message
        # must not try to spell it, and decode must not raise.
        "9999-12-31T23:59:59-01:00",
        "9999-12-31T23:59:59.999999-23:59",
    ],
)
def test_far_future_beyond_year_9999_is_invalid_not_a_crash(occurred_at: str) -> None:
    r = dec(b"L1", value(occurred_at=occurred_at))
    assert r == Rejection(INVALID, f"occurred_at {occurred_at} is in the future")


@pytest.mark.parametrize("occurred_at", ["0001-01-01T00:30:00+01:00", "0001-01-01T00:00:00Z",
                                         "1969-12-31T23:59:59.999999Z", "1970-01-01T00:30:00+01:00"])
def test_before_the_unix_epoch_is_invalid(occurred_at: str) -> None:
    # .NET's DateTime.MinValue and other placeholders: no lead event is that
    # old, and a period in a zone west of UTC would fall in year 0.
    r = dec(b"L1", value(occurred_at=occurred_at))
    assert r == Rejection(INVALID, f"occurred_at {occurred_at} is before 1970-01-01T00:00:00Z")


def test_the_unix_epoch_itself_is_accepted() -> None:
    r = dec(b"L1", value(occurred_at="1970-01-01T00:00:00Z"))
    assert isinstance(r, LeadEvent)
    assert r.occurred_at == 0


def test_occurred_at_exactly_at_the_skew_limit_is_accepted() -> None:
    r = dec(b"L1", value(occurred_at="2026-11-22T10:15:00Z"))
    assert isinstance(r, LeadEvent)
    assert r.occurred_at == NOW + SKEW
    r = dec(b"L1", value(occurred_at="2026-11-22T10:15:00.000001Z"))
    assert r == Rejection(INVALID, "occurred_at 2026-11-22T10:15:00.000001Z is in the future")


# -- unknown_type -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("etype", "error"),
    [
        ("lead.teleported", "unknown event type 'lead.teleported'"),
        ("LEAD.HANDED_OFF", "unknown event type 'LEAD.HANDED_OFF'"),
        ("", "unknown event type ''"),
        ("x" * 300, f"unknown event type {'x' * 100!r}"),
    ],
)
def test_unknown_type(etype: str, error: str) -> None:
    assert dec(b"L1", value(type=etype)) == Rejection(UNKNOWN_TYPE, error)


def test_unknown_type_wins_over_other_field_errors() -> None:
    val = orjson.dumps({"type": "lead.teleported", "occurred_at": "yesterday"})
    assert dec(None, val) == Rejection(UNKNOWN_TYPE, "unknown event type 'lead.teleported'")


# -- too_large --------------------------------------------------------------------


def _padded(total: int, key: bytes) -> bytes:
    """A valid value that makes key + value exactly ``total`` bytes (attribute
    values hold at most 1000 characters each, so the padding is spread)."""
    names = [f"pad{i:02d}" for i in range(80)]
    bare = len(value(attributes=dict.fromkeys(names, "")))
    pad = total - len(key) - bare
    assert 0 <= pad <= 1000 * len(names)
    attrs = {n: "y" * min(1000, max(0, pad - 1000 * i)) for i, n in enumerate(names)}
    out = value(attributes=attrs)
    assert len(out) + len(key) == total
    return out


def test_exactly_at_the_limit_is_accepted() -> None:
    val = _padded(LIMIT, b"L1")
    r = dec(b"L1", val)
    assert isinstance(r, LeadEvent)
    assert len(b"L1") + len(val) == LIMIT
    assert sum(len(v) for v in r.attributes.values()) == LIMIT - 2 - len(value(attributes=dict.fromkeys(r.attributes, "")))


def test_one_byte_over_the_limit_is_too_large() -> None:
    val = _padded(LIMIT + 1, b"L1")
    assert dec(b"L1", val) == Rejection(TOO_LARGE, "record is 65537 bytes; the limit is 65536")


def test_the_key_counts_towards_the_limit() -> None:
    val = value()
    assert isinstance(dec(b"L1", val, limit=len(val) + 2), LeadEvent)
    assert dec(b"L1", val, limit=len(val) + 1) == Rejection(
        TOO_LARGE, f"record is {len(val) + 2} bytes; the limit is {len(val) + 1}"
    )


def test_too_large_is_checked_before_parsing() -> None:
    junk = b"\xff" * 300
    assert dec(b"k", junk, limit=256) == Rejection(TOO_LARGE, "record is 301 bytes; the limit is 256")
    assert dec(b"k" * 300, None, limit=256) == Rejection(TOO_LARGE, "record is 300 bytes; the limit is 256")


# -- valid ------------------------------------------------------------------------


def test_valid_event_decodes_with_epoch_microseconds() -> None:
    r = dec(b"L1", value(channel="call", amount=1200.5, currency="EUR", source="sales", attributes={"form": "demo_request"}))
    assert isinstance(r, LeadEvent)
    assert r.event_id == "e-1"
    assert r.lead_id == "L1"
    assert r.type == EventType.HANDED_OFF
    assert r.occurred_at == 1_795_338_900_000_000  # 2026-11-22T09:15:00Z
    assert r.team == "emea" and r.rep == "r-7" and r.channel == "call" and r.source == "sales"
    assert r.amount == 1200.5 and r.currency == "EUR"
    assert r.attributes == {"form": "demo_request"}
    assert r.segment is None and r.persona is None and r.region is None


@pytest.mark.parametrize(
    ("text", "us"),
    [
        ("2026-11-22T09:15:00Z", 1_795_338_900_000_000),
        ("2026-11-22T10:15:00+01:00", 1_795_338_900_000_000),
        ("2026-11-22T04:15:00-05:00", 1_795_338_900_000_000),
        ("2026-11-22T09:15:00.123456Z", 1_795_338_900_123_456),
        ("2026-11-22T09:15:00.5z", 1_795_338_900_500_000),
        ("1970-01-01T00:00:00Z", 0),
    ],
)
def test_occurred_at_with_offsets(text: str, us: int) -> None:
    r = dec(b"L1", value(occurred_at=text))
    assert isinstance(r, LeadEvent)
    assert r.occurred_at == us


def test_unknown_extra_fields_are_ignored() -> None:
    val = value(schema_version=3, crm={"id": 17, "tags": ["a"]}, score=None)
    r = dec(b"L1", val)
    assert isinstance(r, LeadEvent)
    assert set(r.model_dump()) == {
        "event_id", "lead_id", "type", "occurred_at", "source", "segment", "persona", "team", "rep",
        "region", "channel", "amount", "currency", "attributes",
    }
    assert r.occurred_at == 1_795_338_900_000_000


def test_non_ascii_lead_id_key_is_utf8() -> None:
    val = value(lead_id="lead-ü-1")
    r = dec("lead-ü-1".encode(), val)
    assert isinstance(r, LeadEvent)
    assert r.lead_id == "lead-ü-1"
    assert dec("lead-ü-1".encode("latin-1"), val) == Rejection(
        INVALID, "record key is not the lead_id (a lead's events must share a partition)"
    )


# -- sla-outcomes records -----------------------------------------------------------

POLICY = """
policies:
  - name: first_touch
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected]
    goal: 1h
"""
T = ts("2026-11-22T09:00:00Z")


def _decide(stop_at: int | None) -> Decision:
    ps = pol(POLICY)
    st = LeadState()
    apply(st, ev("lead.handed_off", T, "h1", team="emea", rep="r-7"), ps, T, now=T + 5)
    if stop_at is None:
        decisions = advance(st, ps, "L1", T + H + 1, now=T + H + 2 * M).decisions
    else:
        decisions = apply(st, ev("lead.contact_attempt", stop_at, "a1"), ps, stop_at, now=stop_at + 250_000).decisions
    assert len(decisions) == 1
    return decisions[0]


def test_outcome_record_of_a_met_clock() -> None:
    d = _decide(T + 30 * M + 1500)
    rec = orjson.loads(outcome_record(d, 3600 * 1_000_000))
    assert rec == {
        "decision_id": decision_id("L1", "first_touch", T, "decided", 1),
        "lead_id": "L1",
        "policy": "first_touch",
        "outcome": "met",
        "cycle": 1,
        "started_at": "2026-11-22T09:00:00Z",
        "deadline": "2026-11-22T10:00:00Z",
        "decided_at": "2026-11-22T09:30:00.251500Z",
        "watermark": "2026-11-22T09:30:00.001500Z",
        "goal_seconds": 3600.0,
        "stopped_at": "2026-11-22T09:30:00.001500Z",
        "elapsed_seconds": 1800.0015,
        "team": "emea",
        "rep": "r-7",
        "was_at_risk": False,
    }
    for name in ("started_at", "deadline", "decided_at", "watermark", "stopped_at"):
        assert parse_timestamp_us(rec[name]) is not None  # RFC 3339 with an offset
    assert parse_timestamp_us(rec["stopped_at"]) == T + 30 * M + 1500
    assert len(rec["decision_id"]) == 32


def test_outcome_record_of_a_breach_has_no_stop() -> None:
    d = _decide(None)
    rec = orjson.loads(outcome_record(d, 3600 * 1_000_000))
    assert rec["outcome"] == "breached"
    assert rec["stopped_at"] is None
    assert rec["elapsed_seconds"] is None
    assert rec["was_at_risk"] is True  # at risk at 80 % (48 min) before the breach
    assert rec["started_at"] == "2026-11-22T09:00:00Z"
    assert rec["deadline"] == "2026-11-22T10:00:00Z"
    assert rec["watermark"] == "2026-11-22T10:00:00.000001Z"
    assert rec["decided_at"] == "2026-11-22T10:02:00Z"
    assert rec["decision_id"] == decision_id("L1", "first_touch", T, "decided", 1)


def test_decision_id_is_stable_across_resends() -> None:
    a, b = _decide(T + 10 * M), _decide(T + 10 * M)
    assert orjson.loads(outcome_record(a, 1))["decision_id"] == orjson.loads(outcome_record(b, 1))["decision_id"]
    assert outcome_record(a, 3600 * 1_000_000) == outcome_record(b, 3600 * 1_000_000)


# -- lead state <-> changelog bytes ---------------------------------------------------

RICH = """
policies:
  - name: first_touch
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected]
    goal: 1h
  - name: disposition
    start: lead.handed_off
    stop: [lead.qualified, lead.disqualified]
    pause: {type: lead.contact_attempt, match: {attributes.outcome: waiting_on_prospect}}
    resume: lead.connected
    goal: 2d
  - name: acceptance
    start: lead.accepted
    stop: opportunity.created
    goal: 1d
  - name: quick
    start: lead.handed_off
    stop: deal.won
    goal: 10m
  - name: slow
    start: lead.handed_off
    stop: deal.lost
    goal: 1h
    at_risk: 0.25
"""


def _rich_state() -> tuple[LeadState, object]:
    ps = pol(RICH)
    st = LeadState()
    steps = [
        (ev("lead.handed_off", T, "h1", team="emea", rep="r-7"), T),
        (ev("lead.contact_attempt", T + 5 * M, "a1", attributes={"outcome": "waiting_on_prospect"}), T + 5 * M),
        (ev("opportunity.created", T + 8 * M, "o1"), T + 8 * M),  # no acceptance clock yet: kept in the log
        (ev("lead.connected", T + 3 * H, "c1"), T + 20 * M),  # ahead of the watermark: buffered
    ]
    for event, w in steps:
        assert not apply(st, event, ps, w, now=w + 1).duplicate
    return st, ps


def test_rich_state_is_really_rich() -> None:
    st, _ = _rich_state()
    c = st.clocks
    assert (c["first_touch"].status, c["first_touch"].last_outcome) == (IDLE, MET)
    assert c["disposition"].status == PAUSED and c["disposition"].paused
    assert "acceptance" not in c and (T + 8 * M, "acceptance") in [(x[0], n) for x in st.log for n, _ in x[3]]
    assert (c["quick"].status, c["quick"].last_outcome, c["quick"].last_open) == (IDLE, BREACHED, True)
    assert c["slow"].status == RUNNING and c["slow"].at_risk
    assert [(b[0], b[2]) for b in st.buffer] == [(T + 3 * H, "lead.connected")]
    assert len(st.seen) == 4
    assert (st.owner_team, st.owner_rep, st.handoff_at, st.touched) == ("emea", "r-7", T, True)
    assert st.last_event_at == T + 3 * H


def test_state_round_trip() -> None:
    st, _ = _rich_state()
    raw = state_to_bytes(3, st)
    head = [orjson.loads(raw)[k] for k in ("v", "partition")] if raw[:1] == b"{" else msgspec.msgpack.decode(raw)[:2]
    assert head == [STATE_VERSION, 3]
    entry = state_from_bytes(raw)
    partition, back = entry.partition, entry.state
    assert partition == 3 and not entry.legacy
    assert back == st
    assert back is not st
    assert state_to_bytes(3, back) == raw


def test_round_tripped_state_behaves_the_same() -> None:
    st, ps = _rich_state()
    back = state_from_bytes(state_to_bytes(0, st)).state
    twin = copy.deepcopy(st)
    later = [
        (ev("deal.lost", T + 30 * M, "l1"), T + 40 * M),
        (ev("lead.accepted", T + 4 * M, "acc"), T + 3 * H + 1),  # late start meets the orphan stop
        (ev("deal.won", T + 9 * M, "w1"), T + 3 * H + 2),  # late stop of a breach: a correction
        (ev("lead.qualified", T + 4 * H, "q1"), T + 4 * H),
    ]
    for event, w in later:
        assert apply(back, event, ps, w, now=w) == apply(twin, event, ps, w, now=w)
    assert back == twin
    assert advance(back, ps, "L1", T + 9 * 86400 * 1_000_000, 1) == advance(twin, ps, "L1", T + 9 * 86400 * 1_000_000, 1)


def test_empty_state_round_trip() -> None:
    st = LeadState()
    entry = state_from_bytes(state_to_bytes(0, st))
    assert (entry.partition, entry.state) == (0, st)
