"""Real servers for integration tests: the embedded broker (one per session)
and ``leadsla run`` worker processes, each test on its own topics and group."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from leadsla.streams.broker import EmbeddedBroker

INTEGRATION = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A module-level pytestmark in a conftest marks nothing: mark every test
    # of this folder so that -m "not integration" really deselects them.
    for item in items:
        if INTEGRATION in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


# The contract's minimal first-touch policy, shared by tests that need one clock.
FIRST_TOUCH = """
policies:
  - name: first_touch
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected]
    goal: 1h
"""


def ephemeral_ports() -> tuple[int, int]:
    """The kernel's ephemeral port range, both ends included (Linux's
    default when it cannot be read)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


class _Ports:
    """This session's ports for the servers it starts (broker, workers,
    Prometheus, Alertmanager).

    Not a port found by binding to 0 and closing: that is one of the
    kernel's ephemeral ports, the very range every outgoing connection (Kafka
    clients, urllib) takes its local port from, so the next connect() may
    take it before the server binds it. These come from a counter over a
    range outside the ephemeral one, where only an explicit bind takes a
    port; each is checked free when handed out, and the counter starts at a
    place that depends on the process id, so sessions side by side start far
    apart. A port is not handed out again until the counter has gone round
    the whole range."""

    LOWEST = 20000  # above the usual services' ports (9092, 9090, 9093, 3000…)
    MIN_SPAN = 2000

    def __init__(self) -> None:
        low, high = ephemeral_ports()
        if low - self.LOWEST >= self.MIN_SPAN:
            self.first, self.end = self.LOWEST, low
        elif 65536 - (high + 1) >= self.MIN_SPAN:
            self.first, self.end = high + 1, 65536
        else:  # an ephemeral range that leaves no room: share it, checked
            self.first, self.end = 1024, 65536
        self.next = self.first + os.getpid() * 97 % (self.end - self.first)
        self.lock = threading.Lock()

    def take(self, count: int) -> int:
        with self.lock:
            for _ in range((self.end - self.first) // count):
                if self.next + count > self.end:
                    self.next = self.first
                first, self.next = self.next, self.next + count
                if all(_bindable(p) for p in range(first, first + count)):
                    return first
        raise RuntimeError(f"no {count} consecutive free ports in {self.first}-{self.end - 1}")


def _bindable(port: int) -> bool:
    # No SO_REUSEADDR: a port in TIME_WAIT counts as taken, to be safe.
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


_PORTS = _Ports()


def free_port(count: int = 1) -> int:
    """The first of ``count`` consecutive TCP ports on 127.0.0.1 that nothing
    was bound to when asked (``leadsla run --workers N`` serves on N ports
    from its web port), not handed out before in this session; see
    :class:`_Ports`. Raises RuntimeError when the range has no such block."""
    return _PORTS.take(count)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    listen = f"127.0.0.1:{free_port()}"
    b = EmbeddedBroker(listen, log_file=tmp_path_factory.mktemp("broker") / "tansu.log")
    b.start()
    try:
        yield listen
    finally:
        b.stop()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll until ``predicate()`` is truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


# What ``leadsla run`` says, and exits 2 with, when a web port it is to serve
# on is taken: it checks them all before it starts anything.
WEB_PORT_TAKEN = re.compile(r"^leadsla: web port \S+ is in use; ", re.M)
WEB_PORT_ATTEMPTS = 3


class WebPortTaken(AssertionError):
    """The worker refused to start: one of its web ports was taken."""


@dataclass
class Worker:
    """A real ``leadsla run`` process, serving on ``ports`` consecutive web
    ports from ``web_port`` (its ``--workers``)."""

    env: dict[str, str]
    log: Path
    web_port: int
    args: list[str] = field(default_factory=list)  # after ``leadsla run``
    proc: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)
    ports: int = 1

    def start(self) -> Worker:
        """Start the process and wait until /ready says ready (at most 180 s).

        A port chosen free can still be taken before the worker binds it.
        ``leadsla run`` then refuses before it joins a group or reads a
        record, so starting it again on other ports changes nothing a test
        looks at: up to ``WEB_PORT_ATTEMPTS`` starts, ``web_port`` changing
        with each. A refused start's log stays on disk, named by its port,
        and leaves ``logs``. Raises AssertionError when the worker exits or is
        not ready in time."""
        for _ in range(WEB_PORT_ATTEMPTS):
            self.logs.append(self.log.with_suffix(f".{len(self.logs)}.log"))
            with open(self.logs[-1], "wb") as out:  # the child keeps its own copy
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "leadsla", "run", *self.args], env=self.env, stdout=out,
                    stderr=subprocess.STDOUT
                )
            try:
                wait_for(self.ready, 180, f"worker ready on :{self.web_port}\n{self.tail()}")
                return self
            except WebPortTaken as taken:
                refused = taken
            self.logs.pop()
            self.web_port = free_port(self.ports)
            self.env["LEADSLA_WEB_PORT"] = str(self.web_port)
            self.log = self.log.with_name(f"worker-{self.web_port}")
        raise AssertionError(f"web ports taken {WEB_PORT_ATTEMPTS} times in a row; the last time: {refused}")

    def ready(self) -> bool:
        """Does /ready say ready? Raises WebPortTaken or AssertionError when
        the process has exited."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            text = self.logs[-1].read_text(errors="replace") if self.logs else ""
            if self.proc.returncode == 2 and WEB_PORT_TAKEN.search(text):
                raise WebPortTaken(f"worker exited with 2:\n{self.tail()}")
            raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/ready", timeout=2) as r:
                return bool(json.loads(r.read())["ready"])
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def tail(self, n: int = 40) -> str:
        if not self.logs:
            return ""
        lines = self.logs[-1].read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def metrics(self, port: int | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Samples by (name, sorted labels), from ``port`` (default: the worker's)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{port or self.web_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        out = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}{path}", timeout=5) as r:
            return json.loads(r.read())

    def lead(self, lead_id: str) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/leads/{lead_id}", timeout=5) as r:
                return json.loads(r.read())  # type: ignore[no-any-return]
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise


def metric_sum(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], metric: str, /,
               **labels: str) -> float:
    """Sum of a metric's samples whose labels include ``labels``."""
    total = 0.0
    for (n, ls), v in samples.items():
        if n == metric and all(dict(ls).get(k) == val for k, val in labels.items()):
            total += v
    return total


