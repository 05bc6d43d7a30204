"""Lead state written by the first release (positional clocks, orphan stops
per clock) recovers: two records stored as that release wrote them."""

from __future__ import annotations

from pathlib import Path

import msgspec
import orjson

from leadsla.models.clock import IDLE, PENDING, RUNNING, apply, restore_shown
from leadsla.models.policy import STOP, load_policies
from leadsla.streams.codec import STATE_VERSIONS, state_from_bytes, state_to_bytes
from leadsla.streams.settings import EXAMPLE_POLICIES
from tests.models.conftest import ev, ts

RECORDS = (Path(__file__).parent / "data" / "lead-changelog-v1.json").read_bytes().splitlines()
POLICIES = load_policies(EXAMPLE_POLICIES)


def test_a_running_lead_recovers_with_its_clocks_buffer_and_owner() -> None:
    entry = state_from_bytes(RECORDS[0])
    assert entry.legacy and entry.partition == 3
    st = entry.state
    ft = st.clocks["first_touch"]
    assert (ft.status, ft.started_at, ft.team, ft.rep) == (RUNNING, ts("2026-11-23T09:30:00Z"), "emea", "r-17")
    assert [(b[0], b[2]) for b in st.buffer] == [(ts("2026-11-23T10:40:00Z"), "lead.contact_attempt")]
    assert (st.owner_team, st.owner_rep, st.owner_at) == ("emea", "r-17", ts("2026-11-23T09:30:00Z"))
    restore_shown(st, POLICIES)
    assert st.shown == {"first_touch": ("emea", "r-17", RUNNING, False), "disposition": ("emea", "r-17", RUNNING, False)}
    # it goes on as it would have: the buffered attempt stops first_touch in time
    tr = apply(st, ev("lead.qualified", "2026-11-23T11:00:00Z", "q", lead_id="L-v1"), POLICIES,
               ts("2026-11-23T12:00:00Z"), ts("2026-11-23T12:02:00Z"))
    assert sorted((d.policy, d.outcome, d.stopped_at) for d in tr.decisions) == [
        ("disposition", "met", ts("2026-11-23T11:00:00Z")),
        ("first_touch", "met", ts("2026-11-23T10:40:00Z")),
    ]


def test_a_decided_lead_recovers_its_orphan_stops_and_open_breach() -> None:
    entry = state_from_bytes(RECORDS[1])
    assert entry.legacy and entry.partition == 1
    st = entry.state
    assert st.clocks["disposition"].last_open and st.clocks["disposition"].status == IDLE
    # the orphan stop became an entry of the lead's log
    assert [(x[0], x[3]) for x in st.log] == [(ts("2026-11-26T10:00:00Z"), (("demo_request_first_touch", STOP),))]
    restore_shown(st, POLICIES)
    assert st.shown == {}
    # a late stop before disposition's deadline is still a correction
    tr = apply(st, ev("lead.qualified", "2026-11-24T10:00:00Z", "q", lead_id="L-v1b"), POLICIES,
               ts("2026-11-30T12:00:00Z"), ts("2026-11-30T12:00:00Z"))
    assert [(d.policy, d.outcome) for d in tr.decisions] == [("disposition", "corrected")]


def test_a_recovered_record_is_written_back_in_the_current_format() -> None:
    entry = state_from_bytes(RECORDS[0])
    restore_shown(entry.state, POLICIES)
    for version in STATE_VERSIONS:
        raw = state_to_bytes(entry.partition, entry.state, version)
        if version == 2:
            assert orjson.loads(raw)["v"] == 2
        else:
            assert msgspec.msgpack.decode(raw)[0] == version
        again = state_from_bytes(raw)
        assert not again.legacy and again.state == entry.state


def test_a_pending_start_in_a_recovered_buffer_shows_as_pending() -> None:
    record = orjson.loads(RECORDS[1])
    record["b"] = [[ts("2026-12-01T09:00:00Z"), 7, "lead.handed_off", [["first_touch", "start"]], "apac", None]]
    st = state_from_bytes(orjson.dumps(record)).state
    restore_shown(st, POLICIES)
    assert st.shown == {"first_touch": ("apac", None, PENDING, False)}
