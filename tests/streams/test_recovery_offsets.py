"""streams.recovery against changelogs a broker lost: Faust's own recovery
object of a real app (no broker), its changelog offsets and highwaters set
as after a recovery that read records the broker no longer has."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from leadsla.models.policy import parse_policies
from leadsla.streams.app import build_monitor
from leadsla.streams.recovery import forget_read_offsets, restart_shortened
from leadsla.streams.settings import Settings

POLICIES = """
policies:
  - {name: first_touch, start: lead.handed_off, stop: lead.contact_attempt, goal: 1h}
"""


@pytest.fixture
def app(tmp_path: Path) -> Any:
    settings = Settings(broker="kafka://127.0.0.1:1", data_dir=tmp_path, app_id="lost")
    m = build_monitor(settings, parse_policies(POLICIES), CollectorRegistry())
    m.app.finalize()
    return m.app


class EarliestZero:
    """What Faust's recovery asks of the consumer here: every partition
    starts at offset 0 (a new topic)."""

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return dict.fromkeys(tps, 0)


LEADS, WINDOWS = "lost-leads-changelog", "lost-team-windows-changelog"


class Reader:
    """The app's changelog reader, as far as a recovery asks it here: where
    a fetch says each partition ends (``ends``: TP -> high watermark), and
    nothing to read."""

    def __init__(self, ends: dict[TP, int]) -> None:
        self.ends = ends
        self.asked: list[TP] = []

    async def fetch_highwaters(self, tps: Any, offsets: Any) -> dict[TP, int]:
        self.asked += sorted(tps)
        return {tp: self.ends[tp] for tp in tps if tp in self.ends}

    async def catch_up(self, recovery: Any, tps: Any, offsets: Any) -> None:
        return None


def consistent(recovery: Any, tps: list[TP]) -> bool:
    """Faust's consistency check (faust/tables/recovery.py), which stops the
    worker with ConsistencyError when it fails."""
    offsets, highwaters = recovery.active_offsets, recovery.active_highwaters
    return not any(offsets[tp] and highwaters[tp] and offsets[tp] > highwaters[tp] for tp in tps)


async def test_a_changelog_ending_before_what_was_read_is_read_from_its_start(
    app: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging.getLogger("leadsla"), "propagate", True)
    caplog.set_level(logging.WARNING, logger="leadsla")
    recovery = app.tables.recovery
    lost, kept, fresh = TP(LEADS, 0), TP(LEADS, 1), TP(WINDOWS, 2)
    tps = [lost, kept, fresh]
    # Read to offset 10 and 4 of the old broker's changelogs; the new one
    # holds nothing in the first, five records in the second.
    recovery.active_offsets.update({lost: 10, kept: 4, fresh: None})
    recovery.active_highwaters.update({lost: -1, kept: 4, fresh: -1})
    assert not consistent(recovery, tps)  # what Faust alone would do: stop
    # A fetch confirms it: the partition is empty (its high watermark 0).
    app.leadsla_changelog_reader = reader = Reader({lost: 0})
    await recovery._build_offsets(EarliestZero(), set(tps), recovery.active_offsets, "active")
    assert reader.asked == [lost]  # only the partition that seemed shortened
    assert dict(recovery.active_offsets) == {lost: -1, kept: 4, fresh: -1}
    assert consistent(recovery, tps)
    # (a set: in the whole suite another test's handler can make caplog see a record twice)
    said = {r.getMessage() for r in caplog.records if r.getMessage().startswith("changelogs:")}
    assert said == {f"changelogs: {LEADS}[0] end before the offsets this worker had read them to (10 > -1): the broker "
                    "lost them; the tables keep their state and read them from the start"}


async def test_a_changelog_whose_list_offsets_answer_lags_is_not_read_again(
    app: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded broker's ListOffsets answer lags behind multi-record
    batches: a fetch says where the partition really ends, and a partition
    read to that end is neither read again nor said to be lost."""
    monkeypatch.setattr(logging.getLogger("leadsla"), "propagate", True)
    caplog.set_level(logging.WARNING, logger="leadsla")
    recovery = app.tables.recovery
    lagging = TP(LEADS, 0)
    recovery.active_offsets.update({lagging: 99403})
    recovery.active_highwaters.update({lagging: 99261})  # ListOffsets: behind what was read
    app.leadsla_changelog_reader = Reader({lagging: 99404})  # a fetch: 99,404 records
    await recovery._build_offsets(EarliestZero(), {lagging}, recovery.active_offsets, "active")
    assert recovery.active_offsets[lagging] == 99403
    assert recovery.active_highwaters[lagging] == 99403
    assert consistent(recovery, [lagging])
    assert not [r for r in caplog.records if r.getMessage().startswith("changelogs:")]


def test_nothing_is_said_or_changed_when_every_changelog_is_whole(app: Any, caplog: pytest.LogCaptureFixture) -> None:
    recovery = app.tables.recovery
    tps = [TP(LEADS, 0), TP(LEADS, 1)]
    offsets: dict[TP, int | None] = {tps[0]: 7, tps[1]: None}
    recovery.active_highwaters.update({tps[0]: 7, tps[1]: 3})
    caplog.set_level(logging.DEBUG)
    assert restart_shortened(recovery, tps, offsets) == []
    assert offsets == {tps[0]: 7, tps[1]: None}
    assert not [r for r in caplog.records if r.getMessage().startswith("changelogs:")]


def test_forgetting_the_read_offsets_of_lost_changelogs(app: Any) -> None:
    recovery = app.tables.recovery
    recovery.active_offsets.update({TP(LEADS, 0): 10, TP(LEADS, 3): 0, TP(WINDOWS, 0): 5})
    recovery.standby_offsets.update({TP(LEADS, 1): 2})
    assert forget_read_offsets(app, [LEADS, "not-a-changelog"]) == 3
    assert dict(recovery.active_offsets) == {TP(LEADS, 0): -1, TP(LEADS, 3): -1, TP(WINDOWS, 0): 5}
    assert dict(recovery.standby_offsets) == {TP(LEADS, 1): -1}
