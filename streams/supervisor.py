"""``leadsla run --workers N``: several monitor processes on one host, one
consumer group. Each child is an ordinary ``leadsla run`` with its own web
port (``--web-port`` + i) and data directory; they split the partitions as any
workers of one group do. A child that dies is started again after a pause that
doubles up to a minute; Ctrl-C or SIGTERM stops them all.

Only the supervisor prints a banner. The children's standard output and
error come through pipes and are copied to the supervisor's standard output
one whole line at a time, each line starting with ``[worker i]``, so that
several workers' lines never interleave mid-line."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from leadsla.streams.children import die_with_parent

log = logging.getLogger("leadsla")

RESTART_PAUSE_MAX_S = 60.0


def child_argv(argv: Sequence[str]) -> list[str]:
    """``leadsla run``'s own arguments without ``--workers`` and ``--web-port``
    (each child gets its own port)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--workers", "--web-port", "--worker-index"):
            skip = True
            continue
        if arg.startswith(("--workers=", "--web-port=", "--worker-index=")) or arg == "--terminal":
            continue
        out.append(arg)
    return out


def relay(source: IO[bytes], prefix: str, out: IO[str], lock: threading.Lock) -> None:
    """Copy ``source`` to ``out`` line by line, each line after ``prefix``,
    until end of file. Whole lines under ``lock``: two workers' lines never
    mix. Undecodable bytes are replaced rather than lost with the line."""
    for raw in iter(source.readline, b""):
        line = raw.decode(errors="replace").rstrip("\r\n")
        with lock:
            try:
                out.write(f"{prefix}{line}\n")
                out.flush()
            except (OSError, ValueError):
                pass  # our own output went away; keep draining the child's pipe
    source.close()


def run_workers(argv: Sequence[str], workers: int, base_port: int, data_dir: Path, broker: str | None,
                terminal: bool = False) -> int:
    """Run ``workers`` children until a signal stops them; returns the exit
    status (0 after Ctrl-C or SIGTERM). ``broker`` is the bootstrap URL every
    child uses (the embedded broker's, when the caller started one);
    ``terminal``: the supervisor's output is a terminal, so the children
    print status lines as they would on one."""
    env = dict(os.environ)
    if broker is not None:
        env["LEADSLA_BROKER"] = broker
    # A child is one worker (LEADSLA_WORKERS would make it a supervisor too)
    # and writes every line at once, as the relay reads lines.
    env["LEADSLA_WORKERS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    lock = threading.Lock()
    relays: list[threading.Thread] = []
    procs: list[subprocess.Popen[bytes] | None] = [None] * workers
    pause = [1.0] * workers
    due = [0.0] * workers
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}

    def start(i: int) -> None:
        port = base_port + i
        own = data_dir / f"worker-{i}"
        own.mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
        child_env = {**env, "LEADSLA_WEB_PORT": str(port), "LEADSLA_DATA_DIR": str(own)}
        extra = ["--worker-index", str(i)] + (["--terminal"] if terminal else [])
        proc = subprocess.Popen([sys.executable, "-m", "leadsla", "run", *child_argv(argv), "--web-port", str(port),
                                 *extra], env=child_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT,
                                # A supervisor killed outright takes its workers along (they leave the
                                # group and free their ports), rather than leaving them consuming.
                                preexec_fn=die_with_parent())
        procs[i] = proc
        assert proc.stdout is not None
        t = threading.Thread(target=relay, args=(proc.stdout, f"[worker {i}] ", sys.stdout, lock),
                             name=f"relay-worker-{i}", daemon=True)
        t.start()
        relays.append(t)
        log.info("worker %d started (pid %d): metrics at :%d/metrics", i, proc.pid, port)

    try:
        for i in range(workers):
            start(i)
        while not stopping:
            time.sleep(0.2)
            now = time.monotonic()
            for i, p in enumerate(procs):
                if p is not None and p.poll() is not None:
                    log.warning("worker %d exited with status %d; starting it again in %.0f s", i, p.returncode, pause[i])
                    procs[i], due[i] = None, now + pause[i]
                    pause[i] = min(pause[i] * 2, RESTART_PAUSE_MAX_S)
                elif p is None and now >= due[i]:
                    start(i)
    finally:
        # One after another, each leaving the group before the next stops:
        # the embedded broker's group coordinator was seen to stall a later
        # join for minutes after several members left in the same instant.
        for p in reversed(procs):
            if p is None:
                continue
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        # The children's last lines (their summaries) are still in the pipes.
        for t in relays:
            t.join(timeout=5)
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0
