"""The query API on every worker: ``/api/leads/{lead_id}``, ``/api/queue``,
``/api/compliance`` and ``/openapi.json``, with bearer-token auth and
routing between the workers of one group.

Any worker answers any request:

- a lead lives in one partition, owned by one worker. The worker asked looks
  in its own state first; if the lead is not there it asks the worker that
  owns the partition the key hashes to with murmur2 (the default partitioner
  of the Java client and aiokafka), and if that one does not know the lead
  either, every other worker at once. The second step is there because
  upstream producers may partition differently (librdkafka's default is
  CRC32-based): the lead's state follows the partition its events came from,
  never a hash. Faust's own ``app.router``/``@app.table_route`` route by the
  hash alone and would answer 404 for such leads, so routing is done here,
  with Faust's knowledge of the group: the partition assignor's map of each
  member's advertised URL (``canonical_url``) to the partitions it owns;
- the queue and compliance are answered by every worker for its own
  partitions (``?scope=local``) and merged by the worker asked.

A peer that cannot be reached makes the answer fail (502, or 504 after
``LEADSLA_PEER_TIMEOUT``) rather than be silently incomplete. Peer requests
carry the caller's ``Authorization`` header. Nothing here logs a lead id.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiokafka.partitioner import murmur2
from yarl import URL

from leadsla.models.policy import PolicySet
from leadsla.streams.settings import Settings
from leadsla.streams.views import Views, merge_compliance, period_kind, queue_order

MAX_LIMIT = 10_000  # queue rows per answer
DEFAULT_LIMIT = 100
LOOPBACK_NAMES = ("localhost",)
WILDCARDS = ("0.0.0.0", "::", "[::]", "")


# -- start-up checks and the advertised URL ------------------------------------


def is_loopback(host: str) -> bool:
    """Is ``host`` a loopback address (127.0.0.0/8, ::1) or ``localhost``?"""
    h = host.strip().strip("[]").lower()
    if h in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def exposure_problem(settings: Settings) -> str | None:
    """Why this worker must not start, in one line, or None: its web server
    would serve lead ids beyond loopback without a token."""
    if is_loopback(settings.web_host) or settings.api_token is not None:
        return None
    return (f"web host {settings.web_host!r} (--web-host / LEADSLA_WEB_HOST) is reachable beyond this machine "
            "and LEADSLA_API_TOKEN is not set: the query API would give lead ids to anyone; set "
            "LEADSLA_API_TOKEN or serve on 127.0.0.1")


def advertised_url(settings: Settings) -> str:
    """The URL other workers reach this worker's query API on (Faust's
    ``canonical_url``, shared with the group by the partition assignor):
    ``LEADSLA_ADVERTISED_HOST``, else the web host, else (a wildcard such as
    0.0.0.0 is no address to connect to) this machine's name."""
    host = settings.advertised_host or settings.web_host
    if host.strip() in WILDCARDS:
        host = socket.getfqdn() or socket.gethostname()
    return str(URL.build(scheme="http", host=host.strip("[]"), port=settings.web_port))


# -- auth and errors ----------------------------------------------------------------


def error(status: int, message: str) -> web.Response:
    """A JSON error answer: ``{"error": message, "status": status}``."""
    return web.json_response({"error": message, "status": status}, status=status,
                             headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)


def denied(settings: Settings, headers: Mapping[str, str]) -> web.Response | None:
    """The 401 answer for a request without the right bearer token (None: let
    it through, also when no token is configured). Compared in constant time."""
    token = settings.api_token
    if token is None:
        return None
    given = headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    if not given:
        return error(401, "this endpoint needs Authorization: Bearer <token> (LEADSLA_API_TOKEN)")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(),
                                                             token.get_secret_value().encode()):
        return error(401, "wrong token: send the worker's LEADSLA_API_TOKEN as Authorization: Bearer <token>")
    return None


class BadRequest(Exception):
    """A query parameter is wrong; the message says which and why."""


def _params(query: Mapping[str, str], allowed: tuple[str, ...]) -> dict[str, str]:
    unknown = sorted(set(query) - set(allowed) - {"scope"})
    if unknown:
        takes = f"takes {', '.join(allowed)}" if allowed else "takes no query parameters"
        raise BadRequest(f"unknown query parameter {unknown[0]!r}; this endpoint {takes}")
    scope = query.get("scope", "all")
    if scope not in ("all", "local"):
        raise BadRequest(f"scope must be 'all' or 'local', got {scope!r}")
    out = {}
    for k in allowed:
        if k in query:
            v = query[k]
            if not v.strip():
                raise BadRequest(f"{k} is empty; leave it out to not filter on it")
            out[k] = v
    return out


