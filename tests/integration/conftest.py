"""Real servers for integration tests: the embedded broker (one per session)
and ``leadsla run`` worker processes, each test on its own topics and group."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


@dataclass
class Worker:
    """A real ``leadsla run`` process."""

    env: dict[str, str]
    log: Path
    web_port: int
    args: list[str] = field(default_factory=list)  # after ``leadsla run``
    proc: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    def start(self) -> Worker:
        self.logs.append(self.log.with_suffix(f".{len(self.logs)}.log"))
        with open(self.logs[-1], "wb") as out:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "leadsla", "run", *self.args], env=self.env, stdout=out,
                stderr=subprocess.STDOUT
            )
        wait_for(self.ready, 180, f"worker ready on :{self.web_port}\n{self.tail()}")
        return self

    def ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
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

    def worker(self, *args: str, **env: str) -> Worker:
        port = free_port()
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
        w = Worker(e, self.tmp / f"worker-{port}", port, list(args))
        self.workers.append(w)
        return w


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
