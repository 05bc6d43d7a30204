"""``leadsla lead`` and ``leadsla queue`` tables (streams.client): business
time under a calendar in business hours, wall-clock time otherwise."""

from __future__ import annotations

from typing import Any

from leadsla.streams.client import lead_text, queue_text


def _clock(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "policy": "first_touch", "state": "running", "overdue": False, "at_risk": False,
        "started_at": "2026-11-23T09:00:00Z", "deadline": "2026-11-27T09:00:00Z", "elapsed_seconds": 38 * 3600.0,
        "remaining_seconds": 2 * 3600 + 5 * 60.0, "decision": None, "paused_spans": [], "calendar": "emea"}
    return {**base, **over}


def _lead(*clocks: dict[str, Any]) -> dict[str, Any]:
    return {"lead_id": "L1", "owner": {"team": "emea", "rep": "ana"}, "partition": 0, "worker": "w0",
            "as_of": "2026-11-25T12:00:00Z", "clocks": list(clocks), "pending_events": [], "too_late": []}


def test_lead_shows_business_time_in_business_hours_and_24x7_time_as_before() -> None:
    text = lead_text(_lead(_clock(), _clock(policy="disposition", calendar=None)))
    first, second = text.splitlines()[2:4]
    assert first.split()[:2] == ["first_touch", "running"]
    assert "38h bh" in first and "2h05m bh" in first and "1d14h" not in first
    assert "1d14h" in second and "2h5m" in second and " bh" not in second


def test_a_row_without_calendar_counts_as_24x7() -> None:
    clock = _clock()
    del clock["calendar"]
    row = lead_text(_lead(clock)).splitlines()[2]
    assert "1d14h" in row and " bh" not in row


def test_queue_shows_remaining_business_time_in_business_hours() -> None:
    row = {"lead_id": "L1", "policy": "first_touch", "state": "running", "overdue": False, "team": "emea",
           "rep": "ana", "deadline": "2026-11-27T09:00:00Z", "remaining_seconds": 38 * 3600.0, "at_risk": False,
           "calendar": "emea"}
    wall = {**row, "lead_id": "L2", "calendar": None}
    lines = queue_text({"clocks": [row, wall], "total": 2, "limit": 100, "complete": True}).splitlines()
    assert lines[1].split()[0] == "L1" and lines[1].split()[-2:] == ["38h", "bh"]
    assert lines[2].split()[0] == "L2" and lines[2].split()[-1] == "1d14h"
