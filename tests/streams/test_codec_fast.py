"""streams.codec.decode: the typed decode gives what the reference path
(the whole JSON parsed, then LeadEvent.model_validate) gives, for every
record: the same event, or the same reason and the same message."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from leadsla.models.events import EVENT_TYPES, LeadEvent
from leadsla.streams import codec
from leadsla.streams.codec import Rejection, decode, decode_reference
from tests.integration.hostile import ACCEPTED, DUPLICATE, Hostile
from tests.models.conftest import M, ts

NOW = ts("2026-11-22T10:00:00Z")
SKEW = 15 * M
LIMIT = 65536


def same(key: bytes | None, value: bytes | None, limit: int = LIMIT) -> LeadEvent | Rejection:
    """decode's answer, after checking it is the reference path's to the last detail."""
    fast = decode(key, value, limit, NOW, SKEW)
    ref = decode_reference(key, value, limit, NOW, SKEW)
    assert fast == ref
    if isinstance(ref, LeadEvent):
        assert isinstance(fast, LeadEvent)
        assert list(fast.__dict__.items()) == list(ref.__dict__.items())  # values and field order
        assert [type(v) for v in fast.__dict__.values()] == [type(v) for v in ref.__dict__.values()]
        assert fast.model_fields_set == ref.model_fields_set
        assert (fast.__pydantic_extra__, fast.__pydantic_private__) == (ref.__pydantic_extra__, ref.__pydantic_private__)
        assert repr(fast) == repr(ref)
        assert fast.model_dump() == ref.model_dump()
        assert fast.model_dump(exclude_unset=True) == ref.model_dump(exclude_unset=True)
    return fast


# -- records, valid and not ----------------------------------------------------------

# Strings at and around the contract's bounds, in characters: a non-BMP
# character is one character and four UTF-8 bytes.
def around(n: int) -> st.SearchStrategy[str]:
    return st.builds(lambda k, c: c * k, st.sampled_from([n - 1, n, n + 1]), st.sampled_from(["x", "é", "\U0001f600"]))


SHORT = st.text(st.characters(codec="utf-8"), max_size=8)
JUNK: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=2), st.dictionaries(SHORT, st.integers(), max_size=2),
    st.recursive(st.integers(), lambda inner: st.lists(inner, max_size=2), max_leaves=6),
)
# Valid values of each field (tame), and valid or not (wild).
IDS = st.one_of(st.from_regex(r"[A-Za-z0-9-]{1,12}", fullmatch=True), st.text(st.characters(codec="utf-8"), min_size=1, max_size=8),
                around(200).filter(lambda t: len(t) <= 200))
WILD_IDS = st.one_of(IDS, around(200), st.just(""))
TYPES = st.sampled_from(sorted(EVENT_TYPES))
WILD_TYPES = TYPES | st.sampled_from(["lead.teleported", "LEAD.MQL", ""])
DIMS = st.one_of(st.sampled_from(["emea", "na_east"]), SHORT, around(200).filter(lambda t: len(t) <= 200), st.none())
ATTRIBUTES = st.one_of(
    st.dictionaries(SHORT, SHORT, max_size=4),
    st.dictionaries(around(200), around(1000), max_size=2).filter(
        lambda d: all(len(k) <= 200 and len(v) <= 1000 for k, v in d.items())),
    st.dictionaries(st.from_regex(r"k[0-9]{1,3}", fullmatch=True), st.just("v"), min_size=98, max_size=100),
)
OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "source": st.sampled_from(["marketing", "sales", None]),
    "segment": DIMS, "persona": DIMS, "team": DIMS, "rep": DIMS, "region": DIMS, "channel": DIMS,
    "amount": st.one_of(
        st.floats(min_value=0, allow_nan=False, allow_infinity=False), st.integers(0, 2**70), st.just(-0.0),
        st.sampled_from([2**64 - 1, 2**64, 10**30, 1e308, 5e-324]), st.none(),
    ),
    "currency": st.sampled_from(["EUR", "USD", None]),
    "attributes": ATTRIBUTES,
}
WILD_OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "source": OPTIONAL["source"] | st.sampled_from(["partner", "Sales"]),
    **{name: DIMS | around(200) for name in ("segment", "persona", "team", "rep", "region", "channel")},
    "amount": OPTIONAL["amount"] | st.floats(max_value=0) | st.integers(-5, 0),
    "currency": st.one_of(st.sampled_from(["eur", "EU", "EURO", "E1R", "EUR\n", "ÉUR"]), SHORT, OPTIONAL["currency"]),
    "attributes": st.one_of(ATTRIBUTES, st.dictionaries(around(200), around(1000), max_size=2), st.none(),
                            st.dictionaries(st.from_regex(r"k[0-9]{1,3}", fullmatch=True), st.just("v"), min_size=101, max_size=102)),
}


@st.composite
def stamps(draw: st.DrawFn, wild: bool = True) -> str:
    """occurred_at texts: RFC 3339 in every spelling the contract allows from
    the epoch to the skew limit (tame), and (wild) some past either end,
    fields out of range, and near misses."""
    kind = draw(st.integers(0, 4)) if wild else 0
    if kind == 0:
        us = draw(st.integers(0, NOW + SKEW) | st.sampled_from([0, NOW + SKEW, NOW]))
        if wild:
            us = draw(st.sampled_from([us, -1, NOW + SKEW + 1, -(10**6), NOW + SKEW + 10**6]))
        offset = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59) | st.just(0))
        local = datetime(1970, 1, 1) + timedelta(microseconds=us, minutes=offset)
        digits = draw(st.sampled_from([0, 1, 3, 6, 9]))
        # digits past the sixth are dropped: the instant is still us
        frac = f".{local.microsecond:06d}{draw(st.sampled_from(['000', '999']))}"[: digits + 1] if digits else ""
        if local.microsecond % 10 ** (6 - min(digits, 6)):
            frac = f".{local.microsecond:06d}999"  # a shorter fraction would move the instant
        sep = draw(st.sampled_from("Tt "))
        if offset == 0 and draw(st.booleans()):
            zone = draw(st.sampled_from("Zz"))
        else:
            sign = "-" if offset < 0 or (offset == 0 and draw(st.booleans())) else "+"
            zone = f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
        return local.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + frac + zone
    if kind == 1:  # every field in range or just out of it
        year = draw(st.sampled_from([0, 1, 1969, 1970, 2024, 2026, 9999]))
        mo, d, h = draw(st.integers(0, 13)), draw(st.integers(0, 32)), draw(st.integers(0, 25))
        mi, s, oh, om = draw(st.integers(0, 60)), draw(st.integers(0, 61)), draw(st.integers(0, 25)), draw(st.integers(0, 59))
        zone = draw(st.sampled_from(["Z", f"+{oh:02d}:{om:02d}", f"-{oh:02d}:{om:02d}"]))
        return f"{year:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{zone}"
    if kind == 2:
        return draw(st.sampled_from([
            "2026-11-22T09:15:00Z", "2026-11-22T10:15:00Z", "2026-11-22T10:15:00.000001Z", "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999999Z", "9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+01:00",
            "2026-02-29T09:00:00Z", "2024-02-29T09:00:00Z", "2026-11-22T09:15:60Z", "2026-11-22T24:00:00Z",
            "2026-11-22T09:15:00+24:00", "2026-11-22T09:15:00.Z", "2026-11-22T09:15", "2026-11-22T09:15:00",
            "2026-11-22T09:15:00.1234567890Z", "\uff12\uff10\uff12\uff16-11-22T09:15:00Z", "0000-01-01T00:00:00Z",
        ]))
    return draw(SHORT)


class Raw:
    """JSON text spliced into a record as it is."""

    def __init__(self, text: bytes) -> None:
        self.text = text


def dumps(value: Any) -> bytes:
    # json, not orjson: it writes integers of any size
    return value.text if isinstance(value, Raw) else json.dumps(value, ensure_ascii=False).encode()


@st.composite
def records(draw: st.DrawFn) -> tuple[bytes | None, bytes | None, int]:
    """(key, value, size limit). Half are tame: valid events of the usual
    shape. The other half are wild: fields wrong, missing, sent twice or
    joined by one the contract does not name, text damaged, keys wrong, sizes
    at the limit."""
    wild = draw(st.booleans())
    fields: list[tuple[str, Any]] = [
        ("event_id", draw(WILD_IDS if wild else IDS)), ("lead_id", draw(WILD_IDS if wild else IDS)),
        ("type", draw(WILD_TYPES if wild else TYPES)), ("occurred_at", draw(stamps(wild))),
    ]
    for name, values in (WILD_OPTIONAL if wild else OPTIONAL).items():
        if draw(st.integers(0, 2)) == 0:
            fields.append((name, draw(values)))
    if draw(st.booleans()):
        fields = draw(st.permutations(fields))
    if wild and draw(st.integers(0, 3)) == 0:
        i = draw(st.integers(0, len(fields) - 1))
        fields[i] = (fields[i][0], draw(JUNK))
    if wild and draw(st.integers(0, 5)) == 0:
        del fields[draw(st.integers(0, len(fields) - 1))]
    if fields and draw(st.integers(0, 7)) == 0:  # a field sent twice: the last value counts
        name = draw(st.sampled_from(fields))[0]
        fields.append((name, draw(st.one_of(WILD_IDS, JUNK, stamps())) if wild else dict(fields)[name]))
    if wild and draw(st.integers(0, 3)) == 0:
        extra = draw(st.one_of(
            JUNK, st.just(Raw(b"[" * 1100 + b"]" * 1100)), st.just(Raw(b'"\\ud800"')), st.just(Raw(b"1e400")),
            st.just(Raw(b"100000000000000000000000000000")), st.just(Raw(b'{"a": {"b": [1, "\\u00e9"]}}')),
        ))
        fields.insert(draw(st.integers(0, len(fields))), (draw(st.sampled_from(["schema_version", "crm", "Team"])), extra))
    if draw(st.integers(0, 5)) == 0 and any(n == "attributes" and isinstance(v, dict) for n, v in fields):
        # an attribute sent twice: the last value counts, in the first one's place
        i = next(i for i, (n, v) in enumerate(fields) if n == "attributes")
        pairs = [*fields[i][1].items(), ("dup", "1"), ("x", "2"), ("dup", "3")]
        fields[i] = ("attributes", Raw(b"{" + b",".join(dumps(k) + b":" + dumps(v) for k, v in pairs) + b"}"))
    sep, colon = draw(st.sampled_from([(b",", b":"), (b", ", b": "), (b"\n\t,", b" :\r\n")]))
    value: bytes | None = b"{" + sep.join(dumps(k) + colon + dumps(v) for k, v in fields) + b"}"
    assert value is not None
    damage = draw(st.integers(0, 6)) if wild else -1
    if damage == 0:
        value = value[: draw(st.integers(0, len(value)))]
    elif damage == 1:
        i = draw(st.integers(0, len(value) - 1))
        value = value[:i] + bytes([draw(st.integers(0, 255))]) + value[i + 1 :]
    elif damage == 2:
        i = draw(st.integers(0, len(value)))
        value = value[:i] + draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\\ud800", b"\x00", b" ", b"\xef\xbb\xbf", b"\n"])) + value[i:]
    elif damage == 3:
        value = draw(st.sampled_from([b"[" + value + b"]", b"null", b"42", b'"x"', b"", None]))
    lead = dict(fields).get("lead_id")
    key_choice = draw(st.integers(0, 5)) if wild else 5
    if key_choice == 0:
        key = None
    elif key_choice == 1 or not isinstance(lead, str):
        key = draw(st.binary(max_size=8))
    else:
        key = lead.encode()
    size = len(key or b"") + len(value or b"")
    limit = draw(st.sampled_from([LIMIT, size, size - 1, size + 1] if wild else [LIMIT, size]))
    return key, value, limit


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(records())
@example((b"L1", b'{"event_id":"e","lead_id":"L1","type":"lead.mql","occurred_at":"2026-11-22T09:00:00Z","team":null}', LIMIT))
@example((b"L1", b'{"event_id":"e","lead_id":"L1","type":"lead.mql","occurred_at":"2026-11-22T09:00:00Z","amount":10}', LIMIT))
@example((b"L1", b'{"event_id":"e","lead_id":"L1","lead_id":"L2","type":"lead.mql","occurred_at":"2026-11-22T09:00:00Z"}', LIMIT))
@example((b"L1", b'{"event_id":"e","lead_id":"L1","type":"lead.mql","occurred_at":"2026-11-22T09:00:00Z","currency":"EUR\\n"}', LIMIT))
@example((b"L1", b'{"event_id":"e","lead_id":"L1","type":"lead.mql","occurred_at":"2026-11-22T09:00:00Z","x":' + b"[" * 2000 + b"]" * 2000 + b"}", LIMIT))
@example((b"L1", b'{"event_id":"e","lead_id":"L1","type":"lead.mql","occurred_at":"2026-11-22T09:00:00Z","x":"\xff"}', LIMIT))
@example((b"L1", b'{"event_id":"e","lead_id":"L1","type":"lead.mql","occurred_at":"2026-11-22T09:00:00Z","x":1e400}', LIMIT))
def test_decode_answers_as_the_reference_path(case: tuple[bytes | None, bytes | None, int]) -> None:
    key, value, limit = case
    same(key, value, limit)


def test_hostile_records_are_answered_as_the_reference_path() -> None:
    # The worker fuzz test's records (tests/integration/test_fuzz.py), decoded
    # here without a broker: the same answer, and one the record allows.
    now = datetime.fromtimestamp(NOW / 1e6, UTC)
    answers = {ACCEPTED: 0}
    for rec in Hostile(20261206, now).records(10_000):
        r = same(rec.key, rec.value, 64 * 1024)
        outcome = r.reason if isinstance(r, Rejection) else ACCEPTED
        assert outcome in rec.expect or (outcome == ACCEPTED and DUPLICATE in rec.expect), (rec.kind, r)
        answers[outcome] = answers.get(outcome, 0) + 1
    assert answers[ACCEPTED] > 500 and len(answers) == 5, answers


# -- the typed pass does answer the usual records -------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"event_id": "e-1", "lead_id": "L1", "type": "lead.handed_off", "occurred_at": "2026-11-22T09:15:00Z"},
        {"lead_id": "L1", "segment": "smb", "region": "na_west", "source": "marketing", "persona": "executive",
         "type": "lead.created", "occurred_at": "2026-11-09T03:55:35.565223Z", "event_id": "0f9175a2-c132"},
        {"event_id": "e-2", "lead_id": "L1", "type": "deal.won", "occurred_at": "2026-11-22T10:15:00.250+01:00",
         "team": "emea", "rep": "r-1", "channel": "call", "amount": 1200.5, "currency": "EUR",
         "attributes": {"form": "demo_request"}, "persona": None},
    ],
)
def test_a_valid_record_is_decoded_without_the_reference_path(fields: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    value = orjson.dumps(fields)
    expected = decode_reference(b"L1", value, LIMIT, NOW, SKEW)
    assert isinstance(expected, LeadEvent)

    def refuse(*args: object) -> LeadEvent | Rejection:
        raise AssertionError("the reference path was taken")

    monkeypatch.setattr(codec, "decode_reference", refuse)
    got = decode(b"L1", value, LIMIT, NOW, SKEW)
    assert got == expected and got.model_fields_set == expected.model_fields_set
