"""The query API without Kafka or Faust: the views it serves, token checks,
errors, the OpenAPI document checked against real answers, routing and
merging between two in-process workers (each an Engine behind a real aiohttp
server), and the ``leadsla lead``/``queue`` commands."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from leadsla.streams import cli
from leadsla.streams.api import (
    Api,
    Member,
    advertised_url,
    aiohttp_app,
    denied,
    exposure_problem,
    is_loopback,
    openapi_document,
    partition_guess,
)
from leadsla.streams.settings import Settings
from leadsla.streams.views import queue_order

from .conftest import T0, M, Rig, S

POLICIES = """
policies:
  - name: first_touch
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected]
    pause: lead.accepted
    resume: lead.qualified
    goal: 1h
    at_risk: 0.5
  - name: follow_up_depth
    start: lead.handed_off
    attempt: lead.contact_attempt
    min_attempts: 3
    stop: lead.connected
    goal: 1d
targets:
  - {name: mql_volume, deliver: lead.mql, goal: 4}
"""


def rig() -> Rig:
    r = Rig(POLICIES)
    for p in range(4):
        r.live(p)
    return r


def by_policy(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["policy"]: c for c in answer["clocks"]}


# -- views -----------------------------------------------------------------------------------


def test_a_fresh_handoff_shows_at_once_as_pending_with_its_deadline() -> None:
    r = rig()
    r.send("L1", "lead.handed_off", T0, "h1", team="emea", rep="r1")
    a = r.engine.views.lead_clocks("L1")
    assert a is not None
    c = by_policy(a)["first_touch"]
    assert (c["state"], c["team"], c["rep"]) == ("pending", "emea", "r1")
    assert a["owner"] == {"team": "emea", "rep": "r1"}  # as the queue shows it, before the watermark
    assert (c["started_at"], c["deadline"]) == ("2026-11-22T09:00:00Z", "2026-11-22T10:00:00Z")
    assert (c["elapsed_seconds"], c["remaining_seconds"], c["overdue"]) == (0.0, 3600.0, False)
    assert a["pending_events"] == [{"occurred_at": "2026-11-22T09:00:00Z", "type": "lead.handed_off",
                                    "roles": [{"policy": "first_touch", "role": "start"},
                                              {"policy": "follow_up_depth", "role": "start"}]}]
    assert by_policy(a)["follow_up_depth"]["state"] == "pending"
    assert r.engine.views.lead_clocks("nobody") is None


def test_running_paused_and_decided_clocks_with_business_time() -> None:
    r = rig()
    r.send("L1", "lead.handed_off", T0 - 50 * M, "h1", team="emea")
    r.send("L1", "lead.accepted", T0 - 40 * M, "p1")  # paused 10 min
    r.send("L1", "lead.qualified", T0 - 30 * M, "r1")
    r.send("L2", "lead.handed_off", T0 - 30 * M, "h2", team="apac")
    r.send("L2", "lead.contact_attempt", T0 - 20 * M, "a2")
    r.send("L3", "lead.handed_off", T0 - 5 * M, "h3")
    r.send("L3", "lead.accepted", T0 - 4 * M, "p3")
    r.engine.tick()
    c = by_policy(r.engine.views.lead_clocks("L1"))["first_touch"]
    assert c["state"] == "running"
    assert (c["elapsed_seconds"], c["remaining_seconds"]) == (40 * 60.0, 20 * 60.0)
    assert c["deadline"] == "2026-11-22T09:20:00Z"  # the pause moved it by 10 minutes
    assert c["paused_spans"] == [{"from": "2026-11-22T08:20:00Z", "to": "2026-11-22T08:30:00Z"}]
    assert c["at_risk"] is True  # 40 of 60 minutes used, at risk at 50 %
    d = by_policy(r.engine.views.lead_clocks("L2"))
    assert d["first_touch"]["state"] == "decided"
    assert d["first_touch"]["decision"] == {
        "outcome": "met", "cycle": 1, "started_at": "2026-11-22T08:30:00Z", "deadline": "2026-11-22T09:30:00Z",
        "ended_at": "2026-11-22T08:40:00Z", "elapsed_seconds": 600.0, "awaiting_stop": False,
        "corrected_at": None}
    assert (d["follow_up_depth"]["state"], d["follow_up_depth"]["attempts"]) == ("running", 1)
    p = by_policy(r.engine.views.lead_clocks("L3"))["first_touch"]
    assert p["state"] == "paused" and p["deadline"] is None
    assert p["paused_spans"] == [{"from": "2026-11-22T08:56:00Z", "to": None}]
    assert (p["elapsed_seconds"], p["remaining_seconds"]) == (60.0, 3540.0)


def test_a_breach_awaits_its_stop() -> None:
    r = rig()
    r.send("L1", "lead.handed_off", T0 - 3 * 60 * M, "h1")
    r.engine.tick()
    c = by_policy(r.engine.views.lead_clocks("L1"))["first_touch"]
    # A late start: its follow-up gets one allowed lateness to arrive.
    assert (c["state"], c["overdue"], c["remaining_seconds"]) == ("running", True, 0.0)
    assert c["judged_not_before"] == "2026-11-22T09:00:00Z"
    r.wall.now += 5 * S
    r.engine.tick()
    d = by_policy(r.engine.views.lead_clocks("L1"))["first_touch"]["decision"]
    assert (d["outcome"], d["awaiting_stop"], d["ended_at"]) == ("breached", True, "2026-11-22T07:00:00Z")
    # The follow-up arrives after all, dated before the deadline: the breach stays, with its correction shown.
    r.send("L1", "lead.contact_attempt", T0 - 150 * M, "a1")
    d = by_policy(r.engine.views.lead_clocks("L1"))["first_touch"]["decision"]
    assert (d["outcome"], d["awaiting_stop"], d["corrected_at"]) == ("breached", False, "2026-11-22T06:30:00Z")
    assert r.engine.views.lead("L1")["clocks"]["first_touch"]["corrected_at"] == "2026-11-22T06:30:00Z"
    assert [x["outcome"] for x in r.sink.records()] == ["breached", "corrected"]


def test_the_queue_puts_at_risk_first_then_the_nearest_deadline() -> None:
    r = rig()
    r.send("far", "lead.handed_off", T0 - 5 * M, "h1", team="emea", rep="r1", partition=0)
    r.send("risky", "lead.handed_off", T0 - 40 * M, "h2", team="emea", rep="r2", partition=1)
    r.send("near", "lead.handed_off", T0 - 20 * M, "h3", team="apac", rep="r1", partition=2)
    r.send("new", "lead.handed_off", T0, "h4", team="apac", rep="r1", partition=3)  # pending
    r.send("paused", "lead.handed_off", T0 - 10 * M, "h5", team="apac", rep="r1", partition=3)
    r.send("paused", "lead.accepted", T0 - 9 * M, "p5", partition=3)
    r.engine.tick()
    q = r.engine.views.queue(policy="first_touch")
    assert [row["lead_id"] for row in q["clocks"]] == ["risky", "near", "far", "new", "paused"]
    assert q["total"] == 5
    assert [row["state"] for row in q["clocks"]] == ["running", "running", "running", "pending", "paused"]
    assert sorted(q["clocks"], key=queue_order) == q["clocks"]
    assert [row["lead_id"] for row in r.engine.views.queue(team="apac", policy="first_touch")["clocks"]] == [
        "near", "new", "paused"]
    assert [row["lead_id"] for row in r.engine.views.queue(rep="r2")["clocks"]] == ["risky", "risky"]
    q2 = r.engine.views.queue(limit=2)
    assert (q2["total"], len(q2["clocks"])) == (10, 2)  # two policies per lead
    assert asyncio.run(r.engine.views.queue_async(limit=2, slice_size=1)) == q2


def test_compliance_counts_decisions_in_their_period_and_open_clocks_now() -> None:
    r = rig()
    r.send("met", "lead.handed_off", T0 - 50 * M, "h1", team="emea")
    r.send("met", "lead.contact_attempt", T0 - 40 * M, "a1")
    r.send("late", "lead.handed_off", T0 - 3 * 60 * M, "h2", team="emea")
    r.send("open", "lead.handed_off", T0 - 10 * M, "h3", team="apac")
    for i in range(3):
        r.send(f"m{i}", "lead.mql", T0 - M, f"q{i}")
    r.wall.now += 5 * S  # the late handoff's hold passes: breached
    r.engine.tick()
    c = r.engine.views.compliance(policy="first_touch")
    rows = {row["team"]: row for row in c["policies"]}
    assert rows["apac"]["open"] == 1 and rows["apac"]["ratio"] is None
    if hasattr(r.engine.runtimes[0], "period_cells"):
        assert (rows["emea"]["met"], rows["emea"]["breached"], rows["emea"]["ratio"]) == (1, 1, 0.5)
        assert rows["emea"]["objective_met"] is False
    assert c["targets"] == [{"target": "mql_volume", "period": "2026-11", "delivered": 3.0, "value_delivered": None,
                             "goal": 4, "value_goal": None, "ratio": 0.75, "met": False}]
    assert r.engine.views.compliance(period="2026-10")["policies"] == []
    assert r.engine.views.compliance(period="2026-W48")["targets"] == []  # a month target has no weeks


# -- settings, auth, start-up ---------------------------------------------------------------------


def test_the_token_is_secret_and_checked_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSLA_API_TOKEN", "s3cret")
    s = Settings()
    assert s.api_token is not None and s.api_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s) and "s3cret" not in str(s.model_dump())
    assert denied(s, {"Authorization": "Bearer s3cret"}) is None
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic s3cret"},
                    {"Authorization": "s3cret"}):
        no = denied(s, headers)
        assert no is not None and no.status == 401
    monkeypatch.setenv("LEADSLA_API_TOKEN", "  ")
    assert Settings().api_token is None
    assert denied(Settings(), {}) is None  # no token configured: open


def test_a_worker_beyond_loopback_without_a_token_refuses_to_start() -> None:
    for host in ("127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"):
        assert is_loopback(host) and exposure_problem(Settings(web_host=host)) is None
    problem = exposure_problem(Settings(web_host="0.0.0.0"))
    assert problem is not None and "LEADSLA_API_TOKEN" in problem and "\n" not in problem
    assert exposure_problem(Settings(web_host="0.0.0.0", api_token=SecretStr("t"))) is None
    assert cli.main(["run", "--web-host", "0.0.0.0", "--broker", "kafka://127.0.0.1:1"]) == 2


def test_cli_refusal_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--web-host", "10.1.2.3", "--broker", "kafka://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "LEADSLA_API_TOKEN" in err and "10.1.2.3" in err


def test_the_advertised_url_is_reachable() -> None:
    assert advertised_url(Settings(web_port=7001)) == "http://127.0.0.1:7001"
    assert advertised_url(Settings(web_host="::1", web_port=7001)) == "http://[::1]:7001"
    assert advertised_url(Settings(web_host="0.0.0.0", advertised_host="w1.internal", web_port=7001,
                                   api_token=SecretStr("t"))) == "http://w1.internal:7001"
    wild = advertised_url(Settings(web_host="0.0.0.0", web_port=7001, api_token=SecretStr("t")))
    assert "0.0.0.0" not in wild and wild.endswith(":7001")


def test_the_partition_guess_is_the_default_partitioners() -> None:
    # aiokafka's DefaultPartitioner, the Java client's algorithm (murmur2).
    from aiokafka.partitioner import DefaultPartitioner

    for n in (1, 4, 12):
        for i in range(200):
            key = f"lead-{i}"
            assert partition_guess(key, n) == DefaultPartitioner()(key.encode(), list(range(n)), list(range(n)))


# -- two workers over HTTP -------------------------------------------------------------------------


class Group:
    """Two workers, each an Engine owning two partitions, behind real HTTP servers."""

    def __init__(self, token: str | None = None) -> None:
        self.rigs = [rig(), rig()]
        self.members: list[Member] = []
        self.servers: list[TestServer] = []
        self.token = token
        self.ready = [True, True]
        for i, r in enumerate(self.rigs):
            r.engine.keep_only([2 * i, 2 * i + 1])  # worker 0 owns 0 and 1, worker 1 owns 2 and 3

    async def start(self) -> Group:
        for i, r in enumerate(self.rigs):
            port = _free_port()
            settings = Settings(web_port=port, peer_timeout=2,
                                api_token=None if self.token is None else SecretStr(self.token))
            api = Api(r.engine.views, r.policies, settings, f"http://127.0.0.1:{port}", lambda: self.members,
                      lambda i=i: self.ready[i])
            server = TestServer(aiohttp_app(api), host="127.0.0.1", port=port)
            await server.start_server()
            self.servers.append(server)
        self.members[:] = [Member(f"http://127.0.0.1:{s.port}", (2 * i, 2 * i + 1))
                           for i, s in enumerate(self.servers)]
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
    # A lead in each worker's partitions, one more that hashes elsewhere.
    g.rigs[0].send("on-0", "lead.handed_off", T0 - 40 * M, "h0", team="emea", rep="r1", partition=1)
    g.rigs[1].send("on-1", "lead.handed_off", T0 - 20 * M, "h1", team="apac", rep="r2", partition=3)
    g.rigs[1].send("pending", "lead.handed_off", T0, "h2", team="apac", rep="r2", partition=2)
    for r in g.rigs:
        r.engine.tick()
    yield g
    await g.close()


async def fetch(url: str, token: str | None = None) -> tuple[int, Any]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with ClientSession() as s, s.get(url, headers=headers) as r:
        return r.status, await r.json()


async def test_either_worker_answers_for_a_lead_the_other_owns(group: Group) -> None:
    for i in (0, 1):
        status, a = await fetch(f"{group.url(i)}/api/leads/on-1")
        assert status == 200, a
        assert (a["lead_id"], a["partition"], a["worker"]) == ("on-1", 3, group.url(1))
        assert by_policy(a)["first_touch"]["state"] == "running"
        status, a = await fetch(f"{group.url(i)}/api/leads/pending")
        assert (status, by_policy(a)["first_touch"]["state"]) == (200, "pending")
    status, a = await fetch(f"{group.url(0)}/api/leads/nobody")
    assert (status, a) == (404, {"error": "no lead nobody known", "status": 404})
    status, a = await fetch(f"{group.url(1)}/api/leads/on-0?scope=local")
    assert status == 404  # a worker asked for its own part does not ask further


async def test_the_queue_merges_every_worker(group: Group) -> None:
    for i in (0, 1):
        status, q = await fetch(f"{group.url(i)}/api/queue?policy=first_touch")
        assert status == 200, q
        assert [r["lead_id"] for r in q["clocks"]] == ["on-0", "on-1", "pending"]
        assert (q["total"], q["partitions"], q["complete"]) == (3, [0, 1, 2, 3], True)
        assert {w["url"] for w in q["workers"]} == {group.url(0), group.url(1)}
    status, q = await fetch(f"{group.url(0)}/api/queue?team=apac&limit=1")
    assert (q["total"], [r["lead_id"] for r in q["clocks"]]) == (4, ["on-1"])
    status, c = await fetch(f"{group.url(1)}/api/compliance?policy=first_touch")
    assert status == 200
    assert {(r["team"], r["open"]) for r in c["policies"]} == {("emea", 1), ("apac", 2)}


@pytest.mark.parametrize(("path", "message"), [
    ("/api/queue?limit=0", "limit must be a whole number from 1 to 10000"),
    ("/api/queue?policy=nope", "unknown policy 'nope'"),
    ("/api/queue?teem=emea", "unknown query parameter 'teem'"),
    ("/api/queue?team=", "team is empty"),
    ("/api/compliance?period=November", "is not a period label"),
    ("/api/leads/x?scope=everywhere", "scope must be 'all' or 'local'"),
])
async def test_bad_parameters_are_400_with_a_message(group: Group, path: str, message: str) -> None:
    status, a = await fetch(group.url(0) + path)
    assert status == 400 and message in a["error"]


async def test_an_unreachable_worker_is_a_502_not_a_short_answer(group: Group) -> None:
    gone = group.url(1)
    await group.servers[1].close()
    status, a = await fetch(f"{group.url(0)}/api/queue")
    assert status == 502 and gone in a["error"] and "cannot be reached" in a["error"]
    status, a = await fetch(f"{group.url(0)}/api/leads/on-1")
    assert status == 502
    status, a = await fetch(f"{group.url(0)}/api/leads/on-0")
    assert status == 200  # its own leads still answer


async def test_a_worker_recovering_its_state_is_a_503(group: Group) -> None:
    group.ready[1] = False
    status, a = await fetch(f"{group.url(0)}/api/queue")
    assert status == 503 and "recovering" in a["error"]
    status, a = await fetch(f"{group.url(0)}/api/leads/on-1")
    assert status == 503 and "try again" in a["error"]
    status, a = await fetch(f"{group.url(1)}/api/leads/on-0")
    assert status == 200  # a recovering worker still routes to the others


async def test_a_worker_that_does_not_answer_in_time_is_a_504(group: Group) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts connections, never answers
    try:
        group.members.append(Member(f"http://127.0.0.1:{silent.getsockname()[1]}", ()))
        status, a = await fetch(f"{group.url(0)}/api/queue")
        assert status == 504 and "did not answer within 2 s" in a["error"]
    finally:
        silent.close()


async def test_the_token_is_required_and_passed_between_workers() -> None:
    g = await Group(token="t0ken").start()
    try:
        g.rigs[1].send("on-1", "lead.handed_off", T0 - 20 * M, "h1", partition=3)
        for path in ("/api/leads/on-1", "/api/queue", "/api/compliance"):
            status, a = await fetch(g.url(0) + path)
            assert (status, a["status"]) == (401, 401) and "Bearer" in a["error"]
            status, a = await fetch(g.url(0) + path, token="wrong")
            assert status == 401
        status, a = await fetch(f"{g.url(0)}/api/leads/on-1", token="t0ken")
        assert (status, a["worker"]) == (200, g.url(1))  # the second hop carried the token
        status, q = await fetch(f"{g.url(0)}/api/queue", token="t0ken")
        assert (status, q["total"]) == (200, 2)
        status, doc = await fetch(f"{g.url(0)}/openapi.json")  # the description is open
        assert status == 200 and doc["openapi"] == "3.1.0"
    finally:
        await g.close()


# -- the OpenAPI document against real answers ---------------------------------------------------------


def check(schema: dict[str, Any], value: Any, doc: dict[str, Any], where: str = "$") -> None:
    """A small JSON Schema (2020-12 subset) check: $ref, oneOf, type (lists
    too), enum, properties, required, items, pattern, minimum/maximum."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        check(doc["components"]["schemas"][name], value, doc, where)
        return
    if "oneOf" in schema:
        ok = 0
        for s in schema["oneOf"]:
            try:
                check(s, value, doc, where)
                ok += 1
            except AssertionError:
                pass
        assert ok == 1, f"{where}: {value!r} matches {ok} of oneOf"
        return
    types = schema.get("type")
    if types is not None:
        types = types if isinstance(types, list) else [types]
        py = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict,
              "array": list, "null": type(None)}
        assert any(isinstance(value, py[t]) and not (t in ("integer", "number") and isinstance(value, bool))
                   for t in types), f"{where}: {value!r} is not {types}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if isinstance(value, dict):
        for k in schema.get("required", ()):
            assert k in value, f"{where}: {k} missing"
        for k, s in schema.get("properties", {}).items():
            if k in value:
                check(s, value[k], doc, f"{where}.{k}")
        assert set(value) <= set(schema.get("properties", value)), f"{where}: undocumented {set(value) - set(schema['properties'])}"
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            check(schema["items"], v, doc, f"{where}[{i}]")
    if isinstance(value, str) and "pattern" in schema:
        assert re.search(schema["pattern"], value), f"{where}: {value!r} !~ {schema['pattern']}"


