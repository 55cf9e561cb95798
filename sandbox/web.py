"""What both emulators build on: requests, responses, routes, the sandbox's credentials.

The emulators (`jira_api`, `github_api`, `github_graphql`) import this module, never `server`, which
imports them and serves them: one direction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from sandbox.model import Store

JIRA_API_TOKEN = "sandbox-jira-api-token"  # Cloud: Basic email:token
JIRA_PAT = "sandbox-jira-personal-access-token"  # Data Center: Bearer
GITHUB_TOKEN = "ghp_sandbox0000000000000000000000000000"


@dataclass
class Request:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    base_url: str  # "http://127.0.0.1:PORT", as the client addressed the server
    params: dict[str, str] = field(default_factory=dict)  # named groups of the route pattern

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)  # compact UTF-8, as json.dumps(separators=...) was
    return Response(status, body, {"Content-Type": "application/json;charset=UTF-8", **(headers or {})})


Handler = Callable[[Request], Response]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], str, Handler]] = []

    def add(self, method: str, pattern: str, name: str, handler: Handler) -> None:
        """`pattern` is a regex over the path with named groups; `name` is what request counts report."""
        self._routes.append((method, re.compile(pattern + r"\Z"), name, handler))

    def match(self, method: str, path: str) -> tuple[str, Handler, dict[str, str]] | None:
        for route_method, regex, name, handler in self._routes:
            m = regex.match(path)
            if m and route_method == method:
                return name, handler, m.groupdict()
        return None

    def path_known(self, path: str) -> bool:
        return any(regex.match(path) for _, regex, _, _ in self._routes)


class AppView(Protocol):
    """What an emulator sees of the running sandbox (`server.App`): the organisation, the Jira deployment,
    the routes. Emulators may keep their own state on it."""

    store: Store
    jira_deployment: str
    router: Router
