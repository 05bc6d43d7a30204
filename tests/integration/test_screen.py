"""The team screen in a real browser: ``leadsla run --workers 2`` with a
token, last month's history (so a period is judged: a leaderboard and a
level under review) and this month's leads and MQLs, then the page at ``/``
of one worker rendered by headless Chromium (Debian's, driven by
Playwright). The page's numbers must be the group's, as the query API of
the other worker gives them; the next deadline counts down; without the
token the page shows how to give it and no data. A screenshot is kept as a
test artefact (``LEADSLA_TEST_ARTIFACTS``, default ``tests/artifacts``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .conftest import wait_for
from .kafka import create_topics, event, iso, publish

playwright = pytest.importorskip("playwright.sync_api", reason="the test extra installs playwright")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (scripts/test installs Debian's)")

TOKEN = "screen-t0ken"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("LEADSLA_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))

POLICIES = """
policies:
  - name: first_touch
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected]
    goal: 1h
    at_risk: 0.5
    objective: 0.8
    review_after: 1
    min_decisions: 2
    points: 2
targets:
  - name: mql_volume
    deliver: lead.mql
    goal: 40
    value: {by: persona, weights: {executive: 100}, default: 10}
    value_goal: 2000
"""


def get(port: int, path: str, token: str | None = TOKEN) -> tuple[int, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _traffic(now: datetime) -> tuple[list[tuple[bytes, bytes]], int, int]:
    """Last month's history and this month's leads; the clocks open now, and
    the clocks decided today (UTC: a met one by its stop, a breach by its
    deadline)."""
    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = (this_month - timedelta(days=1)).replace(day=1)
    records = []

    def lead(lead_id: str, at: datetime, team: str, stop_after: timedelta | None) -> None:
        records.append(event(event_id=f"{lead_id}-h", lead_id=lead_id, type="lead.handed_off", occurred_at=iso(at),
                             team=team, rep=f"{team}-rep"))
        if stop_after is not None:
            records.append(event(event_id=f"{lead_id}-c", lead_id=lead_id, type="lead.contact_attempt",
                                 occurred_at=iso(at + stop_after)))

    # Last month: apac met everything (points), emea nothing (one strike: under review).
    for i in range(3):
        lead(f"hist-apac-{i}", last + timedelta(days=2, hours=i), "apac", timedelta(minutes=10))
        lead(f"hist-emea-{i}", last + timedelta(days=3, hours=i), "emea", None)
    # Now: clocks met and breached recently, some open (one at risk, one just started).
    lead("met-now", now - timedelta(minutes=30), "emea", timedelta(minutes=5))
    lead("breached-now", now - timedelta(hours=3), "apac", None)
    lead("risky", now - timedelta(minutes=40), "apac", None)
    lead("open-1", now - timedelta(minutes=10), "emea", None)
    lead("open-2", now - timedelta(minutes=15), "apac", None)
    # MQLs this month: on its first day when that is not today, and today.
    first_day = this_month + timedelta(hours=1)
    for i, (at, persona) in enumerate([(min(first_day, now - timedelta(minutes=5)), "executive"),
                                       (now - timedelta(minutes=3), "manager"),
                                       (now - timedelta(minutes=2), "executive")]):
        records.append(event(event_id=f"mql-{i}", lead_id=f"mql-{i}", type="lead.mql", occurred_at=iso(at),
                             persona=persona))
    today = [now - timedelta(minutes=25), now - timedelta(hours=2)]
    return records, 3, sum(t.date() == now.date() for t in today)


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def until(page: Any, script: str, timeout: float, what: str) -> None:
    """Wait until ``script`` (a JS function expression) is truthy in the page.
    Playwright's wait_for_function evaluates a string, which the page's
    content security policy rightly refuses; evaluate does not."""
    end = time.monotonic() + timeout
    while not page.evaluate(script):
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        page.wait_for_timeout(100)


def test_the_team_screen_shows_the_groups_numbers(setup) -> None:
    s = setup(POLICIES)
    create_topics(s.broker, list(s.topics.values()))
    now = datetime.now(UTC)
    records, open_now, decided_today = _traffic(now)
    publish(s.broker, s.topics["input"], records)
    pair = s.worker("--workers", "2", LEADSLA_API_TOKEN=TOKEN).start()
    ports = (pair.web_port, pair.web_port + 1)

    def settled() -> Any:
        # Everything decided that will be (the breach after its lateness), and
        # last month judged (a leaderboard), on the group as one worker sees it.
        status, screen = get(ports[0], "/api/screen")
        if status != 200 or not screen["complete"] or not any(lv["last_met"] is not None for lv in screen["levels"]):
            return None
        status, queue = get(ports[0], "/api/queue")
        if status != 200 or queue["total"] != open_now:
            return None
        ft = screen["policies"][0]
        if (ft["open"], ft["today"]["decided"]) != (open_now, decided_today):
            return None  # (today's counts may be up to 15 s old)
        states = [get(ports[0], f"/api/leads/{lead}")[1]["clocks"][0]["state"] for lead in ("met-now", "breached-now")]
        return screen if states == ["decided", "decided"] else None

    wait_for(settled, 90, "the group's numbers to settle (decisions and last month's verdicts)")
    status, doc = get(ports[1], "/openapi.json", token=None)
    assert status == 200 and {"/api/screen", "/api/queue"} <= set(doc["paths"])
    assert get(ports[1], "/api/screen", token=None)[0] == 401

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            # Without the token: a clear message, and no data in the page.
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.goto(f"http://127.0.0.1:{ports[1]}/")
            until(page, "() => document.body.dataset.state === 'locked'", 20, "the page to ask for the token")
            notice = page.locator("#notice").inner_text()
            assert "needs the API token" in notice and "#token=" in notice
            content = page.content()
            assert not any(lead in content for lead in ("risky", "open-1", "open-2", "apac", "emea"))
            page.close()

            # With the token in the fragment: served by the second worker, the group's numbers.
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"http://127.0.0.1:{ports[1]}/#token={TOKEN}")
            until(page, "() => document.body.dataset.state === 'ok'", 20, "the page to show the group's numbers")
            assert page.evaluate("location.hash") == ""  # the token left the address bar
            assert page.evaluate("sessionStorage.getItem('leadsla.screen.token')") == TOKEN

            _, compliance = get(ports[0], "/api/compliance")
            _, queue = get(ports[0], "/api/queue?limit=12")
            _, screen = get(ports[0], "/api/screen")

            def value(selector: str) -> str:
                return str(page.locator(selector).first.get_attribute("data-value"))

            def text(selector: str) -> str:
                return page.locator(selector).first.inner_text().strip()

            rows = compliance["policies"]
            assert value("#kpi-open") == str(sum(r["open"] for r in rows)) == str(open_now)
            assert value("#kpi-at-risk") == str(sum(p["at_risk"] for p in screen["policies"])) == "1"
            assert value("#kpi-breaches-today") == str(sum(p["today"]["breached"] for p in screen["policies"]))
            assert value("#queue-total") == str(queue["total"])
            met = sum(r["met"] for r in rows if r["policy"] == "first_touch")
            breached = sum(r["breached"] for r in rows if r["policy"] == "first_touch")
            assert met + breached > 0
            row = "#compliance-rows tr[data-policy='first_touch']"
            assert text(f"{row} .period-met") == str(met)
            assert text(f"{row} .period-breached") == str(breached)
            assert text(f"{row} .period-ratio").startswith(f"{100 * met / (met + breached):.1f}%")
            assert text(f"{row} .open") == str(open_now)
            today = screen["policies"][0]["today"]
            assert (text(f"{row} .today-met"), text(f"{row} .today-breached")) == \
                (str(today["met"]), str(today["breached"]))

            # The next deadlines: at risk first, with a countdown that ticks.
            first = page.locator("#deadlines li").first
            assert first.get_attribute("data-lead") == queue["clocks"][0]["lead_id"] == "risky"
            assert "at-risk" in str(first.get_attribute("class"))
            before = first.locator(".countdown").inner_text()
            assert re.fullmatch(r"\d{2}:\d{2}:\d{2}", before), before
            deadline = datetime.fromisoformat(queue["clocks"][0]["deadline"].replace("Z", "+00:00"))
            h, m, sec = (int(x) for x in before.split(":"))
            left = (deadline - datetime.now(UTC)).total_seconds()
            assert abs(h * 3600 + m * 60 + sec - left) < 30
            until(page, f"() => document.querySelector('#deadlines li .countdown').textContent !== '{before}'", 5,
                  "the countdown to tick")
            assert page.locator("#deadlines li").count() == open_now

            # The waterfall: delivered and value as the API counts them, a bar per day so far, the goal line.
            (target,) = compliance["targets"]
            (wf,) = screen["targets"]
            box = "#targets .target[data-target='mql_volume']"
            assert value(f"{box} [data-key='delivered']") == str(int(target["delivered"])) == "3"
            assert float(value(f"{box} [data-key='value']")) == target["value_delivered"] == 210
            assert float(value(f"{box} [data-key='forecast']")) == pytest.approx(wf["forecast"])
            assert page.locator(f"{box} svg rect[data-cumulative]").count() == wf["day"]
            last_bar = page.locator(f"{box} svg rect[data-cumulative]").last
            assert last_bar.get_attribute("data-cumulative") == "3"
            assert page.locator(f"{box} svg .goal-line").count() == 1

            # Accountability: the leaderboard and the strikes, the level under review flagged.
            board = [(li.get_attribute("data-team"), li.locator(".points").inner_text())
                     for li in page.locator("#leaderboard li").all()]
            assert board == [(r["team"], str(int(r["points"]))) for r in screen["leaderboard"]]
            assert ("apac", "2") in board
            emea = page.locator("#strikes-rows tr[data-name='first_touch'][data-team='emea']")
            assert emea.get_attribute("data-under-review") == "true"
            assert "UNDER REVIEW" in emea.inner_text() and "1 / 1" in emea.inner_text()
            apac = page.locator("#strikes-rows tr[data-name='first_touch'][data-team='apac']")
            assert apac.get_attribute("data-under-review") == "false" and "UNDER REVIEW" not in apac.inner_text()
            assert errors == []

            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / "team-screen.png"
            page.screenshot(path=str(shot), full_page=False)
            assert _png_size(shot) == (1920, 1080)
            assert shot.stat().st_size > 40_000  # a rendered board, not a blank page
        finally:
            browser.close()
