"""The team screen as a TV shows it: the page at ``/`` in headless Chromium
at 1920×1080, against one worker's query API and ``/api/screen`` served in
process from a real Engine and a real period Ledger (no Kafka), the
worker's wall clock fixed at a Tuesday afternoon. What the page says must be
what the data means: a period too small to judge is not "met", an overdue
clock says so, leads are whole, policies read as words, business-hours
clocks show business time, and everything fits the screen. A screenshot is
kept as a test artefact (``LEADSLA_TEST_ARTIFACTS``, default
``tests/artifacts``)."""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestServer

from leadsla.streams.api import Api, Member, aiohttp_app
from leadsla.streams.console import clock_duration
from leadsla.streams.screen import Screen, aiohttp_routes, ledger_reader
from leadsla.streams.settings import Settings

from .conftest import H, M, Rig, S, ts
from .test_periods import Reports

playwright = pytest.importorskip("playwright.async_api", reason="the test extra installs playwright")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (scripts/test installs Debian's)")

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("LEADSLA_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

POLICIES = """
calendars:
  office:
    timezone: UTC
    hours:
      mon-fri: "09:00-17:00"
policies:
  - name: emea_first_call
    description: First call to a new lead
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected]
    goal: 1h
    at_risk: 0.5
    objective: 0.8
    min_decisions: 3
    review_after: 1
  - name: demo_request_first_touch
    calendar: office
    start: lead.created
    stop: lead.connected
    goal: 60h
    at_risk: 0.5
    objective: 0.9
targets:
  - name: mql_volume
    description: Marketing qualified leads
    deliver: lead.mql
    goal: 64
"""
NOW = ts("2026-11-24T14:00:00Z")  # a Tuesday, 14:00 UTC: the office is open (09:00-17:00)
OCT = ts("2026-10-01T00:00:00Z")
D = 24 * H
OPEN_CALLS = 24  # more deadlines than a screen holds
GREEN, DIM, RED = "rgb(61, 220, 132)", "rgb(169, 183, 198)", "rgb(255, 93, 93)"  # --ok, --dim, --bad


def traffic(r: Rig) -> None:
    """October (judged by the ledger) and now. Partition 0 is live; 1 and 2
    are still reading a backlog, so their watermarks trail their event time
    by the replay horizon (1 day) and clocks past their deadline stay open:
    overdue, not yet breached."""
    # October: apac met 3 of 3 (judged, met); emea met its only clock (1 of
    # the 3 decisions needed: not judged); latam breached 3 (judged, missed).
    for team, n, met in (("apac", 3, True), ("emea", 1, True), ("latam", 3, False)):
        for i in range(n):
            lead, at = f"oct-{team}-{i}", OCT + (3 + i) * D
            r.send(lead, "lead.handed_off", at, f"{lead}-h", team=team, rep=f"{team}-rep", partition=0)
            if met:
                r.send(lead, "lead.contact_attempt", at + 10 * M, f"{lead}-c", partition=0)
    # Now, 24x7: many open calls (none at risk yet), and one at risk.
    for i in range(OPEN_CALLS):
        r.send(f"call-{i:02d}", "lead.handed_off", NOW - (5 + i) * M, f"call-{i}-h", team="emea",
               rep="emea-rep", partition=0)
    r.send("risky-call", "lead.handed_off", NOW - 40 * M, "risky-h", team="apac", rep="apac-rep", partition=0)
    # Overdue by 20 minutes, and (the only record of partition 2) by 6 days 4 hours.
    r.send("late-call", "lead.handed_off", NOW - 80 * M, "late-h", team="emea", rep="emea-rep", partition=1)
    r.send("ancient-call", "lead.handed_off", NOW - 6 * D - 5 * H, "ancient-h", team="emea", rep="emea-rep",
           partition=2)
    # Business hours (office, 09:00-17:00 on weekdays), goal 60 business hours:
    # started Wednesday 18th 14:00 -> 32h used (at risk), 28h left: Monday 30th
    # 10:00, 5 days 20 hours away on the wall clock; started Thursday 12th
    # 14:00 -> 64h used, over by 4 business hours (deadline today 10:00).
    r.send("demo-open", "lead.created", ts("2026-11-18T14:00:00Z"), "demo-open", team="emea", partition=0)
    r.send("demo-late", "lead.created", ts("2026-11-12T14:00:00Z"), "demo-late", team="apac",
           partition=1)
    # MQLs this month: 13 in 23 days and 14 hours, a forecast of 16.54 leads;
    # the goal line on day 24 of 30 is at 51.2 leads.
    for i in range(13):
        r.send(f"mql-{i}", "lead.mql", ts("2026-11-02T10:00:00Z") + i * D, f"mql-{i}", partition=0)
    r.send("recent", "lead.contact_attempt", NOW - M, "recent", partition=1)


@dataclass
class Worker:
    rig: Rig
    reports: Reports
    server: TestServer
    url: str

    async def close(self) -> None:
        await self.server.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_worker() -> Worker:
    r = Rig(POLICIES, wall=NOW, partitions=3)
    rep = Reports(r, partitions=3)
    r.live(0)
    traffic(r)
    for _ in range(3):
        r.wall.now += S
        r.engine.tick()
        rep.deliver()
    r.wall.now = NOW
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(web_port=port, partitions=3)
    members = [Member(url, (0, 1, 2))]
    api = Api(r.engine.views, r.policies, settings, url, lambda: members, lambda: r.engine.ready)
    app = aiohttp_app(api)
    aiohttp_routes(app, Screen(r.engine, ledger_reader(rep.store, lambda: (0, 1, 2), r.policies), settings, url,
                               lambda: members))
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    return Worker(r, rep, server, url)


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    w = await start_worker()
    yield w
    await w.close()


@pytest.fixture
async def page(worker: Worker) -> AsyncIterator[Any]:
    async with playwright.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            pg = await browser.new_page(viewport={"width": 1920, "height": 1080})
            pg.set_default_timeout(5000)
            errors: list[str] = []
            pg.on("pageerror", lambda exc: errors.append(str(exc)))
            pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await pg.goto(worker.url + "/")
            await until(pg, "() => document.body.dataset.state === 'ok'", 20, "the page to show the numbers")
            yield pg
            assert errors == []
        finally:
            await browser.close()


async def until(page: Any, script: str, timeout: float, what: str) -> None:
    """Wait until ``script`` (a JS function expression) is truthy in the page
    (evaluate, which the page's content security policy allows)."""
    for _ in range(int(timeout * 10)):
        if await page.evaluate(script):
            return
        await page.wait_for_timeout(100)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / name), full_page=False)


