"""A worker serves leadsla's own pages only: none of Faust's built-in views
(table contents, the group's assignment, statistics, graphs), which would
tell lead ids and state to anyone without the API token."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

from .conftest import FIRST_TOUCH, wait_for
from .kafka import create_topics, event, iso, publish

TOKEN = "routes-t0ken"


def status(port: int, path: str, token: str | None = None) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_faust_built_in_views_are_not_served(setup) -> None:
    s = setup(FIRST_TOUCH)
    create_topics(s.broker, list(s.topics.values()))
    now = datetime.now(UTC).replace(microsecond=0)
    publish(s.broker, s.topics["input"], [
        event(event_id="h", lead_id="lead-1", type="lead.handed_off", occurred_at=iso(now - timedelta(minutes=5))),
    ])
    w = s.worker(LEADSLA_API_TOKEN=TOKEN).start()
    wait_for(lambda: status(w.web_port, "/api/leads/lead-1", TOKEN) == 200, 60, "the lead known to the worker")
    for path in ("/table/leads/lead-1/", "/table/leads/", "/table/team-windows/", "/router/",
                 "/router/leads-key/lead-1/", "/graph/", "/assignment/", "/performance/", "/stats/"):
        assert status(w.web_port, path) == 404, path
        assert status(w.web_port, path, TOKEN) == 404, path
    assert status(w.web_port, "/api/leads/lead-1") == 401  # the lead itself only with the token
    assert status(w.web_port, "/metrics") == 200
    assert status(w.web_port, "/ready") == 200
    log = w.logs[-1].read_text()
    assert "Traceback" not in log and "lead-1" not in log
