"""``leadsla lead`` and ``leadsla queue``: the query API from the command
line. Any worker of the group answers for all of them (see streams.api), so
one URL is enough: ``--api``, ``LEADSLA_API_URL``, default
http://127.0.0.1:6066. The token comes from ``LEADSLA_API_TOKEN``."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from leadsla.streams.console import clock_duration

DEFAULT_API = "http://127.0.0.1:6066"
TIMEOUT_S = 15.0  # a worker may itself wait for its peers (LEADSLA_PEER_TIMEOUT, 5 s)


class ApiError(Exception):
    """The API could not answer; the message is one line for the user."""


def api_base(arg: str | None) -> str:
    """The API's base URL: ``--api``, else ``LEADSLA_API_URL``, else the default."""
    base = (arg or os.environ.get("LEADSLA_API_URL") or DEFAULT_API).strip().rstrip("/")
    parts = urllib.parse.urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(f"--api / LEADSLA_API_URL: expected http://HOST:PORT, got {base!r}")
    return base


def get(base: str, path: str, params: dict[str, str | None] | None = None, timeout: float = TIMEOUT_S) -> Any:
    """GET ``path`` from the API and return its JSON answer. Raises ApiError
    with the API's own message (404 "no lead X known", 401 …), or saying
    that no worker answers at ``base``."""
    query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None})
    url = base + path + (f"?{query}" if query else "")
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    token = os.environ.get("LEADSLA_API_TOKEN", "").strip()
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]
        except (ValueError, KeyError, TypeError):
            message = f"the API at {base} answered {exc.code} {exc.reason}"
        if exc.code == 401 and not token:
            message += "; set LEADSLA_API_TOKEN"
        raise ApiError(message) from None
    except TimeoutError:
        raise ApiError(f"the worker at {base} did not answer within {timeout:g} s") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ApiError(f"no worker answers at {base} ({reason}); is leadsla run running? "
                       "(--api / LEADSLA_API_URL)") from None
    except ValueError:
        raise ApiError(f"the answer from {base} is not JSON: is it a leadsla worker?") from None


def lead(base: str, lead_id: str) -> dict[str, Any]:
    """``GET /api/leads/{lead_id}``."""
    return get(base, "/api/leads/" + urllib.parse.quote(lead_id, safe=""))  # type: ignore[no-any-return]


def queue(base: str, team: str | None = None, rep: str | None = None, policy: str | None = None,
          limit: int | None = None) -> dict[str, Any]:
    """``GET /api/queue``."""
    params: dict[str, str | None] = {"team": team, "rep": rep, "policy": policy,
                                     "limit": None if limit is None else str(limit)}
    return get(base, "/api/queue", params)  # type: ignore[no-any-return]


def unknown_team(base: str, team: str) -> str | None:
    """Why ``team`` names no team, or None when some worker knows it.

    Asked after a queue filtered by ``team`` came back empty and complete.
    A team is known when ``GET /api/compliance`` (every worker, each
    policy's current period) has a row for it: open clocks or clocks decided
    this period. The message lists the teams with open clocks and a close
    spelling, e.g. ``no team 'emae' on any worker: …; teams with open
    clocks: emea, na_east (did you mean 'emea'?)``. None too when the
    compliance answer is incomplete (a rebalance) or cannot be had: then
    nothing can be said for sure. Raises nothing."""
    import difflib

    try:
        answer = get(base, "/api/compliance")
        rows = [(str(r["team"]), int(r.get("open") or 0)) for r in answer["policies"]]
    except (ApiError, KeyError, TypeError, ValueError):
        return None
    if not answer.get("complete", True):
        return None
    seen = {t for t, _ in rows}
    if team in seen:
        return None
    busy = sorted({t for t, n in rows if n > 0})
    text = (f"no team {printable(team, CELL_MAX)!r} on any worker: no open clocks and none decided this "
            f"period; teams with open clocks: {printable(', '.join(busy), 500) or 'none'}")
    by_fold = {t.casefold(): t for t in sorted(seen)}
    close = difflib.get_close_matches(team.casefold(), list(by_fold), n=1, cutoff=0.6)
    if close:
        text += f" (did you mean {printable(by_fold[close[0]], CELL_MAX)!r}?)"
    return text