def test_the_openapi_document_is_3_1_and_lists_every_endpoint() -> None:
    doc = openapi_document()
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) == {"/api/leads/{lead_id}", "/api/queue", "/api/compliance", "/openapi.json"}
    refs = re.findall(r"#/components/schemas/(\w+)", str(doc))
    assert set(refs) <= set(doc["components"]["schemas"])


async def test_real_answers_match_the_openapi_schemas(group: Group) -> None:
    status, doc = await fetch(f"{group.url(0)}/openapi.json")
    assert status == 200
    group.rigs[0].send("on-0", "lead.contact_attempt", T0 - 10 * M, "a0", partition=1)
    group.rigs[0].send("mql", "lead.mql", T0 - 10 * M, "q0", partition=0)
    group.rigs[0].engine.tick()
    paths = doc["paths"]
    for url, path in ((f"/api/leads/{lead}", "/api/leads/{lead_id}") for lead in ("on-0", "on-1", "pending")):
        status, a = await fetch(group.url(0) + url)
        schema = paths[path]["get"]["responses"][str(status)]["content"]["application/json"]["schema"]
        check(schema, a, doc)
    for url, path in (("/api/queue", "/api/queue"), ("/api/compliance", "/api/compliance"),
                      ("/api/compliance?period=2026-11&team=emea", "/api/compliance"),
                      ("/api/queue?limit=x", "/api/queue"), ("/api/leads/nobody", "/api/leads/{lead_id}")):
        status, a = await fetch(group.url(1) + url)
        schema = paths[path]["get"]["responses"][str(status)]["content"]["application/json"]["schema"]
        check(schema, a, doc)


