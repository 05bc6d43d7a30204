"""The query API on a real group: ``leadsla run --workers 2`` with a token.
Either worker answers for a lead the other owns, the queue merges both, a
fresh handoff is visible at once as pending, the token is enforced (and
passed between the workers), /metrics and /ready stay open, and a worker
that would serve beyond loopback without a token refuses to start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .conftest import FIRST_TOUCH, metric_sum, wait_for
from .kafka import create_topics, event, iso, publish

TOKEN = "integration-t0ken"
ROOT = Path(__file__).resolve().parents[2]


def get(port: int, path: str, token: str | None = TOKEN) -> tuple[int, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            body = r.read()
            return r.status, json.loads(body) if path != "/metrics" else body
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_any_worker_answers_for_the_whole_group(setup) -> None:
    s = setup(FIRST_TOUCH)
    create_topics(s.broker, list(s.topics.values()))
    pair = s.worker("--workers", "2", LEADSLA_API_TOKEN=TOKEN, LEADSLA_ALLOWED_LATENESS="60s").start()
    ports = (pair.web_port, pair.web_port + 1)

    def owned() -> list[list[int]] | None:
        try:
            parts = [get(p, "/ready", token=None)[1]["partitions"] for p in ports]
        except (urllib.error.URLError, OSError, KeyError):
            return None
        return parts if all(parts) and sorted(sum(parts, [])) == [0, 1, 2, 3] else None

    parts = wait_for(owned, 90, "the partitions split between the two workers")
    now = datetime.now(UTC)
    past = now - timedelta(minutes=20)
    records = []
    for i in range(16):
        records.append(event(event_id=f"h-{i}", lead_id=f"api-{i}", type="lead.handed_off", occurred_at=iso(past),
                             team="emea" if i % 2 else "apac", rep=f"r{i % 3}"))
    records.append(event(event_id="h-fresh", lead_id="fresh", type="lead.handed_off", occurred_at=iso(now),
                         team="emea"))
    publish(s.broker, s.topics["input"], records)

    def queue() -> Any:
        # Handoffs show as pending from the moment they arrive, and run once
        # their partition's watermark has passed them (the next timer pass).
        status, q = get(ports[0], "/api/queue?limit=50")
        if status != 200 or q["total"] != 17:
            return None
        return q if all(r["state"] == "running" for r in q["clocks"] if r["lead_id"] != "fresh") else None

    q = wait_for(queue, 60, "the merged queue of both workers")
    assert q["complete"] is True and q["partitions"] == [0, 1, 2, 3]
    assert {w["url"] for w in q["workers"]} == {f"http://127.0.0.1:{p}" for p in ports}
    assert [r["lead_id"] for r in q["clocks"]][-1] == "fresh"  # the latest deadline
    assert {r["partition"] for r in q["clocks"]} == {0, 1, 2, 3}
    # Each worker's own part adds up to the whole.
    local = [get(p, "/api/queue?limit=50&scope=local")[1]["total"] for p in ports]
    assert min(local) > 0 and sum(local) == 17

    # A lead owned by the second worker, asked of the first, and the other way round.
    where = {r["lead_id"]: r["partition"] for r in q["clocks"]}
    for asked, owner in ((0, 1), (1, 0)):
        lead = next(lead for lead, p in where.items() if p in parts[owner] and lead != "fresh")
        status, a = get(ports[asked], f"/api/leads/{lead}")
        assert status == 200, a
        assert a["worker"] == f"http://127.0.0.1:{ports[owner]}"
        c = {x["policy"]: x for x in a["clocks"]}["first_touch"]
        assert c["state"] == "running" and 19 * 60 <= c["elapsed_seconds"] <= 30 * 60
    status, a = get(ports[0], "/api/leads/fresh")
    assert status == 200 and a["clocks"][0]["state"] == "pending"  # not invisible for the allowed lateness
    assert a["pending_events"][0]["type"] == "lead.handed_off"
    status, a = get(ports[1], "/api/leads/no-such-lead")
    assert (status, a["error"]) == (404, "no lead no-such-lead known")

    # The token: required for lead ids, never for /metrics and /ready.
    assert get(ports[0], "/api/leads/fresh", token=None)[0] == 401
    assert get(ports[1], "/api/queue", token="wrong")[0] == 401
    assert get(ports[0], "/leads/fresh", token=None)[0] == 401
    assert get(ports[0], "/ready", token=None)[0] == 200
    assert get(ports[0], "/metrics", token=None)[0] == 200
    # /metrics needs no token either, and the two workers' gauges add up to the group's clocks.
    assert sum(metric_sum(pair.metrics(p), "leadsla_sla_open_clocks") for p in ports) == 17
    status, c = get(ports[1], "/api/compliance?policy=first_touch")
    assert status == 200 and sum(r["open"] for r in c["policies"]) == 17

    # The command line, against either worker.
    env = {**os.environ, "LEADSLA_API_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "leadsla", "queue", "--team", "emea", "--api",
                          f"http://127.0.0.1:{ports[1]}"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "9 of 9 open clocks" in out.stdout and "fresh" in out.stdout

    # A request aiohttp cannot parse (a lead id longer than its 8 KiB request
    # line) is refused, and logged in one line without the id.
    long_id = "secret-lead-" + "x" * 9000
    try:
        status = get(ports[0], f"/api/leads/{long_id}")[0]
    except (urllib.error.URLError, OSError, ValueError):
        status = None
    assert status in (400, None)
    logged = "\n".join(log.read_text(errors="replace") for log in pair.logs if log.exists())
    assert "secret-lead-" not in logged
    assert "rejected an HTTP request that could not be parsed (LineTooLong)" in logged


def test_a_worker_beyond_loopback_without_a_token_refuses_to_start(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSLA_")}
    env.update(PYTHONPATH=str(ROOT), LEADSLA_DATA_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "leadsla", "run", "--web-host", "0.0.0.0", "--workers", "2"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "LEADSLA_API_TOKEN" in lines[0] and "0.0.0.0" in lines[0]
    assert not any(tmp_path.iterdir())  # nothing was started