# -- the group -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    """A worker of the group: its advertised URL and the input partitions it owns."""

    url: str
    partitions: tuple[int, ...]


def faust_members(app: Any, topic: str) -> list[Member]:
    """The group as the partition assignor last shared it with this worker
    (advertised URL -> owned partitions of ``topic``); empty before the first
    assignment."""
    try:
        dist = app.assignor.external_topics_metadata()
    except AttributeError:
        return []
    return [Member(str(url), tuple(sorted(tps.get(topic, ())))) for url, tps in dist.items()]


def partition_guess(lead_id: str, partitions: int) -> int:
    """The partition murmur2 puts the key in (the Java client's and aiokafka's default)."""
    return (murmur2(lead_id.encode()) & 0x7FFFFFFF) % partitions


def _ident(url: str) -> tuple[str, int]:
    u = URL(url)
    return ((u.host or "").lower(), u.port or 80)


class PeerError(Exception):
    """A peer worker did not answer usefully; ``status`` is 502 or 504."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Peers:
    """The other workers of the group, asked over HTTP with the caller's
    token: ``members()`` is the group (``Member`` list; this worker is the
    one whose URL is ``self_url``), ``settings.peer_timeout`` bounds each
    request. One client session, opened at the first request."""

    def __init__(self, settings: Settings, self_url: str, members: Callable[[], list[Member]]) -> None:
        self.settings = settings
        self.self_url = self_url
        self.members = members
        self._session: aiohttp.ClientSession | None = None

    def others(self) -> list[Member]:
        """Every member but this worker."""
        me = _ident(self.self_url)
        return [m for m in self.members() if _ident(m.url) != me]

    async def close(self) -> None:
        """Close the HTTP client (at shutdown)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fan_out(self, path: str, params: dict[str, str], request: web.Request) -> list[tuple[str, Any]]:
        """Ask every other worker for its own part (``scope=local``). Raises
        PeerError naming the first worker that failed."""
        peers = self.others()
        answers = await asyncio.gather(*(self.ask(m, path, {**params, "scope": "local"}, request, (200,))
                                         for m in peers), return_exceptions=True)
        out = []
        for m, a in zip(peers, answers, strict=True):
            if isinstance(a, BaseException):
                raise a
            out.append((m.url, a[1]))
        return out

    async def ask(self, member: Member, path: str, params: dict[str, str], request: web.Request,
                   expected: tuple[int, ...]) -> tuple[int, Any]:
        """GET ``path`` on a peer with the caller's token; (status, JSON body).
        Raises PeerError (502: unreachable, an unexpected status or body;
        503: the peer recovers its state; 504: no answer within
        ``peer_timeout``)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.settings.peer_timeout))
        headers = {}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        url = URL(member.url).with_path(path, encoded=True).with_query(params)
        try:
            async with self._session.get(url, headers=headers, allow_redirects=False) as r:
                if r.status == 401:
                    raise PeerError(502, f"worker {member.url} refused the token: every worker of the group "
                                         "needs the same LEADSLA_API_TOKEN")
                if r.status == 503 and 503 not in expected:
                    raise PeerError(503, f"worker {member.url} is recovering its state (start-up or "
                                         "rebalance); try again")
                if r.status not in expected:
                    raise PeerError(502, f"worker {member.url} answered {r.status}")
                try:
                    return r.status, await r.json(content_type=None)
                except ValueError:
                    raise PeerError(502, f"worker {member.url} answered something that is not JSON") from None
        except TimeoutError:
            raise PeerError(504, f"worker {member.url} did not answer within "
                                 f"{self.settings.peer_timeout:g} s (LEADSLA_PEER_TIMEOUT)") from None
        except aiohttp.ClientError as exc:
            raise PeerError(502, f"worker {member.url} cannot be reached ({exc.__class__.__name__})") from None


# -- the API ---------------------------------------------------------------------------


class Api:
    """The query API of one worker.

    ``views`` reads this worker's state; ``members()`` returns the group
    (``Member`` list; this worker is the one whose URL is ``self_url``);
    ``ready()`` says whether this worker has recovered its state. Handlers
    take an aiohttp request and return an aiohttp response, so they run
    under Faust's web server (``streams.app``) or a bare aiohttp app (tests).
    """

    def __init__(self, views: Views, policies: PolicySet, settings: Settings, self_url: str,
                 members: Callable[[], list[Member]], ready: Callable[[], bool]) -> None:
        self.views = views
        self.policies = policies
        self.settings = settings
        self.self_url = self_url
        self.members = members
        self.ready = ready
        self.peers = Peers(settings, self_url, members)

    async def close(self) -> None:
        """Close the HTTP client used to ask peers (at shutdown)."""
        await self.peers.close()

    # -- handlers --------------------------------------------------------------

    async def lead(self, request: web.Request, lead_id: str) -> web.Response:
        """``GET /api/leads/{lead_id}``: 200 with ``Views.lead_clocks``' answer
        and ``worker`` (the URL of the worker owning the lead); 404 for a lead
        no worker knows; 503 while the owner recovers; 502/504 when a worker
        that could own it does not answer."""
        if (no := denied(self.settings, request.headers)) is not None:
            return no
        try:
            _params(request.query, ())
        except BadRequest as exc:
            return error(400, str(exc))
        local = request.query.get("scope") == "local"
        if not self.ready():
            if local:
                return error(503, "this worker is recovering its state (start-up or rebalance); try again")
        else:
            view = self.views.lead_clocks(lead_id)
            if view is not None:
                return web.json_response({**view, "worker": self.self_url})
        if local:
            return error(404, f"no lead {lead_id} known on this worker")
        return await self._route_lead(request, lead_id)

    async def _route_lead(self, request: web.Request, lead_id: str) -> web.Response:
        members = self.peers.others()
        if not members:
            if not self.ready():
                return error(503, "this worker is recovering its state (start-up or rebalance); try again")
            return error(404, f"no lead {lead_id} known")
        n = max([p + 1 for m in self.members() for p in m.partitions] + [self.settings.partitions])
        guess = partition_guess(lead_id, n)
        first = [m for m in members if guess in m.partitions]
        rest = [m for m in members if m not in first]
        path = "/api/leads/" + quote(lead_id, safe="")
        problems: list[PeerError] = []
        recovering = not self.ready()
        for group in (first, rest):
            answers = await asyncio.gather(*(self.peers.ask(m, path, {"scope": "local"}, request, (200, 404, 503))
                                             for m in group), return_exceptions=True)
            for a in answers:
                if isinstance(a, PeerError):
                    problems.append(a)
                elif isinstance(a, BaseException):
                    raise a
                elif a[0] == 200:
                    return web.json_response(a[1])
                elif a[0] == 503:
                    recovering = True
        if problems:
            worst = max(problems, key=lambda p: p.status)
            return error(worst.status, f"no worker that answered knows lead {lead_id}, and {worst}")
        if recovering:
            return error(503, f"lead {lead_id} not found while a worker recovers its state (start-up or "
                              "rebalance); try again")
        return error(404, f"no lead {lead_id} known")

    async def queue(self, request: web.Request) -> web.Response:
        """``GET /api/queue?team=&rep=&policy=&limit=``: open and pending clocks
        of every worker, at-risk first, then by deadline. ``{total, limit,
        clocks: [...], partitions, workers, complete}``; ``complete`` is False
        when some partition has no owner right now (a rebalance)."""
        if (no := denied(self.settings, request.headers)) is not None:
            return no
        try:
            p = _params(request.query, ("team", "rep", "policy", "limit"))
            limit = self._limit(p.get("limit"))
            self._policy(p.get("policy"))
        except BadRequest as exc:
            return error(400, str(exc))
        if not self.ready():
            return error(503, "this worker is recovering its state (start-up or rebalance); try again")
        mine = await self.views.queue_async(p.get("team"), p.get("rep"), p.get("policy"), limit)
        mine.update(limit=limit, partitions=self.views.owned())
        if request.query.get("scope") == "local":
            return web.json_response(mine)
        try:
            others = await self.peers.fan_out("/api/queue", {**p, "limit": str(limit)}, request)
        except PeerError as exc:
            return error(exc.status, str(exc))
        parts = [(self.self_url, mine), *others]
        rows = sorted((r for _, a in parts for r in a["clocks"]), key=queue_order)[:limit]
        return web.json_response(self._merged(parts, {
            "total": sum(a["total"] for _, a in parts), "limit": limit, "clocks": rows}))

    async def compliance(self, request: web.Request) -> web.Response:
        """``GET /api/compliance?period=&policy=&team=``: met, breached and open
        clocks and the ratio per policy and team for a period, and the
        targets' delivery in it, over every worker (``Views.compliance``)."""
        if (no := denied(self.settings, request.headers)) is not None:
            return no
        try:
            p = _params(request.query, ("period", "policy", "team"))
            if "period" in p and period_kind(p["period"]) is None:
                raise BadRequest(f"period {p['period']!r} is not a period label: use 2026-11 (a month), "
                                 "2026-W48 (an ISO week) or 2026-Q4 (a quarter)")
            self._policy(p.get("policy"))
        except BadRequest as exc:
            return error(400, str(exc))
        if not self.ready():
            return error(503, "this worker is recovering its state (start-up or rebalance); try again")
        mine = self.views.compliance(p.get("period"), p.get("policy"), p.get("team"))
        mine["partitions"] = self.views.owned()
        if request.query.get("scope") == "local":
            return web.json_response(mine)
        try:
            others = await self.peers.fan_out("/api/compliance", p, request)
        except PeerError as exc:
            return error(exc.status, str(exc))
        parts = [(self.self_url, mine), *others]
        return web.json_response(self._merged(parts, merge_compliance([a for _, a in parts], self.policies)))

    async def openapi(self, request: web.Request) -> web.Response:
        """``GET /openapi.json``: the OpenAPI 3.1 description (no token needed)."""
        return web.json_response(openapi_document())

    # -- helpers ------------------------------------------------------------------

    def _limit(self, text: str | None) -> int:
        if text is None:
            return DEFAULT_LIMIT
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
            raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {text!r}")
        return int(text)

    def _policy(self, name: str | None) -> None:
        if name is not None and name not in self.policies.names:
            raise BadRequest(f"unknown policy {name!r}; the policies are {', '.join(self.policies.names)}")

    def _merged(self, parts: list[tuple[str, dict[str, Any]]], answer: dict[str, Any]) -> dict[str, Any]:
        covered = sorted({p for _, a in parts for p in a.get("partitions", ())})
        n = max([p + 1 for m in self.members() for p in m.partitions] + [self.settings.partitions])
        return {**answer, "partitions": covered, "complete": covered == list(range(n)),
                "workers": [{"url": url, "partitions": a.get("partitions", [])} for url, a in parts]}


