"""The team screen without Kafka or Faust: ``/api/screen`` on one worker
(gauges, today's decisions, the waterfall, the ledger read from metrics),
merged over two in-process workers behind real HTTP servers, its token and
error answers, the OpenAPI addition, and the page's files (served with a
strict content security policy, and free of data and of markup injection)."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from importlib.resources import files
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from leadsla.models.events import parse_timestamp_us
from leadsla.streams.api import Api, Member, aiohttp_app, openapi_document
from leadsla.streams.metrics import LedgerCollector
from leadsla.streams.screen import (
    FILES,
    LedgerShare,
    Screen,
    aiohttp_routes,
    day_bounds,
    ledger_reader,
    openapi_with_screen,
    with_screen_paths,
)
from leadsla.streams.settings import Settings

from .conftest import T0, H, M, Rig, S
from .test_api import check
from .test_periods import Reports

POLICIES = """
policies:
  - name: first_touch
    description: "  First touch\n      within the hour  "
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected]
    pause: lead.accepted
    resume: lead.qualified
    goal: 1h
    at_risk: 0.5
    objective: 0.9
    review_after: 2
  - name: berlin_touch
    start: lead.handed_off
    stop: lead.connected
    goal: 1d
    period_timezone: Europe/Berlin
targets:
  - name: mql_volume
    deliver: lead.mql
    goal: 30
    value: {by: persona, weights: {executive: 100}, default: 10}
    value_goal: 1000
"""
NO_LEDGER = LedgerShare([], {})
DAY = 24 * H


def rig(partitions: tuple[int, ...] = (0, 1, 2, 3)) -> Rig:
    r = Rig(POLICIES)
    for p in partitions:
        r.live(p)
    r.engine.keep_only(list(partitions))
    return r


def screen(r: Rig, ledger: LedgerShare = NO_LEDGER, **settings: Any) -> Screen:
    return Screen(r.engine, lambda: ledger, Settings(**settings), "http://127.0.0.1:1", lambda: [])


def traffic(r: Rig, partitions: tuple[int, ...] = (0, 1, 2, 3)) -> None:
    """Met, breached, open, at-risk and paused clocks and three MQLs, spread
    over ``partitions``."""
    p = list(partitions) * 3
    r.send("met", "lead.handed_off", T0 - 50 * M, "h1", team="emea", partition=p[0])
    r.send("met", "lead.contact_attempt", T0 - 40 * M, "a1", partition=p[0])
    r.send("yesterday", "lead.handed_off", T0 - 20 * H, "h2", team="emea", partition=p[1])
    r.send("yesterday", "lead.contact_attempt", T0 - 19 * H, "a2", partition=p[1])
    r.send("late", "lead.handed_off", T0 - 3 * H, "h3", team="apac", partition=p[2])  # breached once judged
    r.send("risky", "lead.handed_off", T0 - 40 * M, "h4", team="apac", partition=p[3])
    r.send("fresh", "lead.handed_off", T0 - 5 * M, "h5", team="emea", partition=p[4])
    r.send("paused", "lead.handed_off", T0 - 10 * M, "h6", team="apac", partition=p[5])
    r.send("paused", "lead.accepted", T0 - 9 * M, "p6", partition=p[5])
    r.send("q1", "lead.mql", T0 - 21 * DAY, "m1", persona="executive", partition=p[0])  # day 1
    r.send("q2", "lead.mql", T0 - 1 * H, "m2", partition=p[1])  # day 22
    r.send("q3", "lead.mql", T0 - 2 * H, "m3", persona="executive", partition=p[2])
    r.engine.tick()
    r.wall.now += 5 * S  # past the late start's allowed lateness: its breach is decided
    r.engine.tick()


def test_day_bounds_follow_the_time_zone() -> None:
    assert day_bounds(T0, "UTC") == ("2026-11-22", parse_timestamp_us("2026-11-22T00:00:00Z"),
                                     parse_timestamp_us("2026-11-23T00:00:00Z"))
    assert day_bounds(parse_timestamp_us("2026-11-22T23:30:00Z"), "Europe/Berlin") == (
        "2026-11-23", parse_timestamp_us("2026-11-22T23:00:00Z"), parse_timestamp_us("2026-11-23T23:00:00Z"))


async def test_one_workers_part_counts_gauges_todays_decisions_and_the_waterfall() -> None:
    r = rig()
    traffic(r)
    a = await screen(r).local()
    assert a["as_of"] == "2026-11-22T09:00:05Z" and a["partitions"] == [0, 1, 2, 3]
    ft, bt = a["policies"]
    assert (ft["policy"], ft["objective"]) == ("first_touch", 0.9)
    # Open now: risky, fresh, paused (the paused one counts as open too).
    assert (ft["open"], ft["at_risk"], ft["paused"]) == (3, 1, 1)
    # Today: "met" (stopped at 08:20) and "late" (breached at its 07:00 deadline); not yesterday's.
    assert ft["today"] == {"day": "2026-11-22", "met": 1, "breached": 1}
    # berlin_touch: nothing decided; its day is Berlin's.
    assert bt["policy"] == "berlin_touch" and bt["today"] == {"day": "2026-11-22", "met": 0, "breached": 0}
    assert bt["open"] == 6  # every handoff started one, none connected
    (t,) = a["targets"]
    assert (t["target"], t["period"], t["day"], t["days"], t["goal"], t["value_goal"]) == \
        ("mql_volume", "2026-11", 22, 30, 30, 1000)
    assert t["by_day"][0] == 1 and t["by_day"][21] == 2 and sum(t["by_day"]) == 3
    assert t["value_by_day"][0] == 100 and t["value_by_day"][21] == 110
    assert t["forecast"] == pytest.approx(3 * 30 / (21 + (9 * 3600 + 5) / 86400))
    assert t["value_forecast"] == pytest.approx(210 * 30 / (21 + (9 * 3600 + 5) / 86400))


LEDGER_POLICIES = """
policies:
  - name: first_touch
    start: lead.handed_off
    stop: lead.contact_attempt
    goal: 1h
    objective: 0.5
    min_decisions: 3
    review_after: 3