async def test_the_scenario_is_what_the_page_tests_assume(worker: Worker) -> None:
    """The data behind the page, as the query API and the ledger give it."""
    q = worker.rig.engine.views.queue(limit=100)
    rows = {row["lead_id"]: row for row in q["clocks"]}
    assert q["total"] == OPEN_CALLS + 5
    assert rows["late-call"]["overdue"] and rows["ancient-call"]["overdue"]
    assert rows["demo-late"]["overdue"] and rows["demo-late"]["elapsed_seconds"] == 64 * 3600
    assert (rows["demo-open"]["overdue"], rows["demo-open"]["remaining_seconds"]) == (False, 28 * 3600)
    assert rows["demo-open"]["deadline"] == "2026-11-30T10:00:00Z"  # 5d 20:00:00 away on the wall clock
    assert [lead for lead, row in rows.items() if row["at_risk"]] == ["demo-late", "risky-call", "demo-open"]
    emea = [x for x in map(orjson.loads, (v for _, v in worker.rig.sink.periods)) if x["team"] == "emea"]
    assert [(x["decided"], x["met_clocks"], x["judged"], x["met"]) for x in emea] == [(1, 1, False, True)]


async def test_a_period_too_small_to_judge_is_not_shown_as_met(page: Any) -> None:
    row = page.locator("#strikes-rows tr[data-name='emea_first_call'][data-team='emea']")
    last = row.locator(".last")
    assert await last.inner_text() == "not judged (1 of 3 decisions)"
    assert await row.get_attribute("data-judged") == "false"
    assert "ok" not in (await last.get_attribute("class") or "").split()
    assert await last.evaluate("e => getComputedStyle(e).color") == DIM != GREEN
    # Judged periods keep their verdict: apac met, latam missed.
    apac = page.locator("#strikes-rows tr[data-name='emea_first_call'][data-team='apac'] .last")
    latam = page.locator("#strikes-rows tr[data-name='emea_first_call'][data-team='latam'] .last")
    assert (await apac.inner_text(), await latam.inner_text()) == ("met", "missed")
    assert await apac.evaluate("e => getComputedStyle(e).color") == GREEN
    await shot(page, "team-screen-page.png")


