"""streams.codec: the lead-state changelog formats. Version 3 (MessagePack)
round-trips any state; records written in version 2 (JSON), as the release
before wrote them, still decode to the state they were written from."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadsla.models.clock import NEVER, Clock, LeadState, apply
from leadsla.models.events import LeadEvent, format_timestamp_us
from leadsla.models.policy import parse_policies
from leadsla.streams import codec
from leadsla.streams.codec import LeadEntry, state_from_bytes, state_to_bytes

_CLOCK_DEFAULTS = tuple((f.name, f.default) for f in dataclasses.fields(Clock))


def v2_bytes(partition: int, s: LeadState) -> bytes:
    """A version 2 record exactly as the release before wrote it (its
    ``state_to_bytes``, copied here to stand for that release)."""
    clocks = {name: {k: v for k, d in _CLOCK_DEFAULTS if (v := getattr(c, k)) != d} for name, c in s.clocks.items()}
    return orjson.dumps({
        "v": 2, "partition": partition, "seen": s.seen, "buffer": s.buffer, "log": s.log, "clocks": clocks,
        "last_event_at": s.last_event_at, "owner": {"team": s.owner_team, "rep": s.owner_rep, "at": s.owner_at},
        "handoff_at": s.handoff_at, "touched": s.touched, "shown": s.shown, "too_late": s.too_late,
        "delivered": s.delivered, "received_w": s.received_w,
    })


def v3_bytes(partition: int, s: LeadState) -> bytes:
    """A version 3 record, whichever version ``state_to_bytes`` writes."""
    return msgspec.msgpack.encode((3, partition, s))


# Version 2 records written by the release before: three lead states of an
# engine run over the example policies (bench/run.py's traffic), and one made
# by hand with what those lack (a buffer, lateness, an untouched handoff).
V2_RECORDS = {
    'plain': (
        b'{"v":2,"partition":6,"seen":[3543888858694948152],"buffer":[],"log":[],"clocks":{},"last_event_at":1'
        b'794146844162488,"owner":{"team":null,"rep":null,"at":-4611686018427387904},"handoff_at":null,"touche'
        b'd":true,"shown":{},"too_late":[],"delivered":{},"received_w":1793542044162488}'
    ),
    'delivered': (
        b'{"v":2,"partition":6,"seen":[3332208596959353988,5320581237328674044],"buffer":[],"log":[],"clocks":'
        b'{},"last_event_at":1794226836922667,"owner":{"team":null,"rep":null,"at":-4611686018427387904},"hand'
        b'off_at":null,"touched":true,"shown":{},"too_late":[],"delivered":{"mql_volume|2026-11":[179422683692'
        b'2667,10.0]},"received_w":1793622036922667}'
    ),
    'four_clocks': (
        b'{"v":2,"partition":6,"seen":[7914475687880449581,3880576890520876830,8067547876566881188],"buffer":['
        b'],"log":[[1794229678843174,8067547876566881188,"lead.handed_off",[["first_touch","start"],["disposit'
        b'ion","start"],["demo_request_first_touch","start"],["follow_up_depth","start"]],"na_west","rep-08"]]'
        b',"clocks":{"first_touch":{"cycle":1,"started_at":1794229678843174,"deadline":1794233278843174,"at_ri'
        b'sk_at":1794232378843174,"at_risk":true,"resumed_at":1794229678843174,"team":"na_west","rep":"rep-08"'
        b',"last_outcome":"breached","last_started":1794229678843174,"last_deadline":1794233278843174,"last_op'
        b'en":true,"last_end":1794233278843174,"opened_at":1794229678843174,"first_outcome":"breached","goal":'
        b'3600000000,"timing":306864676},"disposition":{"cycle":1,"status":1,"started_at":1794229678843174,"de'
        b'adline":1794402478843174,"at_risk_at":1794334078843174,"resumed_at":1794229678843174,"team":"na_west'
        b'","rep":"rep-08","opened_at":1794229678843174,"goal":72000000000,"timing":209276018},"demo_request_f'
        b'irst_touch":{"cycle":1,"started_at":1794229678843174,"deadline":1794230578843174,"at_risk_at":179423'
        b'0353843174,"at_risk":true,"resumed_at":1794229678843174,"team":"na_west","rep":"rep-08","last_outcom'
        b'e":"breached","last_started":1794229678843174,"last_deadline":1794230578843174,"last_open":true,"las'
        b't_end":1794230578843174,"opened_at":1794229678843174,"first_outcome":"breached","goal":900000000,"ti'
        b'ming":1017839429},"follow_up_depth":{"cycle":1,"status":1,"started_at":1794229678843174,"deadline":1'
        b'794834478843174,"at_risk_at":1794515878843174,"resumed_at":1794229678843174,"team":"na_west","rep":"'
        b'rep-08","opened_at":1794229678843174,"goal":180000000000,"timing":458797605}},"last_event_at":179422'
        b'9678843174,"owner":{"team":"na_west","rep":"rep-08","at":1794229678843174},"handoff_at":179422967884'
        b'3174,"touched":false,"shown":{"disposition":["na_west","rep-08",1,false],"follow_up_depth":["na_west'
        b'","rep-08",1,false]},"too_late":[],"delivered":{"mql_volume|2026-11":[1794228575843174,50.0]},"recei'
        b'ved_w":1793624878843174}'
    ),
    'too_late': (
        b'{"v":2,"partition":6,"seen":[1,4611686018427387904],"buffer":[[1795338900000000,7,"lead.connected",['
        b'["first_touch","stop"]],"emea \xc3\xbc",null]],"log":[],"clocks":{"first_touch":{"cycle":2,"status":2,"sta'
        b'rted_at":5,"deadline":9,"at_risk":true,"team":"emea \xc3\xbc","rep":"r|1","last_outcome":"breached","goal"'
        b':3600000000,"timing":17}},"last_event_at":1795338900000000,"owner":{"team":"emea \xc3\xbc","rep":null,"at"'
        b':1795338800000000},"handoff_at":null,"touched":false,"shown":{"first_touch":["emea \xc3\xbc",null,2,true]}'
        b',"too_late":[[1795338000000000,"first_touch","stop"],[1795338000000001,"disposition","start"]],"deli'
        b'vered":{"revenue|2026-11":[1795338900000000,1250.75]},"received_w":1795338950000000}'
    ),
}


@pytest.mark.parametrize("name", sorted(V2_RECORDS))
def test_a_version_2_record_decodes_to_the_state_it_was_written_from(name: str) -> None:
    raw = V2_RECORDS[name]
    entry = state_from_bytes(raw)
    assert not entry.legacy
    # Written again as that release wrote it: the same bytes, so every field came back.
    assert v2_bytes(entry.partition, entry.state) == raw
    back = state_from_bytes(v3_bytes(entry.partition, entry.state))
    assert (back.partition, back.state, repr(back.state)) == (entry.partition, entry.state, repr(entry.state))


def test_the_version_2_records_hold_what_they_say() -> None:
    plain = state_from_bytes(V2_RECORDS["plain"])
    assert plain.partition == 6 and plain.state.clocks == {} and plain.state.owner_at == NEVER
    assert plain.state.seen == [3543888858694948152]
    four = state_from_bytes(V2_RECORDS["four_clocks"]).state
    assert sorted(four.clocks) == ["demo_request_first_touch", "disposition", "first_touch", "follow_up_depth"]
    assert four.clocks["first_touch"].last_outcome == "breached" and four.clocks["first_touch"].status == 0
    assert four.log[0][2:] == ("lead.handed_off", (("first_touch", "start"), ("disposition", "start"),
                                                   ("demo_request_first_touch", "start"), ("follow_up_depth", "start")),
                               "na_west", "rep-08")
    late = state_from_bytes(V2_RECORDS["too_late"])
    assert late.partition == 6
    s = late.state
    assert s.too_late == ((1795338000000000, "first_touch", "stop"), (1795338000000001, "disposition", "start"))
    assert s.buffer == ((1795338900000000, 7, "lead.connected", (("first_touch", "stop"),), "emea ü", None),)
    assert (s.owner_team, s.owner_rep, s.owner_at, s.handoff_at, s.touched) == ("emea ü", None, 1795338800000000, None, False)
    assert s.shown == {"first_touch": ("emea ü", None, 2, True)}
    assert s.delivered == {"revenue|2026-11": (1795338900000000, 1250.75)}
    c = s.clocks["first_touch"]
    assert (c.cycle, c.status, c.at_risk, c.rep, c.goal, c.timing, c.consumed) == (2, 2, True, "r|1", 3600000000, 17, 0)


# -- any state -------------------------------------------------------------------------

INTS = st.integers(-(2**63), 2**63 - 1)
INSTANTS = st.one_of(st.integers(0, 2**53), st.just(NEVER), INTS)
TEXT = st.text(st.characters(codec="utf-8"), max_size=6)
NAMES = st.one_of(st.sampled_from(["first_touch", "disposition", "follow_up_depth"]), TEXT)
ROLES = st.lists(st.tuples(NAMES, st.sampled_from(["start", "stop", "pause", "resume", "attempt"])), max_size=4).map(tuple)
ITEMS = st.tuples(INSTANTS, st.integers(0, 2**63 - 1), st.sampled_from(["lead.handed_off", "lead.connected"]) | TEXT,
                  ROLES, TEXT | st.none(), TEXT | st.none())


def _field(default: Any) -> st.SearchStrategy[Any]:
    """Values of a clock field of the type its default has."""
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return INSTANTS
    return TEXT | st.none()


# Every clock field by its default's type, so a field added to Clock is drawn too.
CLOCKS = st.builds(Clock, **{f.name: _field(f.default) for f in dataclasses.fields(Clock)})
STATES = st.builds(
    LeadState,
    seen=st.lists(st.integers(0, 2**63 - 1), max_size=6),
    buffer=st.lists(ITEMS, max_size=3).map(tuple),
    log=st.lists(ITEMS, max_size=3),
    clocks=st.dictionaries(NAMES, CLOCKS, max_size=4),
    last_event_at=INSTANTS,
    owner_team=TEXT | st.none(),
    owner_rep=TEXT | st.none(),
    owner_at=INSTANTS,
    handoff_at=INSTANTS | st.none(),
    touched=st.booleans(),
    shown=st.dictionaries(NAMES, st.tuples(TEXT | st.none(), TEXT | st.none(), st.integers(0, 3), st.booleans())),
    too_late=st.lists(st.tuples(INSTANTS, NAMES, st.sampled_from(["start", "stop"])), max_size=2).map(tuple),
    delivered=st.dictionaries(TEXT, st.tuples(INSTANTS, st.floats(allow_nan=False, allow_infinity=False)), max_size=2),
    received_w=INSTANTS,
)


def _same(a: LeadEntry, partition: int, s: LeadState) -> None:
    assert (a.partition, a.state) == (partition, s)
    assert repr(a.state) == repr(s)  # the same types too: tuples stay tuples, floats floats
    assert not a.legacy


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 2**31 - 1), STATES)
def test_any_state_round_trips(partition: int, s: LeadState) -> None:
    raw = state_to_bytes(partition, s)
    _same(state_from_bytes(raw), partition, s)
    assert state_to_bytes(partition, state_from_bytes(raw).state) == raw


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 2**31 - 1), STATES)
def test_any_state_round_trips_in_version_3(partition: int, s: LeadState) -> None:
    raw = v3_bytes(partition, s)
    _same(state_from_bytes(raw), partition, s)
    assert v3_bytes(partition, state_from_bytes(raw).state) == raw


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 2**31 - 1), STATES)
def test_any_state_written_in_version_2_decodes(partition: int, s: LeadState) -> None:
    _same(state_from_bytes(v2_bytes(partition, s)), partition, s)


def test_state_to_bytes_writes_the_version_it_names() -> None:
    s = LeadState(seen=[1], clocks={"first_touch": Clock(cycle=1, status=1)})
    assert codec.STATE_VERSIONS == (2, 3)
    for version, raw in ((2, v2_bytes(5, s)), (3, v3_bytes(5, s))):
        assert state_to_bytes(5, s, version) == raw
    assert state_to_bytes(5, s) == v3_bytes(5, s)  # the default: version 3


# -- version 3 across releases ------------------------------------------------------------


def _v3_fields(s: LeadState) -> dict[str, Any]:
    fields: dict[str, Any] = msgspec.msgpack.decode(v3_bytes(0, s))[2]
    return fields


def test_a_field_a_version_3_record_lacks_takes_its_default() -> None:
    # A record of a release before a field was added to a clock or the state.
    s = LeadState(seen=[7], clocks={"first_touch": Clock(cycle=1, status=1, goal=60)}, received_w=5)
    fields = _v3_fields(s)
    del fields["received_w"], fields["clocks"]["first_touch"]["goal"]
    back = state_from_bytes(msgspec.msgpack.encode([3, 1, fields])).state
    assert back == dataclasses.replace(s, received_w=0, clocks={"first_touch": Clock(cycle=1, status=1)})


def test_a_field_a_version_3_record_has_and_this_release_does_not_is_ignored() -> None:
    # A record of a later release that added fields.
    s = LeadState(seen=[7], clocks={"first_touch": Clock(cycle=1)})
    fields = _v3_fields(s)
    fields["newer"] = [1, {"x": None}]
    fields["clocks"]["first_touch"]["newer"] = "y"
    assert state_from_bytes(msgspec.msgpack.encode([3, 1, fields])).state == s


@pytest.mark.parametrize(
    "raw",
    [
        msgspec.msgpack.encode([4, 1, {}]),  # a later version
        msgspec.msgpack.encode([3, 1, {"seen": "x"}]),
        msgspec.msgpack.encode([3, "1", {}]),
        msgspec.msgpack.encode({"v": 3}),
        b"",
        b"\xc1",
        b"[1, 2]",
        b'{"v": 2, "partition": 1',
        b'"text"',
    ],
)
def test_bytes_of_no_version_raise_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        state_from_bytes(raw)


# -- what a decoded state holds ----------------------------------------------------------

TWO_POLICIES = parse_policies(
    """
