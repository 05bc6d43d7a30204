"""``leadsla dashboards push``: upload the generated dashboards to a running
Grafana through its HTTP API (grafana-client), into one folder.

Idempotent: every dashboard has a fixed UID and is saved with
``overwrite: true``, so a second push updates the same dashboards in place
and the folder is created only when it is missing. The credential (a service
account token, or a user and password) never appears in a message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit, urlunsplit

from grafana_client.api import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaServerError,
    GrafanaTimeoutError,
    GrafanaUnauthorizedError,
)

MESSAGE = "leadsla dashboards push"
TIMEOUT = 10.0

Credential = str | tuple[str, str]
T = TypeVar("T")


class PushError(Exception):
    """The dashboards could not be pushed; the message says why, without secrets."""


def push(url: str, credential: Credential, boards: dict[str, dict[str, Any]],
         folder: str = "leadsla") -> Iterator[str]:
    """Save every dashboard of ``boards`` (path -> dashboard JSON) into ``folder``
    (its title and UID) of the Grafana at ``url``; yield one line per dashboard."""
    base = _base_url(url)
    api = GrafanaApi.from_url(base, credential=credential, timeout=TIMEOUT)
    where = _public(base)
    secrets = [credential] if isinstance(credential, str) else list(credential)

    def call(action: str, fn: Callable[[], T], expected: tuple[int, ...] = ()) -> T:
        return _call(action, where, secrets, fn, expected)

    _ensure_folder(api, folder, call)
    for board in boards.values():
        body = {"dashboard": {**board, "id": None}, "folderUid": folder, "overwrite": True, "message": MESSAGE}

        def save(body: dict[str, Any] = body) -> Any:
            return api.dashboard.update_dashboard(body)

        answer = call(f"save dashboard {board.get('uid')}", save)
        if not isinstance(answer, dict) or answer.get("status") != "success":
            raise PushError(f"Grafana at {where} did not confirm saving dashboard {board.get('uid')}: "
                            f"{_redact(str(answer), secrets)}")
        uid = answer.get("uid", board.get("uid"))
        yield f"updated {uid}: {urljoin(where, str(answer.get('url', '')))}"


def _ensure_folder(api: GrafanaApi, folder: str, call: Callable[..., Any]) -> None:
    try:
        call(f"look up folder {folder}", lambda: api.folder.get_folder(folder), expected=(404,))
        return
    except _Status:
        pass  # missing: create it
    try:
        call(f"create folder {folder}", lambda: api.folder.create_folder(folder, uid=folder), expected=(409, 412))
    except _Status as exc:
        raise PushError(f"cannot create folder {folder!r} (HTTP {exc.status}: {exc.detail}); is there a folder "
                        "with that title and another UID? Rename it or choose another --folder") from None


class _Status(Exception):
    """An HTTP status the caller asked to handle itself."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status, self.detail = status, detail


def _call(action: str, where: str, secrets: list[str], fn: Callable[[], T], expected: tuple[int, ...] = ()) -> T:
    """Run one API call; turn every failure into a PushError with a clear message
    (or a _Status for the ``expected`` HTTP statuses)."""
    try:
        return fn()
    except GrafanaUnauthorizedError:
        raise PushError(f"Grafana at {where} rejected the credentials (HTTP 401) when trying to {action}: "
                        "authentication failed; check GRAFANA_TOKEN (or GRAFANA_USER and GRAFANA_PASSWORD)") from None
    except GrafanaTimeoutError:
        raise PushError(f"Grafana at {where} did not answer within {TIMEOUT:g} s when trying to {action}") from None
    except GrafanaClientError as exc:
        detail = _redact(_message(exc), secrets)
        if exc.status_code in expected:
            raise _Status(exc.status_code, detail) from None
        if exc.status_code == 403:
            raise PushError(f"Grafana at {where} refused permission to {action} (HTTP 403: {detail}); the token's "
                            "service account needs the Editor role (or write access to the folder)") from None
        raise PushError(f"Grafana at {where} answered HTTP {exc.status_code} when trying to {action}: "
                        f"{detail}") from None
    except GrafanaServerError as exc:
        raise PushError(f"Grafana at {where} failed with HTTP {exc.status_code} when trying to {action}: "
                        f"{_redact(_message(exc), secrets)}") from None
    except (GrafanaException, OSError) as exc:  # niquests' connection errors are OSErrors
        raise PushError(f"cannot connect to Grafana at {where} to {action}: "
                        f"{_redact(str(exc) or type(exc).__name__, secrets)}") from None
    except ValueError as exc:  # an answer that is not JSON: not Grafana's API
        raise PushError(f"{where} did not answer like Grafana's HTTP API when trying to {action} "
                        f"({_redact(str(exc), secrets)}); is --grafana-url right?") from None


def _message(exc: GrafanaException) -> str:
    response = exc.response
    if isinstance(response, dict) and "message" in response:
        return str(response["message"])
    return str(exc.message)


def _redact(text: str, secrets: list[str]) -> str:
    """``text`` with every whole occurrence of a secret replaced by ``***``.
    Whole: not next to a letter or digit, so a short password such as
    ``admin`` hides itself without eating into ``administrator``."""
    for secret in secrets:
        if secret:
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", "***", text)
    return text


def _base_url(url: str) -> str:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise PushError(f"not a valid URL: {_public(url)!r} (e.g. http://grafana:3000)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PushError(f"not an http(s) URL of a Grafana: {_public(url)!r} (e.g. http://grafana:3000)")
    # grafana-client appends "api" to the path as given: a sub-path needs its trailing slash.
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _public(url: str) -> str:
    """The URL without user and password, for messages."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