async def test_an_overdue_clock_says_overdue_and_counts_up_never_down(page: Any) -> None:
    rows = page.locator("#deadlines li")
    # Most urgent first: the overdue clocks, most overdue first, then the one at risk.
    leads = [await li.get_attribute("data-lead") for li in (await rows.all())[:4]]
    assert leads == ["ancient-call", "demo-late", "late-call", "risky-call"]
    ancient = page.locator("#deadlines li[data-lead='ancient-call']")
    tag = ancient.locator(".tag.state")
    assert await tag.inner_text() == "OVERDUE"
    assert await tag.evaluate("e => getComputedStyle(e).backgroundColor") == RED
    timer = ancient.locator(".countdown")
    before = await timer.inner_text()
    # Its deadline passed 6 days 4 hours ago (the page runs a few seconds past NOW).
    assert re.fullmatch(r"over 6d 04:00:0\d", before), before
    assert await timer.evaluate("e => getComputedStyle(e).color") == RED
    await until(page, f"() => document.querySelector(\"#deadlines li[data-lead='ancient-call'] .countdown\")"
                      f".innerText > '{before}'", 3, "the time since the deadline to count up")
    # The one at risk still counts down; no timer on the page is negative.
    risky = page.locator("#deadlines li[data-lead='risky-call']")
    assert await risky.locator(".tag.state").inner_text() == "AT RISK"
    assert re.fullmatch(r"00:19:[45]\d", await risky.locator(".countdown").inner_text())
    timers = await page.locator("#deadlines .countdown").all_inner_texts()
    assert timers and not [t for t in timers if "-" in t or "−" in t]


async def test_counts_of_leads_are_whole_numbers(page: Any) -> None:
    box = page.locator("#targets .target[data-target='mql_volume']")

    async def figure(key: str) -> tuple[str, float]:
        v = box.locator(f"[data-key='{key}']")
        return await v.inner_text(), float(await v.get_attribute("data-value") or "nan")

    # The figures' values are the API's; what they say is whole leads: what
    # was delivered and the forecast rounded down (16.54 leads is 16), the
    # goal line rounded up (51.2 leads to be on pace means 52).
    assert await figure("delivered") == ("13 / 64", 13)
    text, forecast = await figure("forecast")
    assert (text, round(forecast, 2)) == ("16 / 64", 16.54)
    text, line = await figure("goal-line")
    assert (text, line) == ("52", 51.2)
    for t in await box.locator("svg text").all_text_contents():
        assert re.fullmatch(r"\d+|day \d+", t), t


# The words of an element's text that the browser broke across two lines.
BROKEN_WORDS = """e => {
  const broken = [];
  const walker = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const m of node.data.matchAll(/\\S+/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
      if (tops.size > 1) broken.push(m[0]);
    }
  }
  return broken;
}"""


async def test_policies_read_as_their_description_or_as_words_never_broken_inside_one(page: Any) -> None:
    names = {}
    for row in await page.locator("#compliance-rows tr").all():
        names[await row.get_attribute("data-policy")] = row.locator("td.name")
    assert await names["emea_first_call"].inner_text() == "First call to a new lead"
    assert await names["demo_request_first_touch"].inner_text() == "demo request first touch"
    strikes = page.locator("#strikes-rows tr[data-name='emea_first_call'][data-team='emea'] td.name")
    assert await strikes.inner_text() == "First call to a new lead · emea"
    demo = page.locator("#deadlines li[data-lead='demo-late']")
    assert await demo.locator(".policy").inner_text() == "demo request first touch"
    assert await page.locator("#targets .target .title").first.inner_text() == \
        "Marketing qualified leads · 2026-11 · day 24 of 30"
    for selector in ("#compliance-rows td.name", "#strikes-rows td.name", "#deadlines .policy", "#targets .title"):
        for e in await page.locator(selector).all():
            assert await e.evaluate(BROKEN_WORDS) == [], selector
    assert "_" not in await page.locator("main").inner_text()  # no id is shown where a name belongs


async def test_a_business_hours_clock_shows_business_time_never_a_wall_clock_countdown(worker: Worker,
                                                                                       page: Any) -> None:
    # 28h of the goal's 60 business hours left (the API's remaining_seconds),
    # while its deadline is 5 days 20 hours away on the wall clock; spelled as
    # `leadsla queue` spells it.
    demo = page.locator("#deadlines li[data-lead='demo-open']")
    timer = demo.locator(".countdown")
    assert await timer.inner_text() == "28h bh"
    assert await demo.locator(".tag.state").inner_text() == "AT RISK"
    late = page.locator("#deadlines li[data-lead='demo-late']")
    assert await late.locator(".countdown").inner_text() == "over 4h bh"  # 64 of 60 business hours used
    assert await late.locator(".tag.state").inner_text() == "OVERDUE"
    # Business time is the server's figure: it does not tick here (the office
    # may be closed), while a 24x7 clock keeps its live countdown.
    risky = page.locator("#deadlines li[data-lead='risky-call'] .countdown")
    before = await risky.inner_text()
    await until(page, f"() => document.querySelector(\"#deadlines li[data-lead='risky-call'] .countdown\")"
                      f".innerText !== '{before}'", 3, "the 24x7 countdown to tick")
    assert await timer.inner_text() == "28h bh"
    # The same text as `leadsla queue` shows for that clock.
    (row,) = [r for r in worker.rig.engine.views.queue(limit=100)["clocks"] if r["lead_id"] == "demo-open"]
    assert clock_duration(row["remaining_seconds"], row["calendar"]) == "28h bh"
    for li in await page.locator("#deadlines li[data-calendar]").all():
        assert re.fullmatch(r"(over )?\d+h(\d\dm)? bh", await li.locator(".countdown").inner_text())
    assert await page.locator("#deadlines li[data-calendar]").count() == 2


