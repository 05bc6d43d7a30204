"""SLA clocks: what a lead's state holds once. Equal values that many leads
repeat (roles, owners, gauge entries, delivery keys) are one object, a state
compacted (as one read back from bytes is) holds them once too, and none of
it changes a value."""

from __future__ import annotations

import copy
import pickle

from leadsla.models.clock import PENDING, RUNNING, LeadState, compact, shared
from tests.models.conftest import MINIMAL_YAML, Lead, M, ev, pol, ts

T0 = ts("2026-11-23T10:00:00Z")
TWO = pol(
    MINIMAL_YAML
    + """\
  - name: disposition
    start: lead.handed_off
    match: {segment: [enterprise]}
    stop: [lead.qualified]
    goal: 4h
"""
)


def handed_off(lead_id: str, at: int) -> Lead:
    lead = Lead(TWO, lead_id=lead_id)
    # Text made at run time: equal strings, distinct objects, as decoding makes them.
    team, rep = "".join(["emea", "-1"]), "".join(["rep", "-7"])
    lead.apply(ev("lead.handed_off", at, f"{lead_id}-h", lead_id, team=team, rep=rep, segment="enterprise"), at - M)
    return lead


def test_two_leads_share_their_roles_owner_and_gauge_entries() -> None:
    a, b = handed_off("A", T0).state, handed_off("B", T0 + 1).state
    assert a.buffer[0][3] is b.buffer[0][3]  # the roles (tested per event: built per event)
    assert a.owner_team is None and a.buffer[0][4] is b.buffer[0][4]
    assert a.shown["first_touch"] == ("emea-1", "rep-7", PENDING, False)
    assert a.shown["first_touch"] is b.shown["first_touch"] is a.shown["disposition"]
    for st, at in ((a, T0), (b, T0 + 1)):
        Lead(TWO, state=st).advance(at)
    assert a.owner_team is b.owner_team is a.clocks["first_touch"].team is b.clocks["disposition"].team
    assert a.shown["first_touch"] is b.shown["disposition"]
    assert a.shown["first_touch"][2] == RUNNING


def test_compact_shares_what_equal_copies_held() -> None:
    a, b = handed_off("A", T0).state, handed_off("B", T0).state
    Lead(TWO, state=a).advance(T0)
    Lead(TWO, state=b).advance(T0)
    b = pickle.loads(pickle.dumps(b))  # every string and tuple an object of its own
    assert b.clocks["first_touch"].team is not a.clocks["first_touch"].team
    compact(b)
    assert b.clocks["first_touch"].team is a.clocks["first_touch"].team
    assert b.log[0][3] is a.log[0][3] and b.shown["disposition"] is a.shown["disposition"]


def test_compact_changes_no_value() -> None:
    st = LeadState(
        seen=[1, 2],
        buffer=((T0, 1, "lead.connected", (("first_touch", "stop"),), "t", None),),
        log=[(T0 - M, 2, "lead.handed_off", (("first_touch", "start"),), "t", "r")],
        owner_team="t", owner_at=T0 - M, handoff_at=T0 - M,
        shown={"first_touch": ("t", "r", RUNNING, True)},
        too_late=((T0 - 9 * M, "first_touch", "stop"),),
        delivered={"leads|2026-11": (T0 - M, 1.5)},
    )
    before = copy.deepcopy(st)
    compact(st)
    assert st == before and repr(st) == repr(before)


def test_shared_gives_back_an_equal_value() -> None:
    roles = (("p", "start"),)
    assert shared(None) is None
    assert shared(tuple(list(roles))) is shared(roles) == roles


def test_the_repr_spells_the_buffer_and_too_late_events_as_lists() -> None:
    st = LeadState(too_late=((T0, "first_touch", "stop"),))
    assert "buffer=[], " in repr(st) and f"too_late=[({T0}, 'first_touch', 'stop')]" in repr(st)
