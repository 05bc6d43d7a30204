"""Real Prometheus and Alertmanager processes (Debian's packages) and a
webhook receiver standing in for a pager, for end-to-end alert tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from .conftest import free_port, wait_for

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
MISSING = "Debian's prometheus and prometheus-alertmanager must be installed (scripts/test installs them)"


class Process:
    def __init__(self, argv: list[str], log: Path, url: str) -> None:
        self.url = url
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as r:
            return json.loads(r.read())

    def healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.proc.args[0]} exited:\n{self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False


def start_alertmanager(tmp: Path, config: dict[str, Any]) -> Process:
    assert ALERTMANAGER, MISSING
    port = free_port()
    cfg = tmp / "alertmanager.yml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    p = Process(
        [ALERTMANAGER, f"--config.file={cfg}", f"--storage.path={tmp / 'am-data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        tmp / "alertmanager.log", f"http://127.0.0.1:{port}",
    )
    wait_for(p.healthy, 30, "alertmanager ready")
    return p


def start_prometheus(tmp: Path, rule_files: list[Path], targets: list[str], alertmanager: str) -> Process:
    assert PROMETHEUS, MISSING
    port = free_port()
    cfg = tmp / "prometheus.yml"
    cfg.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(f) for f in rule_files],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [{"job_name": "leadsla", "static_configs": [{"targets": targets}]}],
    }, sort_keys=False))
    p = Process(
        [PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={tmp / 'prom-data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        tmp / "prometheus.log", f"http://127.0.0.1:{port}",
    )
    wait_for(p.healthy, 30, "prometheus ready")
    return p


class Webhook:
    """Collects Alertmanager webhook notifications."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.received.append({"path": self.path, **json.loads(body)})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def alerts(self, status: str = "firing") -> list[dict[str, Any]]:
        return [a for n in self.received for a in n["alerts"] if a["status"] == status]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