# Lead ids, teams and reps come from upstream events: never let one move the
# cursor, colour the terminal or break a line. Control characters become "?".
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
CELL_MAX = 60  # characters of a table cell; a longer value is cut with "…"


def printable(value: object, longest: int | None = None) -> str:
    """``value`` as text safe for a terminal: control characters as ``?``,
    cut to ``longest`` characters (with ``…``) when given."""
    text = _CONTROL.sub("?", str(value))
    if longest is not None and len(text) > longest:
        text = text[: longest - 1] + "…"
    return text


def _table(header: list[str], rows: list[list[str]]) -> str:
    cells = [[printable(x, CELL_MAX) for x in row] for row in rows]
    widths = [max(len(x) for x in col) for col in zip(header, *cells, strict=True)]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)).rstrip()
                     for row in [header, *cells])


def lead_text(a: dict[str, Any]) -> str:
    """``leadsla lead``'s table: one row per policy."""
    owner = a["owner"]
    head = printable(f"lead {a['lead_id']}: team {owner['team'] or '-'}, rep {owner['rep'] or '-'}; "
                     f"partition {a['partition']} on {a.get('worker', '?')}; as of {a['as_of']}")
    rows = []
    for c in a["clocks"]:
        d = c["decision"]
        last = "-" if d is None else f"{d['outcome']} (cycle {d['cycle']}, ended {d['ended_at']})"
        if d is not None and d["awaiting_stop"]:
            last += ", no stop yet"
        state = c["state"] + (" (overdue)" if c["overdue"] else "") + (" at risk" if c["at_risk"] else "")
        rows.append([c["policy"], state, c["started_at"] or "-", c["deadline"] or "-",
                     clock_duration(c["elapsed_seconds"], c.get("calendar")),
                     clock_duration(c["remaining_seconds"], c.get("calendar")), last])
    out = [head, _table(["POLICY", "STATE", "STARTED", "DEADLINE", "ELAPSED", "REMAINING", "LAST DECISION"], rows)]
    for c in a["clocks"]:
        for span in c["paused_spans"]:
            out.append(f"{c['policy']}: paused from {span['from']} to {span['to'] or 'now'}")
    if a["pending_events"]:
        out.append("waiting for the watermark: " + ", ".join(f"{e['type']} at {e['occurred_at']}"
                                                            for e in a["pending_events"]))
    for t in a["too_late"]:
        out.append(f"too late to count: {t['role']} of {t['policy']} at {t['occurred_at']}")
    return "\n".join(out)


def queue_text(a: dict[str, Any]) -> str:
    """``leadsla queue``'s table: the most urgent clocks first."""
    if not a["clocks"]:
        return "no open clocks" + ("" if a.get("complete", True) else
                                   "; some partitions had no owner to answer (a rebalance): try again")
    body = _table(["LEAD", "POLICY", "STATE", "TEAM", "REP", "DEADLINE", "REMAINING", "AT RISK"], [
        [r["lead_id"], r["policy"], r["state"] + (" (overdue)" if r["overdue"] else ""), r["team"] or "-",
         r["rep"] or "-", r["deadline"] or "-", clock_duration(r["remaining_seconds"], r.get("calendar")),
         "yes" if r["at_risk"] else ""]
        for r in a["clocks"]])
    shown = len(a["clocks"])
    foot = f"{shown} of {a['total']} open clocks" + ("" if shown == a["total"] else f" (--limit {a['limit']})")
    if not a.get("complete", True):
        foot += "; some partitions had no owner to answer (a rebalance): try again"
    return f"{body}\n{foot}"