def aiohttp_app(api: Api) -> web.Application:
    """The API as a bare aiohttp application (tests, and anything that serves
    it without Faust); the Faust app mounts the same handlers (streams.app)."""
    app = web.Application()

    async def lead(request: web.Request) -> web.Response:
        return await api.lead(request, request.match_info["lead_id"])

    app.router.add_get("/api/leads/{lead_id}", lead)
    app.router.add_get("/api/queue", api.queue)
    app.router.add_get("/api/compliance", api.compliance)
    app.router.add_get("/openapi.json", api.openapi)

    async def closing(app: web.Application) -> None:
        await api.close()

    app.on_cleanup.append(closing)
    return app


# -- OpenAPI -------------------------------------------------------------------------------

_TS = {"type": ["string", "null"], "format": "date-time"}
_NUM = {"type": ["number", "null"]}
_STR = {"type": ["string", "null"]}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props) if required is None else required}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "a query parameter is wrong", 401: "missing or wrong bearer token (LEADSLA_API_TOKEN set)",
            404: "no worker knows the lead", 502: "a worker could not be reached or answered wrongly",
            503: "a worker is recovering its state (start-up or rebalance)",
            504: "a worker did not answer in time (LEADSLA_PEER_TIMEOUT)"}
    return {str(c): {"description": text[c], "content": {"application/json": {"schema": _ref("Error")}}}
            for c in codes}


