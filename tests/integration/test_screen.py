"""The team screen in a real browser: ``leadsla run --workers 2`` with a
token, last month's history (so periods are judged: a leaderboard, a level
under review and one with too few decisions to be judged) and this month's
leads and MQLs, then the page at ``/`` of one worker rendered by headless
Chromium (Debian's, driven by Playwright) at 1920×1080. The page's numbers
must be the group's, as the query API of the other worker gives them, and
say what they mean: a period not judged is not "met", an overdue clock says
OVERDUE and counts up, leads are whole, policies read as words, a
business-hours clock shows business time, and the page fits the screen with
whole rows. Without the token the page shows how to give it and no data. A
screenshot is kept as a test artefact (``LEADSLA_TEST_ARTIFACTS``, default
``tests/artifacts``).

The workers allow stops 15 minutes late (``LEADSLA_ALLOWED_LATENESS``): their
watermark trails the wall clock by that much, so a clock whose deadline
passed minutes ago is still open: overdue, not yet breached."""

from __future__ import annotations

import json
import math
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

# The workers' allowed lateness: their watermark trails the wall clock by it.
# (Last month is judged once it has passed the month's end: a run in the
# first LATENESS of a month waits in vain.)
LATENESS = timedelta(minutes=15)
BULK = 12  # more open clocks than the deadlines panel holds
POLICIES = """
calendars:
  office:
    timezone: UTC
    hours: {mon-sun: OFFICE_HOURS}
policies:
  - name: first_touch
    description: First touch within the hour
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected]
    goal: 1h
    at_risk: 0.25
    objective: 0.8
    review_after: 1
    min_decisions: 2
    points: 2
  - name: demo_request_first_touch
    calendar: office
    start: lead.created
    stop: lead.connected
    goal: 9h
    at_risk: 0.5
    min_decisions: 2
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


def _office_hours(now: datetime) -> str:
    """The office calendar's hours: every day from 3 hours before ``now`` to 3
    hours after (UTC), split at midnight. The office is open whenever the
    test runs, and a clock that started yesterday has business time unlike
    its wall-clock time."""
    start = (now - timedelta(hours=3)).replace(second=0, microsecond=0)
    end = start + timedelta(hours=6)
    if start.date() == end.date():
        return f'"{start:%H:%M}-{end:%H:%M}"'
    ranges = [f"{start:%H:%M}-24:00"] + ([f"00:00-{end:%H:%M}"] if end.hour or end.minute else [])
    return "[" + ", ".join(f'"{r}"' for r in ranges) + "]"


def _traffic(now: datetime) -> tuple[list[tuple[bytes, bytes]], int, int]:
    """Last month's history and this month's leads; the first-touch clocks
    open now, and the clocks decided today (UTC: a met one by its stop, a
    breach by its deadline). Everything meant to be decided happened more
    than ``LATENESS`` ago."""
    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = (this_month - timedelta(days=1)).replace(day=1)
    records = []

    def lead(lead_id: str, at: datetime, team: str, stop_after: timedelta | None) -> None:
        records.append(event(event_id=f"{lead_id}-h", lead_id=lead_id, type="lead.handed_off", occurred_at=iso(at),
                             team=team, rep=f"{team}-rep"))
        if stop_after is not None:
            records.append(event(event_id=f"{lead_id}-c", lead_id=lead_id, type="lead.contact_attempt",
                                 occurred_at=iso(at + stop_after)))

    def demo(lead_id: str, at: datetime, team: str) -> None:
        records.append(event(event_id=f"{lead_id}-d", lead_id=lead_id, type="lead.created", occurred_at=iso(at),
                             team=team))

    # Last month: apac met everything (points), emea nothing (one strike:
    # under review), latam met its only clock (1 decision of 2: not judged).
    for i in range(3):
        lead(f"hist-apac-{i}", last + timedelta(days=2, hours=i), "apac", timedelta(minutes=10))
        lead(f"hist-emea-{i}", last + timedelta(days=3, hours=i), "emea", None)
    lead("hist-latam-0", last + timedelta(days=4), "latam", timedelta(minutes=5))
    # Now: clocks met and breached recently, some open: one overdue (its
    # deadline 10 minutes ago), one at risk, the others just handed off.
    lead("met-now", now - timedelta(minutes=50), "emea", timedelta(minutes=5))
    lead("breached-now", now - timedelta(hours=3), "apac", None)
    lead("late-call", now - timedelta(minutes=70), "emea", None)
    lead("risky", now - timedelta(minutes=40), "apac", None)
    lead("open-1", now - timedelta(minutes=10), "emea", None)
    lead("open-2", now - timedelta(minutes=15), "apac", None)
    for i in range(BULK):
        lead(f"bulk-{i:02d}", now - timedelta(minutes=1 + i), "emea", None)
    # Business hours (the office, open 3 hours either side of now), goal 9h:
    # 2h30m yesterday and 3h today used, at risk, 3h30m left (21h30m away on
    # the wall clock); 10 minutes two days ago, 6h yesterday and 3h today
    # used: overdue by 10 business minutes.
    demo("demo-risky", now - timedelta(hours=23, minutes=30), "emea")
    demo("demo-late", now - timedelta(hours=45, minutes=10), "apac")
    # MQLs this month: on its first day when that is not today, and today.
    first_day = this_month + timedelta(hours=1)
    for i, (at, persona) in enumerate([(min(first_day, now - LATENESS - timedelta(minutes=15)), "executive"),
                                       (now - LATENESS - timedelta(minutes=5), "manager"),
                                       (now - LATENESS - timedelta(minutes=4), "executive")]):
        records.append(event(event_id=f"mql-{i}", lead_id=f"mql-{i}", type="lead.mql", occurred_at=iso(at),
                             persona=persona))
    today = [now - timedelta(minutes=45), now - timedelta(hours=2)]
    return records, 4 + BULK, sum(t.date() == now.date() for t in today)


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
    now = datetime.now(UTC)
    s = setup(POLICIES.replace("OFFICE_HOURS", _office_hours(now)))
    create_topics(s.broker, list(s.topics.values()))
    records, open_now, decided_today = _traffic(now)
    publish(s.broker, s.topics["input"], records)
    pair = s.worker("--workers", "2", LEADSLA_API_TOKEN=TOKEN,
                    LEADSLA_ALLOWED_LATENESS=str(int(LATENESS.total_seconds()))).start()
    ports = (pair.web_port, pair.web_port + 1)

    def settled() -> Any:
        # Everything decided that will be (the breach after its lateness), and
        # last month judged (a leaderboard), on the group as one worker sees it.
        status, screen = get(ports[0], "/api/screen")
        if status != 200 or not screen["complete"] or not any(lv["last_met"] is not None for lv in screen["levels"]):
            return None
        status, queue = get(ports[0], "/api/queue")
        if status != 200 or queue["total"] != open_now + 2:  # and the two business-hours clocks
            return None
        rows = {row["lead_id"]: row for row in queue["clocks"]}
        if not (rows["demo-risky"]["at_risk"] and rows["risky"]["at_risk"] and rows["late-call"]["overdue"]):
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
            assert not any(lead in content for lead in ("risky", "open-1", "open-2", "apac", "emea", "latam"))
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
            _, queue = get(ports[0], "/api/queue?limit=40")
            _, screen = get(ports[0], "/api/screen")

            def value(selector: str) -> str:
                return str(page.locator(selector).first.get_attribute("data-value"))

            def text(selector: str) -> str:
                return page.locator(selector).first.inner_text().strip()

            rows = compliance["policies"]
            assert value("#kpi-open") == str(sum(r["open"] for r in rows)) == str(open_now + 2)
            assert value("#kpi-at-risk") == str(sum(p["at_risk"] for p in screen["policies"]))
            assert int(value("#kpi-at-risk")) >= 3  # risky, late-call, demo-risky (and demo-late)
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

            # The next deadlines: overdue first, counting up from the deadline,
            # then at risk; the 24x7 ones tick, the business-hours ones show
            # the server's business time; no timer is negative.
            clocks = {row["lead_id"]: row for row in queue["clocks"]}

            def deadline_row(lead: str) -> Any:
                return page.locator(f"#deadlines li[data-lead='{lead}']")

            leads = [li.get_attribute("data-lead") for li in page.locator("#deadlines li[data-lead]").all()]
            assert set(leads[:2]) == {"late-call", "demo-late"} and leads[2:4] == ["risky", "demo-risky"]
            late = deadline_row("late-call")
            assert late.locator(".tag.state").inner_text() == "OVERDUE"
            since = late.locator(".countdown").inner_text()
            assert re.fullmatch(r"over 00:1\d:\d\d", since), since  # its deadline passed 10 minutes ago
            h, m, sec = (int(x) for x in since.removeprefix("over ").split(":"))
            deadline = datetime.fromisoformat(clocks["late-call"]["deadline"].replace("Z", "+00:00"))
            assert abs(h * 3600 + m * 60 + sec - (datetime.now(UTC) - deadline).total_seconds()) < 30
            risky = deadline_row("risky")
            assert risky.locator(".tag.state").inner_text() == "AT RISK"
            before = risky.locator(".countdown").inner_text()
            assert re.fullmatch(r"00:1\d:\d\d", before), before  # 20 minutes left at most
            until(page, "() => document.querySelector(\"#deadlines li[data-lead='risky'] .countdown\")"
                        f".textContent !== '{before}'", 5, "the countdown to tick")
            demo = deadline_row("demo-risky")
            bh = demo.locator(".countdown").inner_text()
            assert re.fullmatch(r"3h[23]\dm bh", bh), bh  # 3h30m of business time, 21h30m of wall-clock time
            assert abs(int(bh[:1]) * 60 + int(bh[2:4]) - clocks["demo-risky"]["remaining_seconds"] / 60) <= 2
            assert deadline_row("demo-late").locator(".countdown").inner_text() in {
                f"over {n}m bh" for n in range(9, 14)}
            assert deadline_row("demo-late").locator(".tag.state").inner_text() == "OVERDUE"
            timers = page.locator("#deadlines .countdown").all_inner_texts()
            assert not [t for t in timers if "-" in t]

            # The page fits 1920x1080: the deadlines list shows the rows that
            # fit whole, the last one fully visible, and says how many more.
            assert page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]") \
                == [1920, 1080]
            shown = len(leads)
            assert 5 <= shown < queue["total"]
            assert page.locator("#deadlines li.more").inner_text() == f"+{queue['total'] - shown} more"
            box = page.locator("#deadlines-box").bounding_box()
            for e in (page.locator("#deadlines li[data-lead]").last, page.locator("#deadlines li.more")):
                b = e.bounding_box()
                assert b is not None and box is not None
                assert box["y"] <= b["y"] and b["y"] + b["height"] <= box["y"] + box["height"] + 0.5 <= 1080.5

            # Policies read as their description, or their name's words.
            assert text(f"{row} td.name") == "First touch within the hour"
            assert text("#compliance-rows tr[data-policy='demo_request_first_touch'] td.name") == \
                "demo request first touch"
            assert demo.locator(".policy").inner_text() == "demo request first touch"

            # The waterfall: delivered and value as the API counts them, a bar per day so far, the goal line.
            (target,) = compliance["targets"]
            (wf,) = screen["targets"]
            box = "#targets .target[data-target='mql_volume']"
            assert value(f"{box} [data-key='delivered']") == str(int(target["delivered"])) == "3"
            assert float(value(f"{box} [data-key='value']")) == target["value_delivered"] == 210
            assert float(value(f"{box} [data-key='forecast']")) == pytest.approx(wf["forecast"])
            # Leads are whole: the forecast rounded down, the goal line up.
            assert text(f"{box} [data-key='forecast']") == f"{math.floor(wf['forecast'] + 1e-9)} / 40"
            assert text(f"{box} [data-key='goal-line']") == str(math.ceil(wf["goal_line"] - 1e-9))
            assert text(f"{box} [data-key='delivered']") == "3 / 40"
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
            assert apac.locator(".last").inner_text() == "met"
            # latam's month had 1 decision of the 2 needed: not judged, not met, and not green.
            latam = page.locator("#strikes-rows tr[data-name='first_touch'][data-team='latam']")
            assert latam.locator(".last").inner_text() == "not judged (1 of 2 decisions)"
            assert latam.locator("td.name").inner_text() == "First touch within the hour · latam"
            assert latam.locator(".last").evaluate("e => getComputedStyle(e).color") == "rgb(169, 183, 198)"  # --dim
            assert errors == []

            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / "team-screen.png"
            page.screenshot(path=str(shot), full_page=False)
            assert _png_size(shot) == (1920, 1080)
            assert shot.stat().st_size > 40_000  # a rendered board, not a blank page
        finally:
            browser.close()
