"""leadsla publish, outcomes and dead-letters as real commands, on the
embedded broker with a real worker: a JSON-lines file with bad lines is
published (the bad ones reported by line number, not sent), the worker
decides the clocks, the decisions and a dead letter are read back, and a
--follow reader picks up a new decision and ends cleanly on Ctrl-C."""

from __future__ import annotations

import base64
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from .conftest import FIRST_TOUCH, wait_for
from .kafka import create_topics, iso, publish, read_all


def leadsla(s: Any, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "leadsla", *args], env=s.command_env(), input=stdin and stdin.decode(),
                          capture_output=True, text=True, timeout=60)


def line(**fields: Any) -> bytes:
    return orjson.dumps(fields)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in text.splitlines() if x.strip()]


def test_publish_decide_and_read_back(setup, tmp_path: Path) -> None:
    s = setup(FIRST_TOUCH)
    create_topics(s.broker, list(s.topics.values()))
    w = s.worker().start()
    now = datetime.now(UTC).replace(microsecond=0)
    quick_handoff = now - timedelta(minutes=30)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join([
        line(event_id="q-h", lead_id="quick", type="lead.handed_off", occurred_at=iso(quick_handoff), team="emea"),
        line(event_id="q-a", lead_id="quick", type="lead.contact_attempt",
             occurred_at=iso(quick_handoff + timedelta(minutes=12))),
        b"{\"event_id\": \"broken\"",                                                         # line 3
        line(event_id="s-h", lead_id="slow", type="lead.handed_off", occurred_at=iso(now - timedelta(hours=3))),
        line(event_id="x", lead_id="slow", type="lead.teleported", occurred_at=iso(now)),      # line 5
        b"",
        line(event_id="f", lead_id="slow", type="lead.created", occurred_at=iso(now + timedelta(days=2))),  # 7
    ]) + b"\n")

    pub = leadsla(s, "publish", str(events))
    assert pub.returncode == 1, pub.stderr
    assert pub.stderr.splitlines() == [
        "leadsla publish: line 3: malformed: not JSON: unexpected end of data: line 1 column 22 (char 21)",
        "leadsla publish: line 5: unknown_type: unknown event type 'lead.teleported'",
        f"leadsla publish: line 7: invalid: occurred_at {iso(now + timedelta(days=2))} is in the future",
        f"leadsla publish: sent 3 events to {s.topics['input']}, rejected 3 lines "
        "(1 invalid, 1 malformed, 1 unknown_type)",
    ]
    sent = read_all(s.broker, s.topics["input"], 3, timeout=20)
    assert sorted((r.key, orjson.loads(r.value)["event_id"]) for r in sent) == [
        (b"quick", "q-a"), (b"quick", "q-h"), (b"slow", "s-h")]

    # A record no publish would send, written by another producer: the worker dead-letters it.
    publish(s.broker, s.topics["input"], [(b"mystery", b"\xff\xfe not json")])

    def outcomes(*args: str) -> list[dict[str, Any]]:
        done = leadsla(s, "outcomes", *args)
        assert done.returncode == 0, done.stderr
        return json_lines(done.stdout)

    got = wait_for(lambda: len(outcomes()) >= 2 and outcomes(), 40, "two decisions on sla-outcomes")
    by_lead = {o["lead_id"]: o for o in got}
    assert len(got) == 2 and set(by_lead) == {"quick", "slow"}
    assert by_lead["quick"]["outcome"] == "met" and by_lead["quick"]["elapsed_seconds"] == 720.0
    assert by_lead["quick"]["started_at"] == iso(quick_handoff) and by_lead["quick"]["team"] == "emea"
    assert by_lead["slow"]["outcome"] == "breached" and by_lead["slow"]["policy"] == "first_touch"
    assert outcomes("--outcome", "breached") == [by_lead["slow"]]
    assert outcomes("--lead", "quick", "--policy", "first_touch") == [by_lead["quick"]]
    assert outcomes("--policy", "other") == []
    table = leadsla(s, "outcomes", "--table", "--lead", "quick").stdout.splitlines()
    assert table[0].split()[:4] == ["DECIDED_AT", "POLICY", "OUTCOME", "LEAD"]
    assert table[1].split()[1:5] == ["first_touch", "met", "quick", "emea"] and table[1].endswith("12m")
    assert len(table) == 2

    letters = leadsla(s, "dead-letters")
    assert letters.returncode == 0, letters.stderr
    (dl,) = json_lines(letters.stdout)
    assert (dl["reason"], dl["key"], dl["key_encoding"], dl["value_encoding"]) == ("malformed", "mystery", "utf-8", "base64")
    assert base64.b64decode(dl["value"]) == b"\xff\xfe not json"
    assert dl["error"].startswith("not JSON")
    assert json_lines(leadsla(s, "dead-letters", "--reason", "invalid").stdout) == []

    # --follow: what is there, then a new decision as it is made, then Ctrl-C.
    out, errors = tmp_path / "follow.out", tmp_path / "follow.err"
    with open(out, "wb") as sink, open(errors, "wb") as err_sink:
        follow = subprocess.Popen([sys.executable, "-m", "leadsla", "outcomes", "--follow", "--outcome", "met"],
                                  env=s.command_env(), stdout=sink, stderr=err_sink)
    try:
        wait_for(lambda: len(json_lines(out.read_text())) == 1, 30, "--follow prints the existing met outcome")
        later = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
        new = leadsla(s, "publish", "-", stdin=b"\n".join([
            line(event_id="n-h", lead_id="new", type="lead.handed_off", occurred_at=iso(later)),
            line(event_id="n-c", lead_id="new", type="lead.connected", occurred_at=iso(later + timedelta(seconds=90))),
        ]))
        assert new.returncode == 0, new.stderr
        assert new.stderr == f"leadsla publish: sent 2 events to {s.topics['input']}, rejected 0 lines\n"
        seen = wait_for(lambda: len(json_lines(out.read_text())) == 2 and json_lines(out.read_text()), 30,
                        "--follow prints the new decision")
        assert seen[1]["lead_id"] == "new" and seen[1]["elapsed_seconds"] == 90.0
        time.sleep(0.5)
        follow.send_signal(signal.SIGINT)
        code = follow.wait(timeout=15)
        err = errors.read_text()
        assert code == 0, err
        assert "Traceback" not in err and err == ""
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    assert w.proc is not None and w.proc.poll() is None  # reading disturbed nothing


def test_publish_from_a_pipe_sends_each_line_as_it_comes_and_stops_cleanly(setup) -> None:
    """``leadsla publish -`` reading a pipe that stays open: a line is on the
    topic before the input ends, and SIGTERM ends the command with its
    summary (exit 130), what it had read delivered."""
    s = setup(FIRST_TOUCH)
    create_topics(s.broker, list(s.topics.values()))
    proc = subprocess.Popen([sys.executable, "-m", "leadsla", "publish", "-"], env=s.command_env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None
        proc.stdin.write(line(event_id="p-1", lead_id="piped", type="lead.handed_off",
                              occurred_at=iso(datetime.now(UTC))) + b"\n")
        proc.stdin.flush()
        recs = read_all(s.broker, s.topics["input"], expect=1, timeout=20)
        assert [r.key for r in recs] == [b"piped"]  # sent while the pipe is still open
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert err.decode().strip().splitlines() == [
        f"leadsla publish: sent 1 event to {s.topics['input']}, rejected 0 lines; interrupted: the input after "
        "that was not read"]
