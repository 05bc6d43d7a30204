"""``leadsla dashboards push`` against a stand-in for Grafana's HTTP API.

Grafana itself cannot run on this machine (no Grafana server is installed and
none can be started here), so a small local HTTP server plays its part: it
records every request and answers the few endpoints the push uses the way
Grafana does (GET /api/folders/<uid> is 404 until POST /api/folders created it,
POST /api/dashboards/db answers {"status": "success", "uid", "url", ...}, a
wrong token gets 401). The tests check the shape of what is sent — method,
path, Authorization header, JSON body — and how failures are reported.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from leadsla.dashboards.grafana import dashboards
from leadsla.dashboards.push import MESSAGE, PushError, push
from leadsla.models.policy import load_policies
from leadsla.streams.cli import main
from leadsla.streams.settings import EXAMPLE_POLICIES

TOKEN = "glsa_test-token-0123456789abcdef"  # a made-up service account token
BOARDS = dashboards(load_policies(EXAMPLE_POLICIES))
UIDS = [b["uid"] for b in BOARDS.values()]


@dataclass
class Request:
    method: str
    path: str
    authorization: str | None
    body: Any


@dataclass
class FakeGrafana:
    """State of the stand-in: what it was asked, which folders exist, how it answers."""

    url: str = ""
    prefix: str = ""  # a Grafana served under a sub-path (root_url with serve_from_sub_path)
    accept: set[str] = field(default_factory=lambda: {f"Bearer {TOKEN}"})
    forced_status: int | None = None  # answer every request with this status
    requests: list[Request] = field(default_factory=list)
    folders: dict[str, str] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)

    def posted(self, path: str) -> list[Any]:
        return [r.body for r in self.requests if r.method == "POST" and r.path == path]


def _handler(state: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> Request:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.removeprefix(state.prefix) if self.path.startswith(state.prefix + "/") else self.path
            req = Request(self.command, path, self.headers.get("Authorization"),
                          json.loads(raw) if raw else None)
            state.requests.append(req)
            return req

        def do_GET(self) -> None:
            req = self._record()
            if self._refused(req):
                return
            uid = req.path.removeprefix("/api/folders/")
            if req.path.startswith("/api/folders/") and uid in state.folders:
                self._answer(200, {"uid": uid, "title": state.folders[uid], "url": f"/dashboards/f/{uid}/"})
            else:
                self._answer(404, {"message": "folder not found", "status": "not-found"})

        def do_POST(self) -> None:
            req = self._record()
            if self._refused(req):
                return
            if req.path == "/api/folders":
                uid, title = req.body["uid"], req.body["title"]
                if uid in state.folders:
                    self._answer(409, {"message": "a folder with the same uid already exists"})
                    return
                state.folders[uid] = title
                self._answer(200, {"uid": uid, "title": title, "url": f"/dashboards/f/{uid}/"})
            elif req.path == "/api/dashboards/db":
                uid = req.body["dashboard"]["uid"]
                state.versions[uid] = state.versions.get(uid, 0) + 1
                self._answer(200, {"status": "success", "uid": uid, "url": f"/d/{uid}/{uid}",
                                   "version": state.versions[uid], "id": len(state.versions)})
            else:
                self._answer(404, {"message": "Not found"})

        def _refused(self, req: Request) -> bool:
            if state.forced_status is not None:
                self._answer(state.forced_status, {"message": f"forced {state.forced_status}"})
                return True
            if req.authorization not in state.accept:
                self._answer(401, {"message": "invalid API key"})
                return True
            return False

    return Handler


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    state = FakeGrafana()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    state.url = f"http://{host}:{port}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GRAFANA_TOKEN", "GRAFANA_USER", "GRAFANA_PASSWORD", "LEADSLA_POLICIES"):
        monkeypatch.delenv(name, raising=False)


def test_push_creates_the_folder_and_saves_every_dashboard(grafana: FakeGrafana) -> None:
    lines = list(push(grafana.url, TOKEN, BOARDS))

    assert [(r.method, r.path) for r in grafana.requests] == [
        ("GET", "/api/folders/leadsla"),
        ("POST", "/api/folders"),
        *[("POST", "/api/dashboards/db")] * len(BOARDS),
    ]
    assert {r.authorization for r in grafana.requests} == {f"Bearer {TOKEN}"}
    assert grafana.posted("/api/folders") == [{"title": "leadsla", "uid": "leadsla"}]
    bodies = grafana.posted("/api/dashboards/db")
    assert [b["dashboard"]["uid"] for b in bodies] == UIDS
    for body, board in zip(bodies, BOARDS.values(), strict=True):
        assert body["overwrite"] is True
        assert body["folderUid"] == "leadsla"
        assert body["message"] == MESSAGE
        assert body["dashboard"]["id"] is None
        assert {k: v for k, v in body["dashboard"].items() if k != "id"} == board
    assert lines == [f"updated {uid}: {grafana.url}/d/{uid}/{uid}" for uid in UIDS]


def test_push_twice_is_idempotent(grafana: FakeGrafana) -> None:
    list(push(grafana.url, TOKEN, BOARDS))
    first = grafana.posted("/api/dashboards/db")
    grafana.requests.clear()

    list(push(grafana.url, TOKEN, BOARDS))

    assert grafana.posted("/api/dashboards/db") == first
    assert grafana.posted("/api/folders") == []  # the folder exists now: looked up, not created again
    assert [(r.method, r.path) for r in grafana.requests][0] == ("GET", "/api/folders/leadsla")
    assert set(grafana.versions.values()) == {2}  # same UIDs updated in place, nothing added
    assert list(grafana.folders) == ["leadsla"]


def test_push_into_another_folder(grafana: FakeGrafana) -> None:
    list(push(grafana.url + "/", TOKEN, BOARDS, folder="sales-ops"))
    assert grafana.posted("/api/folders") == [{"title": "sales-ops", "uid": "sales-ops"}]
    assert {b["folderUid"] for b in grafana.posted("/api/dashboards/db")} == {"sales-ops"}


def test_grafana_under_a_sub_path(grafana: FakeGrafana) -> None:
    grafana.prefix = "/grafana"
    lines = list(push(grafana.url + "/grafana", TOKEN, BOARDS))
    assert [(r.method, r.path) for r in grafana.requests][:2] == [("GET", "/api/folders/leadsla"), ("POST", "/api/folders")]
    assert len(lines) == len(BOARDS)


def test_basic_auth(grafana: FakeGrafana) -> None:
    grafana.accept = {"Basic " + base64.b64encode(b"admin:s3cret").decode()}
    assert len(list(push(grafana.url, ("admin", "s3cret"), BOARDS))) == len(BOARDS)


def test_bad_token_raises_without_leaking_it(grafana: FakeGrafana, capsys: pytest.CaptureFixture[str]) -> None:
    grafana.accept = {"Bearer another-token"}
    with pytest.raises(PushError) as caught:
        list(push(grafana.url, TOKEN, BOARDS))
    message = str(caught.value)
    assert "authentication" in message and "401" in message
    assert TOKEN not in message
    assert grafana.posted("/api/dashboards/db") == []
    out, err = capsys.readouterr()
    assert TOKEN not in out + err


def test_forbidden_says_which_permission(grafana: FakeGrafana) -> None:
    grafana.forced_status = 403
    with pytest.raises(PushError, match=r"permission.*403") as caught:
        list(push(grafana.url, TOKEN, BOARDS))
    assert TOKEN not in str(caught.value)


def test_server_error_is_reported(grafana: FakeGrafana) -> None:
    grafana.forced_status = 500
    with pytest.raises(PushError, match="HTTP 500"):
        list(push(grafana.url, TOKEN, BOARDS))


def test_nothing_listening() -> None:
    with socket.socket() as s:  # a port that was free a moment ago and has no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PushError, match=f"cannot connect to Grafana at http://127.0.0.1:{port}/") as caught:
        list(push(f"http://127.0.0.1:{port}", TOKEN, BOARDS))
    assert TOKEN not in str(caught.value)


def test_not_an_http_url() -> None:
    with pytest.raises(PushError, match="http"):
        list(push("grafana:3000", TOKEN, BOARDS))


def test_cli_push(grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    assert main(["dashboards", "push", "--grafana-url", grafana.url]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"updated {uid}: {grafana.url}/d/{uid}/{uid}" for uid in UIDS]
    assert TOKEN not in out + err
    assert {r.authorization for r in grafana.requests} == {f"Bearer {TOKEN}"}


def test_cli_push_without_credentials(grafana: FakeGrafana, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboards", "push", "--grafana-url", grafana.url]) == 2
    assert "GRAFANA_TOKEN" in capsys.readouterr().err
    assert grafana.requests == []


def test_cli_push_with_a_bad_token(grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GRAFANA_TOKEN", "wrong-" + TOKEN)
    assert main(["dashboards", "push", "--grafana-url", grafana.url]) == 2
    out, err = capsys.readouterr()
    assert "authentication" in err
    assert TOKEN not in out + err