_SCOPE = {"name": "scope", "in": "query", "required": False,
          "description": "all (default): every worker's partitions; local: only the partitions of the worker "
                         "asked (what workers ask each other)",
          "schema": {"type": "string", "enum": ["all", "local"]}}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the query API (``/openapi.json``).
    ``tests/streams/test_api.py`` checks real answers against its schemas."""
    clock = _obj({
        "policy": {"type": "string"},
        "state": {"type": "string", "enum": ["running", "paused", "pending", "decided", "idle"]},
        "cycle": {"type": "integer", "description": "cycles begun so far"},
        "team": _STR, "rep": _STR,
        "goal": {"type": "string", "description": "the policy's goal as written: 1h, 2d, 3bd (business days)"},
        "calendar": {**_STR, "description": "the policy's business calendar; null: 24x7. Under a calendar every "
                                            "*_seconds figure is business seconds"},
        "goal_seconds": {"type": "number", "description": "the open cycle's goal in business seconds (a goal in "
                                                          "business days is longer over a weekend)"},
        "started_at": _TS, "deadline": _TS,
        "at_risk": {"type": "boolean"},
        "elapsed_seconds": {**_NUM, "description": "business seconds of the open or pending cycle, as of as_of"},
        "remaining_seconds": {**_NUM, "description": "business seconds left before the goal is used up (0 when overdue)"},
        "overdue": {"type": "boolean", "description": "the goal is used up; the breach is decided when the "
                                                      "watermark passes the deadline"},
        "paused_spans": {"type": "array", "items": _obj({"from": {"type": "string", "format": "date-time"},
                                                         "to": _TS})},
        "judged_not_before": {**_TS, "description": "a late start's clock is not breached before this"},
        "attempts": {"type": ["integer", "null"]},
        "min_attempts": {"type": ["integer", "null"]},
        "decision": {"oneOf": [{"type": "null"}, _ref("Decision")]},
    })
    decision = _obj({
        "outcome": {"type": "string", "enum": ["met", "breached"]},
        "cycle": {"type": "integer"},
        "started_at": {"type": "string", "format": "date-time"},
        "deadline": {"type": "string", "format": "date-time"},
        "ended_at": {"type": "string", "format": "date-time", "description": "its stop, or its deadline when breached"},
        "elapsed_seconds": {**_NUM, "description": "None when the cycle was paused"},
        "awaiting_stop": {"type": "boolean", "description": "breached with no stop seen yet: a stop dated before "
                                                            "the deadline would be recorded as a correction"},
        "corrected_at": {**_TS, "description": "the breach was corrected: the stop, dated before the deadline, "
                                               "that arrived after it was decided (sla-outcomes has the correction)"},
    })
    lead = _obj({
        "lead_id": {"type": "string"},
        "partition": {"type": "integer"},
        "worker": {"type": "string", "description": "the URL of the worker owning the lead"},
        "as_of": {"type": "string", "format": "date-time"},
        "watermark": _TS,
        "owner": _obj({"team": _STR, "rep": _STR}),
        "last_event_at": _TS,
        "clocks": {"type": "array", "items": _ref("Clock")},
        "pending_events": {"type": "array", "description": "events waiting for the watermark", "items": _obj({
            "occurred_at": {"type": "string", "format": "date-time"}, "type": {"type": "string"},
            "roles": {"type": "array", "items": _obj({"policy": {"type": "string"}, "role": {"type": "string"}})},
        })},
        "too_late": {"type": "array", "items": _obj({"occurred_at": {"type": "string", "format": "date-time"},
                                                      "policy": {"type": "string"}, "role": {"type": "string"}})},
    })
    row = _obj({
        "lead_id": {"type": "string"}, "policy": {"type": "string"},
        "state": {"type": "string", "enum": ["running", "paused", "pending"]},
        "partition": {"type": "integer"}, "team": _STR, "rep": _STR, "started_at": _TS, "deadline": _TS,
        "at_risk": {"type": "boolean"}, "elapsed_seconds": _NUM, "remaining_seconds": _NUM,
        "overdue": {"type": "boolean"}, "goal_seconds": {"type": "number"},
        "calendar": {**_STR, "description": "business calendar (null: 24x7); seconds are business seconds"},
    })
    workers = {"type": "array", "items": _obj({"url": {"type": "string"},
                                               "partitions": {"type": "array", "items": {"type": "integer"}}})}
    group = {
        "partitions": {"type": "array", "items": {"type": "integer"}, "description": "partitions answered for"},
        "complete": {"type": "boolean", "description": "every partition had an owner that answered"},
        "workers": workers,
    }
    queue = _obj({"total": {"type": "integer", "description": "matching clocks, all of them"},
                  "limit": {"type": "integer"},
                  "clocks": {"type": "array", "items": _ref("QueueRow")}, **group},
                 ["total", "limit", "clocks", "partitions"])
    compliance_row = _obj({
        "policy": {"type": "string"}, "team": {"type": "string", "description": "team label, as on /metrics"},
        "period": {"type": "string"}, "met": {"type": "integer"}, "breached": {"type": "integer"},
        "open": {"type": "integer", "description": "clocks open now (current period only)"},
        "decided": {"type": "integer"}, "ratio": _NUM, "objective": _NUM,
        "objective_met": {"type": ["boolean", "null"]},
    })
    target_row = _obj({
        "target": {"type": "string"}, "period": {"type": "string"}, "delivered": {"type": "number"},
        "value_delivered": _NUM, "goal": {"type": "integer"}, "value_goal": _NUM, "ratio": _NUM,
        "met": {"type": "boolean"},
    })
    compliance = _obj({"period": {**_STR, "description": "the period asked for (null: each one's current)"},
                       "policies": {"type": "array", "items": _ref("ComplianceRow")},
                       "targets": {"type": "array", "items": _ref("TargetRow")}, **group},
                      ["period", "policies", "targets", "partitions"])
    auth: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "leadsla query API", "version": "1",
                 "description": "Any worker answers for the whole group: a lead is looked up on the worker "
                                "owning it, the queue and compliance are merged from every worker. With "
                                "LEADSLA_API_TOKEN set, everything but /openapi.json, /metrics and /ready "
                                "needs Authorization: Bearer <token>."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Lead": lead, "Clock": clock, "Decision": decision, "Queue": queue, "QueueRow": row,
                        "Compliance": compliance, "ComplianceRow": compliance_row, "TargetRow": target_row,
                        "Error": _obj({"error": {"type": "string"}, "status": {"type": "integer"}})},
        },
        "paths": {
            "/api/leads/{lead_id}": {"get": {
                "summary": "every policy's clock for one lead", "security": auth,
                "parameters": [{"name": "lead_id", "in": "path", "required": True, "schema": {"type": "string"}},
                               _SCOPE],
                "responses": {"200": {"description": "the lead",
                                      "content": {"application/json": {"schema": _ref("Lead")}}},
                              **_errors(400, 401, 404, 502, 503, 504)},
            }},
            "/api/queue": {"get": {
                "summary": "open and pending clocks, at risk first, then by deadline", "security": auth,
                "parameters": [
                    {"name": "team", "in": "query", "required": False, "schema": {"type": "string"}},
                    {"name": "rep", "in": "query", "required": False, "schema": {"type": "string"}},
                    {"name": "policy", "in": "query", "required": False, "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
                    _SCOPE],
                "responses": {"200": {"description": "the queue",
                                      "content": {"application/json": {"schema": _ref("Queue")}}},
                              **_errors(400, 401, 502, 503, 504)},
            }},
            "/api/compliance": {"get": {
                "summary": "met, breached and open per policy and team, and target delivery, for a period",
                "security": auth,
                "parameters": [
                    {"name": "period", "in": "query", "required": False,
                     "schema": {"type": "string", "pattern": r"^\d{4}-(\d{2}|W\d{2}|Q[1-4])$"},
                     "description": "2026-11, 2026-W48 or 2026-Q4; default: each policy's current period"},
                    {"name": "policy", "in": "query", "required": False, "schema": {"type": "string"}},
                    {"name": "team", "in": "query", "required": False, "schema": {"type": "string"}},
                    _SCOPE],
                "responses": {"200": {"description": "the period",
                                      "content": {"application/json": {"schema": _ref("Compliance")}}},
                              **_errors(400, 401, 502, 503, 504)},
            }},
            "/openapi.json": {"get": {"summary": "this document", "security": [],
                                      "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        },
    }


class UnparsableRequestFilter(logging.Filter):
    """aiohttp logs a request it cannot parse (a request line over 8 KiB, a
    bad header) as an ERROR with a traceback quoting the raw bytes, which
    hold the path and so a lead id. Turns such a record into one WARNING
    naming the error's type only; aiohttp has answered the client 400."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg, record.args = "rejected an HTTP request that could not be parsed (%s)", (type(exc).__name__,)
            record.exc_info, record.exc_text, record.stack_info = None, None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_unparsable_requests() -> None:
    """Install ``UnparsableRequestFilter`` on aiohttp's server logger (once)."""
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, UnparsableRequestFilter) for f in server.filters):
        server.addFilter(UnparsableRequestFilter())