policies:
  - name: first_touch
    start: lead.handed_off
    stop: [lead.contact_attempt]
    goal: 1h
  - name: disposition
    start: lead.handed_off
    stop: [lead.qualified]
    goal: 4h
""",
    source="p.yaml",
)
T0 = 1_795_338_000_000_000


def _event(etype: str, at: int, event_id: str, **fields: Any) -> LeadEvent:
    return LeadEvent.model_validate({"event_id": event_id, "lead_id": "A", "type": etype,
                                     "occurred_at": format_timestamp_us(at), **fields})


def test_a_decoded_state_holds_its_repeated_values_once() -> None:
    s = LeadState()
    apply(s, _event("lead.handed_off", T0, "h", team="emea", rep="rep-7"), TWO_POLICIES, T0, T0)
    apply(s, _event("lead.contact_attempt", T0 + 60_000_000, "a"), TWO_POLICIES, T0 + 60_000_000, T0)
    one, two = (state_from_bytes(state_to_bytes(3, s)).state for _ in range(2))
    assert one == s and repr(one) == repr(s)
    # Decoded, each value is an object of its own; compacted, equal ones are one.
    c1, c2 = one.clocks["disposition"], two.clocks["disposition"]
    assert c1.team is c2.team is one.owner_team is two.owner_team
    assert c1.started_at is c1.resumed_at is c1.opened_at is one.owner_at is one.log[-1][0]
    assert one.log[-1][3] is two.log[-1][3] and one.shown["disposition"] is two.shown["disposition"]
    done = one.clocks["first_touch"]
    assert done.last_outcome is two.clocks["first_touch"].last_outcome == "met"
    assert done.last_started is done.started_at and done.last_deadline is done.deadline
