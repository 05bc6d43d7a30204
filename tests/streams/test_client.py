"""``leadsla lead`` and ``leadsla queue`` (streams.client): business time
under a calendar in business hours, wall-clock time otherwise; a team no
worker knows is an error, against a stand-in query API."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from leadsla.streams.cli import main
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


# -- leadsla queue --team: a team no worker knows ---------------------------------------


class _Api:
    """A stand-in query API on a free port: canned answers by path, and the
    queries it was asked."""

    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        import http.server
        import threading
        import urllib.parse

        asked: list[tuple[str, dict[str, list[str]]]] = []
        self.asked = asked

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urllib.parse.urlsplit(self.path)
                asked.append((url.path, urllib.parse.parse_qs(url.query)))
                body = json.dumps(answers[url.path]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


EMPTY = {"total": 0, "limit": 100, "clocks": [], "complete": True, "partitions": [0, 1], "workers": []}


def _compliance(*rows: tuple[str, str, int, int]) -> dict[str, Any]:
    return {"period": None, "complete": True, "targets": [], "policies": [
        {"policy": p, "team": t, "period": "2026-11", "met": met, "breached": 0, "open": n}
        for p, t, met, n in rows]}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., _Api]]:
    monkeypatch.delenv("LEADSLA_API_TOKEN", raising=False)
    made: list[_Api] = []

    def make(queue: dict[str, Any], compliance: dict[str, Any]) -> _Api:
        made.append(_Api({"/api/queue": queue, "/api/compliance": compliance}))
        return made[-1]

    yield make
    for a in made:
        a.close()


def test_queue_for_a_team_no_worker_knows_is_an_error_naming_the_teams(
        api: Callable[..., _Api], capsys: pytest.CaptureFixture[str]) -> None:
    a = api(EMPTY, _compliance(("first_touch", "emea", 3, 2), ("first_touch", "na_east", 0, 5),
                               ("disposition", "apac", 4, 0)))
    assert main(["queue", "--team", "emae", "--api", a.url]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == ("leadsla: no team 'emae' on any worker: no open clocks and none decided this period; "
                   "teams with open clocks: emea, na_east (did you mean 'emea'?)\n")
    assert [path for path, _ in a.asked] == ["/api/queue", "/api/compliance"]


def test_queue_for_a_known_team_without_open_clocks_is_no_error(
        api: Callable[..., _Api], capsys: pytest.CaptureFixture[str]) -> None:
    a = api(EMPTY, _compliance(("first_touch", "apac", 4, 0)))
    assert main(["queue", "--team", "apac", "--api", a.url]) == 0
    assert capsys.readouterr() == ("no open clocks\n", "")


def test_queue_without_a_team_or_with_some_partitions_unanswered_asks_nothing_more(
        api: Callable[..., _Api], capsys: pytest.CaptureFixture[str]) -> None:
    a = api(EMPTY, _compliance())
    assert main(["queue", "--api", a.url]) == 0
    b = api({**EMPTY, "complete": False}, _compliance())
    assert main(["queue", "--team", "ghost", "--api", b.url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "no open clocks" and out[1].startswith("no open clocks; some partitions had no owner")
    assert [path for path, _ in a.asked + b.asked] == ["/api/queue", "/api/queue"]


def test_queue_json_for_an_unknown_team_prints_the_answer_and_exits_1(
        api: Callable[..., _Api], capsys: pytest.CaptureFixture[str]) -> None:
    a = api(EMPTY, _compliance())
    assert main(["queue", "--team", "ghost", "--json", "--api", a.url]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["clocks"] == []
    assert err == ("leadsla: no team 'ghost' on any worker: no open clocks and none decided this period; "
                   "teams with open clocks: none\n")


def test_a_real_engines_views_print_business_hours() -> None:
    """The views a worker answers with, for a clock under a Monday-Friday
    09:00-17:00 calendar: handed off Monday 09:00, seen Wednesday 15:00,
    that is 22 business hours elapsed and 50 of the 72 (goal 3d) left."""
    from tests.models.conftest import ts
    from tests.streams.conftest import Rig

    rig = Rig("calendars:\n  office:\n    hours: {mon-fri: \"09:00-17:00\"}\n"
              "policies:\n  - {name: callback, start: lead.handed_off, stop: lead.connected, goal: 3d, "
              "calendar: office}\n", wall=ts("2026-11-23T09:00:00Z"))
    rig.live()
    rig.send("L1", "lead.handed_off", ts("2026-11-23T09:00:00Z"), "h1", team="emea")
    rig.wall.now = ts("2026-11-25T15:00:00Z")
    rig.engine.tick()
    view = rig.engine.views.lead_clocks("L1")
    assert view is not None
    row = lead_text({**view, "worker": "w0"}).splitlines()[2]  # the API adds the worker
    assert row.split()[:2] == ["callback", "running"] and "22h bh" in row and "50h bh" in row
    queue = rig.engine.views.queue()
    assert queue_text({**queue, "limit": 100, "complete": True}).splitlines()[1].split()[-2:] == ["50h", "bh"]