# Every panel, and every element whose content a panel could hide, with what spills out of it.
SPILLS = """() => [...document.querySelectorAll('.panel, .kpi, .fit')]
  .map(e => [e.id || e.className, e.scrollWidth - e.clientWidth, e.scrollHeight - e.clientHeight])
  .filter(([, w, h]) => w > 0 || h > 0)"""


@pytest.mark.parametrize("size", [(1920, 1080), (3840, 2160), (1280, 720)])
async def test_the_page_fits_the_screen_and_lists_whole_rows_then_how_many_more(worker: Worker,
                                                                                size: tuple[int, int]) -> None:
    async with playwright.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": size[0], "height": size[1]})
            await page.goto(worker.url + "/")
            await until(page, "() => document.body.dataset.state === 'ok'", 20, "the page to show the numbers")
            await shot(page, f"team-screen-{size[0]}x{size[1]}.png")
            # No scrolling, and nothing a panel cuts off.
            width, height = await page.evaluate("[document.documentElement.scrollWidth, "
                                                "document.documentElement.scrollHeight]")
            assert (width, height) == size
            assert await page.evaluate(SPILLS) == []
            # The deadlines: the rows that fit, each whole, then how many more.
            rows = page.locator("#deadlines li[data-lead]")
            shown = await rows.count()
            more = page.locator("#deadlines li.more")
            assert await more.inner_text() == f"+{OPEN_CALLS + 5 - shown} more"
            assert shown >= (6 if size[1] >= 1080 else 4)
            box = await page.locator("#deadlines-box").bounding_box()
            panel = await page.locator("section.deadlines").bounding_box()
            for e in (rows.last, more):
                b = await e.bounding_box()
                assert b["y"] >= box["y"] and b["y"] + b["height"] <= box["y"] + box["height"] + 0.5
                assert b["y"] + b["height"] <= panel["y"] + panel["height"] <= size[1]
            # A row more would not have fit: the list is as long as the screen allows.
            assert b["y"] + b["height"] + await rows.last.evaluate("e => e.offsetHeight") > box["y"] + box["height"]
            # The other lists show whole rows too, and say what they leave out.
            for rows_of, box_of in (("#strikes-rows tr", "#strikes-box"), ("#compliance-rows tr", "#compliance-box"),
                                    ("#leaderboard li", "#leaderboard-box"), ("#targets > div", "#targets")):
                limit = await page.locator(box_of).bounding_box()
                for e in await page.locator(rows_of).all():
                    b = await e.bounding_box()
                    assert b["y"] + b["height"] <= limit["y"] + limit["height"] + 0.5, rows_of
            levels = await page.locator("#strikes-rows tr[data-name]").count()
            left = page.locator("#strikes-rows tr.more-row")
            assert levels == 3 or await left.inner_text() == f"+{3 - levels} more"
        finally:
            await browser.close()


async def test_a_notice_takes_its_height_from_the_lists_which_stay_whole(worker: Worker) -> None:
    async with playwright.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1920, "height": 1080})
            await page.goto(worker.url + "/")
            await until(page, "() => document.body.dataset.state === 'ok'", 20, "the page to show the numbers")
            rows = page.locator("#deadlines li[data-lead]")
            before = await rows.count()
            await worker.server.close()  # the worker goes away: the last numbers stay up, marked stale
            await until(page, "() => document.body.dataset.state === 'stale'", 15, "the page to say it is stale")
            assert "Showing the numbers of 14:00" in await page.locator("#notice").inner_text()
            await shot(page, "team-screen-stale.png")
            assert await page.evaluate("document.documentElement.scrollHeight") == 1080
            assert await page.evaluate(SPILLS) == []
            assert 0 < await rows.count() < before
            more = page.locator("#deadlines li.more")
            box, last = await page.locator("#deadlines-box").bounding_box(), await more.bounding_box()
            assert last["y"] + last["height"] <= box["y"] + box["height"] + 0.5
            assert await more.inner_text() == f"+{OPEN_CALLS + 5 - await rows.count()} more"
        finally:
            await browser.close()