@dataclass
class Setup:
    broker: str
    tmp: Path
    policies: Path
    topics: dict[str, str]
    app_id: str
    workers: list[Worker] = field(default_factory=list)

    def command_env(self) -> dict[str, str]:
        """The environment of a ``leadsla`` command (publish, outcomes,
        recalibrate…) run against this test's broker, topics and policies."""
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("LEADSLA_")},
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "LEADSLA_BROKER": f"kafka://{self.broker}",
            "LEADSLA_INPUT_TOPIC": self.topics["input"],
            "LEADSLA_DLQ_TOPIC": self.topics["dlq"],
            "LEADSLA_OUTCOMES_TOPIC": self.topics["outcomes"],
            "LEADSLA_POLICIES": str(self.policies),
        }

    def worker(self, *args: str, **env: str) -> Worker:
        """A worker's settings (``leadsla run`` ``args``, ``LEADSLA_*`` ``env``
        over the setup's), not started; its web ports are free when chosen."""
        ports = _workers(args, env)
        port = free_port(ports)
        e = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LEADSLA_")},
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "LEADSLA_BROKER": f"kafka://{self.broker}",
            "LEADSLA_POLICIES": str(self.policies),
            "LEADSLA_WEB_PORT": str(port),
            "LEADSLA_APP_ID": self.app_id,
            "LEADSLA_INPUT_TOPIC": self.topics["input"],
            "LEADSLA_DLQ_TOPIC": self.topics["dlq"],
            "LEADSLA_OUTCOMES_TOPIC": self.topics["outcomes"],
            "LEADSLA_PERIODS_TOPIC": self.topics["periods"],
            "LEADSLA_PARTITIONS": "4",
            "LEADSLA_ALLOWED_LATENESS": "2s",
            "LEADSLA_TIMER_INTERVAL": "250ms",
            "LEADSLA_COMMIT_INTERVAL": "500ms",
            "LEADSLA_DATA_DIR": str(self.tmp / f"data-{port}"),
            "LEADSLA_LOG_LEVEL": "info",
            **env,
        }
        w = Worker(e, self.tmp / f"worker-{port}", port, list(args), ports=ports)
        self.workers.append(w)
        return w


def _workers(args: tuple[str, ...], env: dict[str, str]) -> int:
    """How many worker processes, each on its own web port, ``leadsla run``
    starts with these arguments and variables (the flag wins)."""
    n = env.get("LEADSLA_WORKERS", "1")
    for i, a in enumerate(args):
        if a == "--workers" and i + 1 < len(args):
            n = args[i + 1]
        elif a.startswith("--workers="):
            n = a.partition("=")[2]
    return max(1, int(n))


@pytest.fixture
def setup(broker: str, tmp_path: Path) -> Iterator[Callable[[str], Setup]]:
    made: list[Setup] = []

    def make(policies_yaml: str) -> Setup:
        tag = uuid.uuid4().hex[:8]
        policies = tmp_path / "policies.yaml"
        policies.write_text(policies_yaml)
        s = Setup(
            broker=broker,
            tmp=tmp_path,
            policies=policies,
            topics={"input": f"lead-events-{tag}", "dlq": f"lead-events-dlq-{tag}", "outcomes": f"sla-outcomes-{tag}",
                    "periods": f"sla-periods-{tag}"},
            app_id=f"leadsla-test-{tag}",
        )
        made.append(s)
        return s

    yield make
    for s in made:
        for w in s.workers:
            if w.proc is not None:
                w.stop()
