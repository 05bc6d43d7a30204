"""The team screen: a page for a wall display at ``/`` and the one endpoint
it needs beyond the query API, ``GET /api/screen``.

The page (``static/screen.html``, ``.css``, ``.js``: plain files, nothing
fetched from elsewhere) asks the worker that serves it for
``/api/compliance`` and ``/api/queue`` (streams.api, merged over the group)
and for ``/api/screen``: what the query API does not return, gathered the
same way — each worker answers for its own partitions (``?scope=local``) and
the worker asked merges every worker's part:

- per policy: clocks open, at risk and paused now, and the clocks decided
  today (met, breached) in the policy's period time zone;
- per target: the current period's deliveries by day (the waterfall), value,
  goal line and forecast (``TargetStatus``);
- the period ledger: strikes, review and the last verdict per judged level
  (of which period, judged or not, and for a policy how many decisions the
  period had) and the points per team (the leaderboard), read from the
  ledger's table on this worker (``ledger_reader``: each level is kept by
  one worker, so the merge takes the highest strikes and sums the points,
  as the README says of the ledger's metrics).

``/`` and its two files are open: they hold no data. ``/api/screen`` holds
no lead id but asks for the bearer token like the rest of the API. A peer
that does not answer makes the answer fail (502/504), as in streams.api.
Instants in answers are RFC 3339 text (UTC); nothing here logs a lead id.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aiohttp import web

from leadsla.models.events import format_timestamp_us
from leadsla.models.periods import MARKETING_TEAM, POLICY, TARGET, period_of
from leadsla.models.policy import Policy, PolicySet
from leadsla.streams.api import Member, PeerError, Peers, denied, error, faust_members, openapi_document
from leadsla.streams.codec import parse_ledger_key
from leadsla.streams.ledger import CLOSED
from leadsla.streams.settings import Settings
from leadsla.streams.targets import DAY_US

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from leadsla.streams.engine import Engine

PATH = "/api/screen"
LEDGER_TABLE = "period-ledger"  # the Faust table streams.app keeps the ledger in
SLICE = 20_000  # leads read between two yields to the event loop (today's decisions)
# Today's decisions take a pass over every lead held (1-2 µs each): counted
# at most this often per worker, however many screens ask.
TODAY_TTL_US = 15 * 1_000_000

# The page's files: name -> content type. Served at / (the page) and /screen/<name>.
FILES = {"screen.html": "text/html", "screen.css": "text/css", "screen.js": "text/javascript"}
# Nothing but this origin: the page's own script and style, its own API.
# Inline script and style attributes are refused, which is what makes a
# value that slipped into markup harmless.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

@dataclass(frozen=True, slots=True)
class LedgerShare:
    """What one worker's ledger shows: ``levels`` as ``{kind, name, team,
    strikes, under_review, last_met, last_achieved, last_period,
    last_judged}`` (the last five None before a first verdict; ``team`` ""
    for a target) and ``points`` per leaderboard team."""

    levels: list[dict[str, Any]]
    points: dict[str, float]


def ledger_reader(store: Mapping[str, Any], owned: Callable[[], Iterable[int]],
                  policies: PolicySet) -> Callable[[], LedgerShare]:
    """Read this worker's share of the period ledger from the ledger's table
    (``streams.ledger.Ledger``'s store: ``kind|name|team`` → entry) for the
    report-topic partitions ``owned()`` names: the levels and points the
    ledger's metrics show (``Ledger.levels``, ``LedgerCollector``: strikes,
    review, the last verdict, points per team, targets' to marketing), and
    what those metrics leave out: which period the last verdict is of and
    whether it was judged at all. A policy's period with fewer decisions
    than its ``min_decisions`` is not judged: the ledger records it as met
    (it is no miss) but it is no achievement, and the screen must not show
    it as one. Levels of a policy or target no longer in ``policies`` are
    left out, as the metrics leave them out."""
    names = {(POLICY, p.name) for p in policies.policies} | {(TARGET, t.name) for t in policies.targets}

    def read() -> LedgerShare:
        mine = set(owned())
        levels: list[dict[str, Any]] = []
        points: dict[str, float] = {}
        for key, entry in list(store.items()):
            if key.startswith(CLOSED) or entry.get("k") not in mine:
                continue  # a closed-through report, or a standby copy of another worker's level
            kind, name, team = parse_ledger_key(key)
            if (kind, name) not in names:
                continue
            last = entry.get("last")
            levels.append({"kind": kind, "name": name, "team": team, "strikes": int(entry["strikes"]),
                           "under_review": None if last is None else bool(last["under_review"]),
                           "last_met": None if last is None else bool(last["met"]),
                           "last_achieved": None if last is None else last["achieved"],
                           "last_period": None if last is None else last["period"],
                           "last_judged": None if last is None else bool(last["judged"])})
            board = MARKETING_TEAM if kind == TARGET else team
            points[board] = points.get(board, 0.0) + float(entry["points"])
        return LedgerShare(levels, points)

    return read


def labelled(name: str, description: str) -> dict[str, str]:
    """``{label, description}`` of a policy or target: what a person reads
    for it, its description (whitespace runs as one space) or else its name
    with underscores as spaces (``demo_request_first_touch`` reads ``demo
    request first touch``): words, so that a screen wraps it between words,
    never inside one."""
    text = " ".join(description.split())
    return {"label": text or name.replace("_", " "), "description": text}


def day_bounds(now_us: int, zone: str) -> tuple[str, int, int]:
    """The local day holding ``now_us`` in ``zone`` (IANA): its date
    (``2026-11-30``) and its bounds in epoch µs, [start, end)."""
    tz = ZoneInfo(zone)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    day = (epoch + timedelta(microseconds=now_us)).astimezone(tz).date()

    def midnight(d: Any) -> int:
        return (datetime(d.year, d.month, d.day, tzinfo=tz) - epoch) // timedelta(microseconds=1)

    return day.isoformat(), midnight(day), midnight(day + timedelta(days=1))


class Screen:
    """``/api/screen`` on one worker, and the page's files.

    ``engine`` is this worker's runtime (read only); ``ledger()`` its share
    of the period ledger; ``members()`` the group (``Member`` list; this
    worker is the one whose URL is ``self_url``), as in ``streams.api.Api``.
    """

    def __init__(self, engine: Engine, ledger: Callable[[], LedgerShare], settings: Settings, self_url: str,
                 members: Callable[[], list[Member]]) -> None:
        self.engine = engine
        self.policies: PolicySet = engine.policies
        self.ledger = ledger
        self.settings = settings
        self.self_url = self_url
        self.members = members
        self.peers = Peers(settings, self_url, members)
        self._files: dict[str, bytes] = {}
        # (counted at wall µs, for partitions, {policy: (day, met, breached)}), and one pass at a time.
        self._today: tuple[int, tuple[int, ...], dict[str, tuple[str, int, int]]] | None = None
        self._today_lock = asyncio.Lock()

    async def close(self) -> None:
        """Close the HTTP client used to ask peers (at shutdown)."""
        await self.peers.close()

    # -- the page --------------------------------------------------------------------

    def file(self, name: str) -> web.Response:
        """One of the page's files (``FILES``), read once from the package;
        404 for any other name. Never cached by the browser for long: a new
        version of the package must reach a screen that runs for weeks."""
        if name not in FILES:
            return error(404, f"no file {name!r} here")
        body = self._files.get(name)
        if body is None:
            body = self._files[name] = (importlib.resources.files("leadsla.streams") / "static" / name).read_bytes()
        return web.Response(body=body, content_type=FILES[name], charset="utf-8", headers={
            "Cache-Control": "no-cache", "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer"})

    # -- the endpoint -----------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        """``GET /api/screen``: ``{as_of, policies, targets, levels,
        leaderboard, partitions, complete, workers}`` over every worker
        (``local`` and ``merge`` give the parts' shapes). 401 without the
        token (LEADSLA_API_TOKEN set), 400 for a query parameter other than
        ``scope``, 503 while this worker recovers, 502/504 when a peer does
        not answer."""
        if (no := denied(self.settings, request.headers)) is not None:
            return no
        unknown = sorted(set(request.query) - {"scope"})
        if unknown:
            return error(400, f"unknown query parameter {unknown[0]!r}; this endpoint takes only scope")
        scope = request.query.get("scope", "all")
        if scope not in ("all", "local"):
            return error(400, f"scope must be 'all' or 'local', got {scope!r}")
        if not self.engine.ready:
            return error(503, "this worker is recovering its state (start-up or rebalance); try again")
        mine = await self.local()
        if scope == "local":
            return web.json_response(mine)
        try:
            others = await self.peers.fan_out(PATH, {}, request)
        except PeerError as exc:
            return error(exc.status, str(exc))
        for url, part in others:
            if not isinstance(part, dict):
                return error(502, f"worker {url} answered something that is not a screen part")
        parts = [(self.self_url, mine), *others]
        return web.json_response(self.merge(parts))

    async def local(self) -> dict[str, Any]:
        """This worker's part, for the partitions it owns:

        ``{as_of, partitions, policies: [{policy, objective, open, at_risk,
        paused, today: {day, met, breached}}], targets: [{target, period,
        day, days, goal, value_goal, has_value, by_day, value_by_day,
        forecast, value_forecast}], decided: [[policy, team, period, n]],
        levels: [...], points: {team: n}}``.

        ``decided`` counts the clocks decided (met or breached) per policy,
        team label and period in the period cells these partitions still
        hold (the current period and the one before): how many decisions a
        period had, for a level whose last period was not judged.

        ``today`` counts each lead's last decided cycle of the policy when it
        ended today (local day of the policy's ``period_timezone``): a met
        clock at its stop, a breached one at its deadline, as periods count
        them. A lead whose earlier cycle was also decided today counts once,
        and a breach corrected later stays a breach here (the correction is
        a record of its own). Cost: one pass over the leads this worker
        holds, in slices of ``SLICE`` with a yield in between, at most once
        per ``TODAY_TTL_US`` (the counts may be that old)."""
        e = self.engine
        now = e.wall_us()
        today = await self._today_counts(now)
        gauges: dict[str, dict[str, int]] = {name: {"open": 0, "at_risk": 0, "paused": 0} for name in today}
        for rt in e.runtimes.values():
            for kind, counter in (("open", rt.open), ("at_risk", rt.at_risk), ("paused", rt.paused)):
                for (policy, _), n in counter.items():
                    if policy in gauges:
                        gauges[policy][kind] += n
        policies = [{"policy": p.name, "objective": p.objective, **gauges[p.name],
                     "today": dict(zip(("day", "met", "breached"), today[p.name], strict=True))}
                    for p in self.policies.policies]
        targets = []
        for st in e.targets.status(e.runtimes.values(), now):
            t = st.target
            p = period_of(now, t.period, t.timezone)
            pace = (p.end_us - p.start_us) / max(now - p.start_us, DAY_US)  # as TargetBook's forecast
            targets.append({"target": t.name, "period": st.period, "day": st.day, "days": st.days, "goal": t.goal,
                            "value_goal": t.value_goal, "has_value": t.value_by is not None,
                            "by_day": list(st.by_day), "value_by_day": list(st.value_by_day),
                            "forecast": st.forecast, "value_forecast": st.value * pace})
        decided: dict[tuple[str, str, str], int] = {}
        for rt in e.runtimes.values():
            for (policy, team, label, _), (met, breached) in rt.period_cells.items():
                decided[policy, team, label] = decided.get((policy, team, label), 0) + int(met) + int(breached)
        share = self.ledger()
        return {"as_of": format_timestamp_us(now), "partitions": sorted(e.runtimes), "policies": policies,
                "targets": targets, "decided": [[*k, n] for k, n in sorted(decided.items())],
                "levels": share.levels, "points": share.points}

    async def _today_counts(self, now: int) -> dict[str, tuple[str, int, int]]:
        """{policy: (day, met, breached)} as of ``now``, counted again once
        ``TODAY_TTL_US`` old, when a policy's day changed or the worker's
        partitions did; concurrent callers share one pass."""
        async with self._today_lock:
            days = {p.name: day_bounds(now, p.period_timezone) for p in self.policies.policies}
            owned = tuple(sorted(self.engine.runtimes))
            cached = self._today
            if cached is not None and now - cached[0] < TODAY_TTL_US and cached[1] == owned and \
                    all(cached[2].get(name, ("",))[0] == b[0] for name, b in days.items()):
                return cached[2]
            met = dict.fromkeys(days, 0)
            breached = dict.fromkeys(days, 0)
            keys = list(self.engine.store)  # a snapshot of the ids: the table changes while we yield
            for i in range(0, len(keys), SLICE):
                self._count_today(keys[i:i + SLICE], days, met, breached)
                await asyncio.sleep(0)
            counts = {name: (b[0], met[name], breached[name]) for name, b in days.items()}
            self._today = (now, owned, counts)
            return counts

    def _count_today(self, keys: Iterable[str], days: dict[str, tuple[str, int, int]], met: dict[str, int],
                     breached: dict[str, int]) -> None:
        e = self.engine
        store, runtimes = e.store, e.runtimes
        for lead_id in keys:
            entry = store.get(lead_id)
            if entry is None or entry.partition not in runtimes:
                continue
            for name, c in entry.state.clocks.items():
                if c.last_outcome is None or name not in days:
                    continue
                _, start, end = days[name]
                if start <= c.last_end < end:
                    if c.last_outcome == "met":
                        met[name] += 1
                    else:
                        breached[name] += 1

    def merge(self, parts: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        """Every worker's part (``(url, local answer)``, this worker's first)
        as one answer: gauges and today's counts, deliveries by day and
        forecasts summed; a level kept by two workers for a moment (a
        rebalance) shows its highest strikes; points summed per team.

        Shape: ``{as_of, policies: [{policy, label, description, calendar,
        goal_seconds, objective, open, at_risk, paused, today: {day, met,
        breached, decided, ratio}}], targets: [{target, label, description, period,
        day, days, goal, value_goal, delivered, value_delivered, goal_line,
        cumulative, by_day, value_by_day, forecast, value_forecast}],
        levels: [{kind, name, label, team, strikes, review_after,
        min_decisions, under_review, last_met, last_achieved, last_period,
        last_judged, last_decided}], leaderboard: [{team, points}],
        partitions, complete, workers}``. ``label`` is what a person reads
        (``labelled``); ``calendar`` names a policy's business-hours
        calendar (None: 24x7, and for a policy this worker's file lacks),
        whose clocks count business time, and ``goal_seconds`` is its goal
        in business seconds (nominal for a goal in business days). ``cumulative`` is delivered by the end of each day
        of the period through today; ``value_*`` are None for a target
        without ``value``. Levels come under review first, then by
        strikes; the leaderboard by points.

        ``last_judged`` is False for a policy's period with fewer decisions
        than ``min_decisions`` (None for a part from a worker that does not
        say); ``last_decided`` is how many decisions the group's period
        cells hold for the last period: the ledger's own count unless a
        decision arrived after the period was judged. None for a target,
        once the cells of that period are gone, and for a period not judged
        whose cells now hold ``min_decisions`` or more (late decisions: the
        count it was judged on is not known here)."""
        answers = [a for _, a in parts]
        policies: dict[str, dict[str, Any]] = {}
        targets: dict[str, dict[str, Any]] = {}
        levels: dict[tuple[str, str, str], dict[str, Any]] = {}
        points: dict[str, float] = {}
        period_decided: dict[tuple[str, str, str], int] = {}
        for a in answers:
            for policy, team, label, n in a.get("decided", ()):  # (absent from an older worker's part)
                period_decided[policy, team, label] = period_decided.get((policy, team, label), 0) + n
            for p in a["policies"]:
                have = policies.get(p["policy"])
                if have is None:
                    policies[p["policy"]] = {**p, "today": dict(p["today"])}
                    continue
                for k in ("open", "at_risk", "paused"):
                    have[k] += p[k]
                if p["today"]["day"] > have["today"]["day"]:  # a peer already past midnight
                    have["today"] = dict(p["today"])
                elif p["today"]["day"] == have["today"]["day"]:
                    have["today"]["met"] += p["today"]["met"]
                    have["today"]["breached"] += p["today"]["breached"]
            for t in a["targets"]:
                have = targets.get(t["target"])
                if have is None or t["period"] > have["period"]:  # labels of one kind sort by time
                    targets[t["target"]] = {**t, "by_day": list(t["by_day"]), "value_by_day": list(t["value_by_day"])}
                elif t["period"] == have["period"]:
                    have["day"] = max(have["day"], t["day"])
                    have["by_day"] = [x + y for x, y in zip(have["by_day"], t["by_day"], strict=True)]
                    have["value_by_day"] = [x + y for x, y in zip(have["value_by_day"], t["value_by_day"], strict=True)]
                    have["forecast"] += t["forecast"]
                    have["value_forecast"] += t["value_forecast"]
            for lv in a["levels"]:
                key = (lv["kind"], lv["name"], lv["team"])
                if key not in levels or lv["strikes"] > levels[key]["strikes"]:
                    levels[key] = dict(lv)
            for team, n in a["points"].items():
                points[team] = points.get(team, 0.0) + n
        order = {name: i for i, name in enumerate(self.policies.names)}
        out_policies = []
        for p in sorted(policies.values(), key=lambda p: order.get(p["policy"], len(order))):
            today = p["today"]
            decided = today["met"] + today["breached"]
            today.update(decided=decided, ratio=today["met"] / decided if decided else None)
            try:
                known: Policy | None = self.policies.by_name(p["policy"])
            except KeyError:  # a peer's policies file has it, this worker's not (a rollout)
                known = None
            out_policies.append({**p, **labelled(p["policy"], "" if known is None else known.description),
                                 "calendar": None if known is None or known.calendar.always_open
                                 else known.calendar.name,
                                 "goal_seconds": None if known is None else known.goal_seconds})
        out_targets = []
        for tg in self.policies.targets:
            t = targets.get(tg.name)
            if t is None:
                continue
            delivered = sum(t["by_day"])
            cumulative, running = [], 0.0
            for n in t["by_day"][:t["day"]]:
                running += n
                cumulative.append(running)
            has_value = t.pop("has_value")
            out_targets.append({**t, **labelled(tg.name, tg.description), "delivered": delivered,
                                "value_delivered": sum(t["value_by_day"]) if has_value else None,
                                "value_forecast": t["value_forecast"] if has_value else None,
                                "goal_line": t["goal"] * t["day"] / t["days"], "cumulative": cumulative})
        out_levels = []
        for lv in levels.values():
            try:
                spec = (self.policies.by_name(lv["name"]) if lv["kind"] == POLICY
                        else self.policies.target(lv["name"]))
            except KeyError:
                continue  # no longer in the policies file
            period, judged = lv.get("last_period"), lv.get("last_judged")
            min_decisions = spec.min_decisions if isinstance(spec, Policy) else None
            decisions: int | None = None
            if min_decisions is not None and period is not None:
                decisions = period_decided.get((lv["name"], lv["team"], period))
                if judged is False and decisions is not None and decisions >= min_decisions:
                    decisions = None  # counted after the period was judged: not the count it was judged on
            out_levels.append({**lv, "label": labelled(spec.name, spec.description)["label"],
                               "review_after": spec.review_after, "min_decisions": min_decisions,
                               "last_period": period, "last_judged": judged, "last_decided": decisions})
        out_levels.sort(key=lambda lv: (not lv["under_review"], -lv["strikes"], lv["kind"], lv["name"], lv["team"]))
        covered = sorted({p for a in answers for p in a.get("partitions", ())})
        n = max([p + 1 for m in self.members() for p in m.partitions] + [self.settings.partitions])
        return {
            "as_of": answers[0]["as_of"],
            "policies": out_policies,
            "targets": out_targets,
            "levels": out_levels,
            "leaderboard": [{"team": team, "points": pts}
                            for team, pts in sorted(points.items(), key=lambda kv: (-kv[1], kv[0]))],
            "partitions": covered,
            "complete": covered == list(range(n)),
            "workers": [{"url": url, "partitions": a.get("partitions", [])} for url, a in parts],
        }

def aiohttp_routes(app: web.Application, screen: Screen) -> None:
    """Add the screen's routes to a bare aiohttp application (tests)."""

    async def page(request: web.Request) -> web.Response:
        return screen.file("screen.html")

    async def asset(request: web.Request) -> web.Response:
        return screen.file(request.match_info["name"])

    app.router.add_get("/", page)
    app.router.add_get("/screen/{name}", asset)
    app.router.add_get(PATH, screen.handle)

    async def closing(app: web.Application) -> None:
        await screen.close()

    app.on_cleanup.append(closing)


def mount(app: Any, engine: Engine, registry: CollectorRegistry) -> Screen:
    """Serve the team screen from a Faust app: ``/`` (the page; it replaces
    Faust's ``{"status": "OK"}`` index), ``/screen/<file>`` and
    ``/api/screen``. Registered before the web server starts, so these
    routes come first.

    The ledger is read from its table (``LEDGER_TABLE``), for the report
    partitions this worker owns as an active (a standby copy holds other
    workers' levels): it holds what the ledger's metrics in ``registry``
    leave out (``ledger_reader``)."""
    settings = engine.settings

    def owned() -> set[int]:
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == settings.reports_topic}

    ledger = ledger_reader(app.tables[LEDGER_TABLE], owned, engine.policies)
    screen = Screen(engine, ledger, settings, str(app.conf.canonical_url),
                    lambda: faust_members(app, settings.input_topic))

    @app.on_before_shutdown.connect
    async def close_screen(sender: Any, **kwargs: Any) -> None:
        await screen.close()

    @app.page("/")
    async def screen_page(web: Any, request: Any) -> Any:
        return screen.file("screen.html")

    @app.page("/screen/{name}")
    async def screen_file(web: Any, request: Any, name: str) -> Any:
        return screen.file(name)

    @app.page(PATH)
    async def api_screen(web: Any, request: Any) -> Any:
        return await screen.handle(request)

    return screen


# -- OpenAPI ---------------------------------------------------------------------------------


def openapi_paths() -> tuple[dict[str, Any], dict[str, Any]]:
    """``/api/screen`` in OpenAPI 3.1: (paths, component schemas), to add to
    ``streams.api.openapi_document()`` (see ``openapi_with_screen``)."""
    num = {"type": "number"}
    nnum = {"type": ["number", "null"]}
    ints = {"type": "array", "items": {"type": "integer"}}
    nums = {"type": "array", "items": num}

    def obj(props: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "properties": props, "required": list(props)}

    labels = {"label": {"type": "string", "description": "what a person reads: the description, else the name's "
                                                         "words (underscores as spaces)"},
              "description": {"type": "string", "description": "from the policies file; empty without one"}}
    policy = obj({
        "policy": {"type": "string"}, **labels,
        "calendar": {"type": ["string", "null"],
                     "description": "the business-hours calendar its clocks count in; null: 24x7 (wall-clock time)"},
        "goal_seconds": {**nnum, "description": "the goal in business seconds (nominal for a goal in business days)"},
        "objective": num,
        "open": {"type": "integer", "description": "clocks open now"},
        "at_risk": {"type": "integer", "description": "open clocks past their at-risk threshold"},
        "paused": {"type": "integer"},
        "today": obj({"day": {"type": "string", "format": "date",
                              "description": "today in the policy's period_timezone"},
                      "met": {"type": "integer"}, "breached": {"type": "integer"}, "decided": {"type": "integer"},
                      "ratio": nnum}),
    })
    target = obj({
        "target": {"type": "string"}, **labels, "period": {"type": "string"},
        "day": {"type": "integer", "description": "today's day of the period, 1 on its first"},
        "days": {"type": "integer"}, "goal": {"type": "integer"}, "value_goal": nnum,
        "delivered": num, "value_delivered": nnum,
        "goal_line": {**num, "description": "goal × day ÷ days"},
        "cumulative": {**nums, "description": "delivered by the end of each day through today"},
        "by_day": {**nums, "description": "delivered on each day of the period"},
        "value_by_day": nums, "forecast": num, "value_forecast": nnum,
    })
    level = obj({
        "kind": {"type": "string", "enum": ["policy", "target"]}, "name": {"type": "string"},
        "label": labels["label"],
        "team": {"type": "string", "description": "team label; empty for a target"},
        "strikes": {"type": "integer"}, "review_after": {"type": "integer"},
        "min_decisions": {"type": ["integer", "null"], "description": "a policy's period with fewer decisions is "
                                                                       "not judged; null for a target"},
        "under_review": {"type": ["boolean", "null"]}, "last_met": {"type": ["boolean", "null"]},
        "last_achieved": nnum,
        "last_period": {"type": ["string", "null"], "description": "the period of the last verdict"},
        "last_judged": {"type": ["boolean", "null"],
                        "description": "false: the last period had too few decisions to be judged (the ledger "
                                       "counts it as met, with no points); null before a first verdict"},
        "last_decided": {"type": ["integer", "null"],
                         "description": "decisions in the last period, as the group's period cells hold them "
                                        "(null for a target, or once they are gone)"},
    })
    ref = "#/components/schemas/"
    screen = obj({
        "as_of": {"type": "string", "format": "date-time"},
        "policies": {"type": "array", "items": {"$ref": ref + "ScreenPolicy"}},
        "targets": {"type": "array", "items": {"$ref": ref + "ScreenTarget"}},
        "levels": {"type": "array", "items": {"$ref": ref + "ScreenLevel"}},
        "leaderboard": {"type": "array", "items": obj({"team": {"type": "string"}, "points": num})},
        "partitions": ints, "complete": {"type": "boolean"},
        "workers": {"type": "array", "items": obj({"url": {"type": "string"}, "partitions": ints})},
    })
    err = {"content": {"application/json": {"schema": {"$ref": ref + "Error"}}}}
    path = {PATH: {"get": {
        "summary": "what the team screen shows beyond compliance and the queue: gauges and today's decisions per "
                   "policy, the targets' waterfall, strikes and the leaderboard, over every worker",
        "security": [{"bearer": []}],
        "parameters": [{"name": "scope", "in": "query", "required": False,
                        "description": "all (default): every worker's partitions, in this schema; local: only the "
                                       "partitions of the worker asked, in the raw form workers exchange "
                                       "(per-worker sums, before merging)",
                        "schema": {"type": "string", "enum": ["all", "local"]}}],
        "responses": {
            "200": {"description": "the screen's numbers", "content": {"application/json": {
                "schema": {"$ref": ref + "Screen"}}}},
            "400": {"description": "a query parameter is wrong", **err},
            "401": {"description": "missing or wrong bearer token (LEADSLA_API_TOKEN set)", **err},
            "502": {"description": "a worker could not be reached or answered wrongly", **err},
            "503": {"description": "a worker is recovering its state (start-up or rebalance)", **err},
            "504": {"description": "a worker did not answer in time (LEADSLA_PEER_TIMEOUT)", **err},
        },
    }}}
    schemas = {"Screen": screen, "ScreenPolicy": policy, "ScreenTarget": target, "ScreenLevel": level}
    return path, schemas


def openapi_with_screen() -> dict[str, Any]:
    """The query API's OpenAPI document with ``/api/screen`` added."""
    doc = openapi_document()
    paths, schemas = openapi_paths()
    doc["paths"] = {**doc["paths"], **paths}
    doc["components"]["schemas"] = {**doc["components"]["schemas"], **schemas}
    return doc


def with_screen_paths(response: web.Response) -> web.Response:
    """The query API's ``/openapi.json`` answer with ``/api/screen`` added
    (the hook ``streams.app`` puts around ``Api.openapi``); any answer that
    is not a 200 JSON document passes unchanged."""
    if response.status != 200 or not isinstance(response.body, bytes):
        return response
    try:
        doc = json.loads(response.body)
    except ValueError:
        return response
    paths, schemas = openapi_paths()
    doc["paths"] = {**doc.get("paths", {}), **paths}
    doc.setdefault("components", {})["schemas"] = {**doc["components"].get("schemas", {}), **schemas}
    return web.json_response(doc)