targets:
  - name: mqls
    deliver: lead.mql
    goal: 2
"""
OCT = parse_timestamp_us("2026-10-01T00:00:00Z")


def judged_october() -> tuple[Rig, Reports]:
    """October judged by a real ledger (2 input partitions): apac met 3 of 3
    (judged, met), emea met its only clock (1 decision of the 3 needed: not
    judged), marketing delivered 1 of 2 (missed)."""
    r = Rig(LEDGER_POLICIES, partitions=2)
    rep = Reports(r)
    for i in range(3):
        at = OCT + (2 + i) * DAY
        r.send(f"a{i}", "lead.handed_off", at, f"a{i}-h", team="apac", partition=i % 2)
        r.send(f"a{i}", "lead.contact_attempt", at + 10 * M, f"a{i}-c", partition=i % 2)
    r.send("e0", "lead.handed_off", OCT + 5 * DAY, "e0-h", team="emea", partition=1)
    r.send("e0", "lead.contact_attempt", OCT + 5 * DAY + 5 * M, "e0-c", partition=1)
    r.send("q0", "lead.mql", OCT + 7 * DAY, "q0", partition=0)
    r.live(0)
    r.live(1)
    for _ in range(3):
        r.wall.now += S
        r.engine.tick()
        rep.deliver()
    return r, rep


def test_the_ledger_is_read_from_its_table_for_the_partitions_owned() -> None:
    r, rep = judged_october()
    share = ledger_reader(rep.store, lambda: (0, 1), r.policies)()
    assert sorted(share.levels, key=lambda lv: (lv["kind"], lv["team"])) == [
        {"kind": "policy", "name": "first_touch", "team": "apac", "strikes": 0, "under_review": False,
         "last_met": True, "last_achieved": 1.0, "last_period": "2026-10", "last_judged": True},
        {"kind": "policy", "name": "first_touch", "team": "emea", "strikes": 0, "under_review": False,
         "last_met": True, "last_achieved": 1.0, "last_period": "2026-10", "last_judged": False},
        {"kind": "target", "name": "mqls", "team": "", "strikes": 1, "under_review": False,
         "last_met": False, "last_achieved": 1.0, "last_period": "2026-10", "last_judged": True},
    ]
    assert share.points == {"apac": 1.0, "emea": 0.0, "marketing": 0.0}
    # The same as the ledger's metrics show (Ledger.levels, LedgerCollector).
    registry = CollectorRegistry()
    registry.register(LedgerCollector(lambda: rep.ledger.levels({0, 1}), lambda: 0, rep.ledger.points_team))
    assert registry.get_sample_value("leadsla_period_strikes", {"kind": "target", "name": "mqls", "team": ""}) == 1
    assert registry.get_sample_value("leadsla_team_points", {"team": "apac"}) == 1
    # A worker reads the levels of the report partitions it owns, nothing else
    # (a standby copy of the table holds the others).
    halves = [ledger_reader(rep.store, lambda p=p: (p,), r.policies)().levels for p in (0, 1)]
    assert sorted(str(lv) for lv in halves[0] + halves[1]) == sorted(str(lv) for lv in share.levels)
    assert ledger_reader(rep.store, lambda: (), r.policies)() == LedgerShare([], {})


async def test_a_period_with_too_few_decisions_is_not_judged_and_says_how_many() -> None:
    r, rep = judged_october()
    sc = Screen(r.engine, ledger_reader(rep.store, lambda: (0, 1), r.policies), Settings(partitions=2),
                "http://127.0.0.1:1", lambda: [])
    a = sc.merge([("http://127.0.0.1:1", await sc.local())])
    levels = {(lv["kind"], lv["team"]): lv for lv in a["levels"]}
    emea, apac, mqls = levels["policy", "emea"], levels["policy", "apac"], levels["target", ""]
    # The sla-periods record says: decided 1, met_clocks 1, judged false.
    (record,) = [x for x in map(orjson.loads, (v for _, v in r.sink.periods)) if x["team"] == "emea"]
    assert (record["decided"], record["met_clocks"], record["judged"]) == (1, 1, False)
    assert (emea["last_period"], emea["last_judged"], emea["last_decided"], emea["min_decisions"]) == \
        ("2026-10", False, 1, 3)
    assert (apac["last_period"], apac["last_judged"], apac["last_decided"], apac["min_decisions"]) == \
        ("2026-10", True, 3, 3)
    assert (mqls["last_judged"], mqls["last_decided"], mqls["min_decisions"]) == (True, None, None)
    # Two breaches of October counted after October was judged: the cells no
    # longer hold the count it was judged on, and the answer does not guess it.
    november = parse_timestamp_us("2026-11-01T00:00:00Z")
    r.engine.runtimes[0].decide(("first_touch", "emea", "2026-10", november), 0, 2)
    a = sc.merge([("http://127.0.0.1:1", await sc.local())])
    (emea,) = [lv for lv in a["levels"] if lv["team"] == "emea"]
    assert (emea["last_judged"], emea["last_decided"]) == (False, None)


# -- two workers over HTTP ------------------------------------------------------------------------


class Group:
    """Two workers, each an Engine owning two partitions, each with the query
    API and the screen behind a real HTTP server; their ledgers are fakes."""

    def __init__(self, token: str | None = None) -> None:
        self.rigs = [rig((0, 1)), rig((2, 3))]
        self.ledgers = [NO_LEDGER, NO_LEDGER]
        self.members: list[Member] = []
        self.servers: list[TestServer] = []
        self.token = token

    async def start(self) -> Group:
        for i, r in enumerate(self.rigs):
            port = _free_port()
            settings = Settings(web_port=port, peer_timeout=2,
                                api_token=None if self.token is None else SecretStr(self.token))
            url = f"http://127.0.0.1:{port}"
            api = Api(r.engine.views, r.policies, settings, url, lambda: self.members, lambda r=r: r.engine.ready)
            app = aiohttp_app(api)
            aiohttp_routes(app, Screen(r.engine, lambda i=i: self.ledgers[i], settings, url, lambda: self.members))
            server = TestServer(app, host="127.0.0.1", port=port)
            await server.start_server()
            self.servers.append(server)
        self.members[:] = [Member(self.url(i), (2 * i, 2 * i + 1)) for i in range(2)]
        return self

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.servers[i].port}"

    async def close(self) -> None:
        for s in self.servers:
            await s.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def group() -> AsyncIterator[Group]:
    g = await Group().start()
    traffic(g.rigs[0], (0, 1))
    traffic(g.rigs[1], (2, 3))
    g.ledgers[0] = LedgerShare([
        {"kind": "policy", "name": "first_touch", "team": "emea", "strikes": 2, "under_review": True,
         "last_met": False, "last_achieved": 0.5},
        {"kind": "policy", "name": "gone_policy", "team": "emea", "strikes": 9, "under_review": True,
         "last_met": False, "last_achieved": 0.0},
    ], {"emea": 0.0, "apac": 2.0})
    g.ledgers[1] = LedgerShare([
        {"kind": "target", "name": "mql_volume", "team": "", "strikes": 1, "under_review": False,
         "last_met": False, "last_achieved": 20.0},
        {"kind": "policy", "name": "first_touch", "team": "apac", "strikes": 0, "under_review": False,
         "last_met": True, "last_achieved": 1.0},
    ], {"apac": 1.0, "marketing": 4.0})
    yield g
    await g.close()


async def fetch(url: str, token: str | None = None) -> tuple[int, Any]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with ClientSession() as s, s.get(url, headers=headers) as r:
        return r.status, await r.json()


async def test_any_worker_answers_for_the_whole_group(group: Group) -> None:
    for i in (0, 1):
        status, a = await fetch(f"{group.url(i)}/api/screen")
        assert status == 200, a
        assert a["complete"] is True and a["partitions"] == [0, 1, 2, 3]
        assert [w["url"] for w in a["workers"]] == [group.url(i), group.url(1 - i)]
        ft = a["policies"][0]
        assert (ft["policy"], ft["open"], ft["at_risk"], ft["paused"]) == ("first_touch", 6, 2, 2)
        assert ft["today"] == {"day": "2026-11-22", "met": 2, "breached": 2, "decided": 4, "ratio": 0.5}
        (t,) = a["targets"]
        assert (t["delivered"], t["value_delivered"], t["goal_line"]) == (6, 420, 30 * 22 / 30)
        assert t["cumulative"][0] == 2 and t["cumulative"][-1] == 6 and len(t["cumulative"]) == 22
        assert len(t["by_day"]) == 30 and t["by_day"][21] == 4
        assert t["forecast"] == pytest.approx(6 * 30 / (21 + (9 * 3600 + 5) / 86400))
        # Under review first, then by strikes; a level no longer in the file is left out.
        assert [(lv["kind"], lv["name"], lv["team"], lv["strikes"], lv["review_after"]) for lv in a["levels"]] == [
            ("policy", "first_touch", "emea", 2, 2), ("target", "mql_volume", "", 1, 3),
            ("policy", "first_touch", "apac", 0, 2)]
        assert a["leaderboard"] == [{"team": "marketing", "points": 4.0}, {"team": "apac", "points": 3.0},
                                    {"team": "emea", "points": 0.0}]
        # What a person reads: the description (its spaces as one), else the id's words.
        assert [(p["policy"], p["label"], p["description"]) for p in a["policies"]] == [
            ("first_touch", "First touch within the hour", "First touch within the hour"),
            ("berlin_touch", "berlin touch", "")]
        assert [(p["calendar"], p["goal_seconds"]) for p in a["policies"]] == [(None, 3600), (None, 86400)]
        assert (t["label"], t["description"]) == ("mql volume", "")
        assert [lv["label"] for lv in a["levels"]] == ["First touch within the hour", "mql volume",
                                                       "First touch within the hour"]
    # The same numbers as the query API's for what both show.
    status, c = await fetch(f"{group.url(0)}/api/compliance")
    assert status == 200
    assert sum(r["open"] for r in c["policies"] if r["policy"] == "first_touch") == 6
    assert c["targets"][0]["delivered"] == 6
    # A worker asked for its own part does not ask further.
    status, part = await fetch(f"{group.url(1)}/api/screen?scope=local")
    assert status == 200 and part["partitions"] == [2, 3] and "leaderboard" not in part


async def test_a_missing_partition_makes_the_answer_incomplete(group: Group) -> None:
    group.members[1] = Member(group.url(1), (2,))  # partition 3 has no owner for a moment
    group.rigs[1].engine.keep_only([2])
    status, a = await fetch(f"{group.url(0)}/api/screen")
    assert status == 200 and a["complete"] is False and a["partitions"] == [0, 1, 2]


@pytest.mark.parametrize(("query", "message"), [
    ("?team=emea", "unknown query parameter 'team'"), ("?scope=some", "scope must be 'all' or 'local'")])
async def test_bad_parameters_are_400(group: Group, query: str, message: str) -> None:
    status, a = await fetch(f"{group.url(0)}/api/screen{query}")
    assert status == 400 and message in a["error"]


async def test_a_recovering_or_unreachable_worker_fails_the_answer(group: Group) -> None:
    group.rigs[1].engine.ready = False
    status, a = await fetch(f"{group.url(0)}/api/screen")
    assert status == 503 and "recovering" in a["error"] and group.url(1) in a["error"]
    group.rigs[1].engine.ready = True
    await group.servers[1].close()
    status, a = await fetch(f"{group.url(0)}/api/screen")
    assert status == 502 and "cannot be reached" in a["error"]


async def test_the_token_is_required_and_passed_between_workers() -> None:
    g = await Group(token="s3cret").start()
    try:
        status, a = await fetch(f"{g.url(0)}/api/screen")
        assert status == 401 and "Bearer" in a["error"]
        status, a = await fetch(f"{g.url(0)}/api/screen", token="wrong")
        assert status == 401
        status, a = await fetch(f"{g.url(0)}/api/screen", token="s3cret")
        assert status == 200 and a["complete"] is True  # the peer got the token too
        async with ClientSession() as s, s.get(f"{g.url(0)}/") as r:
            assert r.status == 200  # the page itself is open: it holds no data
    finally:
        await g.close()


# -- the page and the OpenAPI document -----------------------------------------------------------------


async def test_the_page_and_its_files_are_served_with_a_strict_policy(group: Group) -> None:
    async with ClientSession() as s:
        for path, kind in (("/", "text/html"), ("/screen/screen.css", "text/css"),
                           ("/screen/screen.js", "text/javascript")):
            async with s.get(group.url(0) + path) as r:
                assert r.status == 200 and r.content_type == kind and r.charset == "utf-8"
                csp = r.headers["Content-Security-Policy"]
                assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
                assert r.headers["X-Content-Type-Options"] == "nosniff"
                if path == "/":  # the same file every time: the data comes from the API, with the token
                    assert await r.text() == (files("leadsla.streams") / "static" / "screen.html").read_text()
        for path in ("/screen/../screen.py", "/screen/app.py", "/screen/nothing.js"):
            async with s.get(group.url(0) + path) as r:
                assert r.status == 404


def test_the_page_is_plain_and_inserts_data_as_text_only() -> None:
    static = files("leadsla.streams") / "static"
    html = (static / "screen.html").read_text()
    js = (static / "screen.js").read_text()
    css = (static / "screen.css").read_text()
    assert set(FILES) == {"screen.html", "screen.css", "screen.js"}
    # Nothing from elsewhere: no absolute URL is loaded, no inline script.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "http" not in css and "@import" not in css
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/screen/screen.js" defer>']
    assert not re.search(r"\son\w+=", html)  # no inline handlers
    # Data reaches the DOM as text: no markup sinks at all.
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in js, sink
    # Only the worker's own API, and the token from the fragment into this tab's storage.
    assert sorted(set(re.findall(r'getJson\(\s*[`"](/api/\w+)', js))) == ["/api/compliance", "/api/queue",
                                                                           "/api/screen"]
    assert "sessionStorage" in js and "localStorage" not in js and 'Authorization = "Bearer "' in js


async def test_the_openapi_document_gains_the_screen_and_answers_match_it(group: Group) -> None:
    doc = openapi_with_screen()
    assert set(doc["paths"]) == set(openapi_document()["paths"]) | {"/api/screen"}
    refs = re.findall(r"#/components/schemas/(\w+)", str(doc))
    assert set(refs) <= set(doc["components"]["schemas"])
    # The hook around the query API's answer adds the same.
    hooked = with_screen_paths(web.json_response(openapi_document()))
    assert hooked.body is not None and b'"/api/screen"' in hooked.body
    refused = web.json_response({"error": "x", "status": 500}, status=500)
    assert with_screen_paths(refused) is refused
    for query in ("", "?team=x"):
        status, a = await fetch(f"{group.url(1)}/api/screen{query}")
        schema = doc["paths"]["/api/screen"]["get"]["responses"][str(status)]["content"]["application/json"]["schema"]
        check(schema, a, doc)


async def test_todays_decisions_are_counted_at_most_every_15_seconds() -> None:
    r = rig()
    traffic(r)
    sc = screen(r)
    assert (await sc.local())["policies"][0]["today"]["met"] == 1
    r.send("later", "lead.handed_off", T0 - 30 * M, "h9", team="emea")
    r.send("later", "lead.connected", T0 - 20 * M, "c9")
    r.engine.tick()
    a = await sc.local()
    assert a["policies"][0]["today"]["met"] == 1  # the last count, 0 s old
    assert a["policies"][0]["open"] == 3  # the gauges are always now
    r.wall.now += 15 * S
    r.engine.tick()
    assert (await sc.local())["policies"][0]["today"]["met"] == 2
    r.engine.keep_only([1, 2, 3])  # a rebalance took partition 0 (both met leads): counted again at once
    assert (await sc.local())["policies"][0]["today"]["met"] == 0
