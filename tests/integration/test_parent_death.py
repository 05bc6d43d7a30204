"""Processes that end together: a ``leadsla broker`` or ``leadsla run
--workers 2`` killed outright (SIGKILL, no clean-up of its own) takes its
embedded broker or its workers along, and the ports are free again for the
next start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from leadsla.streams.broker import port_open

from .conftest import free_port, wait_for


def children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_leadsla_broker_takes_its_broker_along(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSLA_")}
    with open(tmp_path / "broker.log", "wb") as log:
        parent = subprocess.Popen([sys.executable, "-m", "leadsla", "broker", "--listen", listen], env=env,
                                  stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: port_open(listen), 30, f"leadsla broker on {listen}")
        (child,) = wait_for(lambda: children(parent.pid) or None, 10, "the broker process")
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        wait_for(lambda: not alive(child), 15, "the broker process gone with its parent")
        wait_for(lambda: not port_open(listen), 15, f"{listen} free again")
    finally:
        if parent.poll() is None:
            parent.kill()
    again = subprocess.Popen([sys.executable, "-m", "leadsla", "broker", "--listen", listen], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: port_open(listen), 30, f"a new leadsla broker on {listen}")
        assert again.poll() is None
    finally:
        again.terminate()
        again.wait(timeout=20)


def test_a_killed_supervisor_takes_its_workers_along(setup) -> None:
    s = setup("""
policies:
  - {name: first_touch, start: lead.handed_off, stop: lead.contact_attempt, goal: 1h}
""")
    from .kafka import create_topics

    create_topics(s.broker, list(s.topics.values()))
    sup = s.worker("--workers", "2").start()
    assert sup.proc is not None
    workers = wait_for(lambda: (c := children(sup.proc.pid)) and len(c) == 2 and c, 30, "two workers")
    ports = [f"127.0.0.1:{sup.web_port}", f"127.0.0.1:{sup.web_port + 1}"]
    assert all(port_open(p) for p in ports)
    sup.proc.send_signal(signal.SIGKILL)
    sup.proc.wait(timeout=10)
    # Each worker gets SIGTERM from the kernel and stops in order (leaves the group).
    wait_for(lambda: not any(alive(w) for w in workers), 60, "the workers gone with their supervisor")
    # Nothing holds the ports: the next supervisor can bind them (with
    # SO_REUSEADDR, as its web server does: the test's own requests leave
    # connections in TIME_WAIT).
    for port in (sup.web_port, sup.web_port + 1):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen()
