"""What a person sees: ``leadsla run`` on a terminal (a pseudo-terminal)
prints status lines with the worker's own figures and a summary after
Ctrl-C; with its output in a file it writes plain log lines, without
Faust's spinner or any escape code. Both workers run at once, each on its
own topics and group, against the session's embedded broker."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .conftest import wait_for
from .kafka import create_topics, event, iso, publish

POLICIES = """
policies:
  - name: quick
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected]
    goal: 3s
"""


class Terminal:
    """``leadsla run`` with a pseudo-terminal as stdin, stdout and stderr;
    everything it writes is collected in ``output``."""

    def __init__(self, env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([sys.executable, "-m", "leadsla", "run"], env=env, stdin=slave, stdout=slave,
                                     stderr=slave, start_new_session=True)
        os.close(slave)
        self.output = bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            self.output.extend(chunk)

    def text(self) -> str:
        return bytes(self.output).decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.reader.join(timeout=5)
        os.close(self.master)


def _publish_traffic(broker: str, topic: str) -> None:
    now = datetime.now(UTC)
    publish(broker, topic, [
        event(event_id="h1", lead_id="silent", type="lead.handed_off", occurred_at=iso(now), team="emea"),
        event(event_id="h2", lead_id="quick", type="lead.handed_off", occurred_at=iso(now), team="emea"),
        event(event_id="a2", lead_id="quick", type="lead.contact_attempt", occurred_at=iso(now + timedelta(seconds=1))),
        (b"bad", b"{not json"),
    ])


def _ready(port: int) -> bool:
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
            return bool(json.loads(r.read())["ready"])
    except (OSError, ValueError):
        return False


def test_a_terminal_gets_status_lines_and_a_summary_and_a_file_gets_plain_lines(setup, tmp_path: Path) -> None:
    on_tty, in_file = setup(POLICIES), setup(POLICIES)
    for s in (on_tty, in_file):
        create_topics(s.broker, list(s.topics.values()))
    tty_worker, file_worker = on_tty.worker(), in_file.worker()  # their settings; started here
    term = Terminal(tty_worker.env)
    log_path = tmp_path / "plain.log"
    with open(log_path, "wb") as out:
        plain = subprocess.Popen([sys.executable, "-m", "leadsla", "run"], env=file_worker.env, stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=subprocess.STDOUT)
    try:
        for proc, port in ((term.proc, tty_worker.web_port), (plain, file_worker.web_port)):
            wait_for(lambda p=proc, w=port: p.poll() is None and _ready(w), 90, f"worker ready on :{port}\n{term.text()}")
        _publish_traffic(on_tty.broker, on_tty.topics["input"])
        _publish_traffic(in_file.broker, in_file.topics["input"])

        # A status line with the worker's own figures: one met, one breached
        # by the timer, the dead letter; every 5 s.
        status = re.compile(r"^\d\d:\d\d:\d\d [0-9.,]+ events/s \| 3 events \| lag 0 \| dead letters 1 \| "
                            r"quick 1 met, 1 breached, 0 open\r?$", re.M)
        wait_for(lambda: status.search(term.text()), 40, f"a status line with the figures\n{term.text()[-3000:]}")
        banner = term.text()
        assert "leadsla: monitor on " in banner
        assert "A status line follows every few seconds." in banner
        assert f"resuming {on_tty.topics['input']} at " in banner  # the real input topic, not lead-events

        for proc in (term.proc, plain):
            proc.send_signal(signal.SIGINT)
        assert term.proc.wait(timeout=30) == 0
        assert plain.wait(timeout=30) == 0
        term.reader.join(timeout=5)

        text = term.text()
        lines = [line.rstrip("\r") for line in text.splitlines()]
        (head,) = [i for i, line in enumerate(lines) if line.startswith("leadsla: stopped after ")]
        assert re.fullmatch(r"leadsla: stopped after \d+s: 3 events accepted \(0 duplicates\), 1 dead letters",
                            lines[head])
        assert lines[head + 1].split() == ["policy", "met", "breached", "open"]
        assert lines[head + 2].split() == ["quick", "1", "1", "0"]
        # Faust's spinner (cursor hide/show and backspaces) is off.
        assert "\x1b[?25" not in text and "\b" not in text

        raw = log_path.read_bytes()
        assert b"\x1b" not in raw and b"\b" not in raw and b"\r" not in raw
        plain_text = raw.decode()
        assert "A status line follows" not in plain_text
        assert re.search(r" INFO leadsla: stopped after \d+s: 3 events accepted \(0 duplicates\), 1 dead letters; "
                         r"quick 1 met, 1 breached, 0 open$", plain_text, re.M), plain_text[-3000:]
    finally:
        term.stop()
        if plain.poll() is None:
            plain.kill()
            plain.wait(timeout=10)