# -- the commands -----------------------------------------------------------------------------------


async def test_leadsla_lead_and_queue_print_tables_and_json(group: Group, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSLA_API_URL", group.url(0))
    assert await asyncio.to_thread(cli.main, ["lead", "on-1"]) == 0
    out = capsys.readouterr().out
    assert "lead on-1" in out and "first_touch" in out and "running" in out and "40m" in out
    assert await asyncio.to_thread(cli.main, ["queue", "--team", "apac", "--json", "--api", group.url(1)]) == 0
    assert '"total":4' in capsys.readouterr().out
    assert await asyncio.to_thread(cli.main, ["queue", "--policy", "first_touch"]) == 0
    out = capsys.readouterr().out
    assert out.index("on-0") < out.index("on-1") < out.index("pending") and "3 of 3 open clocks" in out
    assert await asyncio.to_thread(cli.main, ["lead", "nobody"]) == 2
    assert capsys.readouterr().err.strip() == "leadsla: no lead nobody known"


def test_leadsla_lead_says_when_no_worker_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["lead", "L1", "--api", f"http://127.0.0.1:{_free_port()}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no worker answers at" in err and "leadsla run" in err


def test_tables_keep_control_characters_and_long_values_off_the_terminal() -> None:
    from leadsla.streams.client import queue_text

    row = {"lead_id": "\x1b[31mred\x00" + "x" * 300, "policy": "first_touch", "state": "running", "overdue": False,
           "team": "we\tird", "rep": None, "deadline": "2026-11-22T10:00:00Z", "remaining_seconds": 60.0,
           "at_risk": False}
    text = queue_text({"clocks": [row], "total": 1, "limit": 100, "complete": True})
    assert "\x1b" not in text and "\x00" not in text and "\t" not in text
    first = text.splitlines()[1]
    assert first.startswith("?[31mred?xxx") and "…" in first and len(first) < 200
    assert queue_text({"clocks": [], "total": 0, "limit": 100, "complete": True}) == "no open clocks"
