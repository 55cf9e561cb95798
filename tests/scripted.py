"""A scripted loopback HTTP peer for client tests: a real server whose answers a test writes down.

Used where a test needs an answer the sandbox would never give (a recorded page, a malformed body, a
chosen failure sequence); everything else runs against the sandbox itself.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    target: str  # path with the query string, as sent
    path: str
    query: dict[str, str]  # first value of each parameter
    headers: dict[str, str]
    body: Any  # parsed JSON, or None


Answer = tuple[int, dict[str, str], Any]  # status, headers, body (bytes as they are, anything else as JSON)


class ScriptedServer:
    """`with ScriptedServer(respond) as s:` serves `respond(request) -> (status, headers, body)` at `s.url`."""

    def __init__(self, respond: Callable[[Request], Answer]) -> None:
        self.respond = respond
        self.url = ""

    def __enter__(self) -> Self:
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                split = urlsplit(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                req = Request(self.command, self.path, split.path, {k: v[0] for k, v in parse_qs(split.query).items()},
                              dict(self.headers), json.loads(raw) if raw else None)
                status, headers, body = scripted.respond(req)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class ScriptedGitHub(ScriptedServer):
    """Routes paths to (status, body, headers) or to a function of the request giving them; a body may be a
    function of the request too; "{base}" in a header is the server's URL. Records (path, headers)."""

    def __init__(self, routes):
        super().__init__(self._answer)
        self.routes = routes
        self.seen: list[tuple[str, dict]] = []

    def _answer(self, r):
        self.seen.append((r.path, r.headers))
        route = self.routes.get(r.path, (404, {"message": "Not Found"}, {}))
        status, body, headers = route(r) if callable(route) else route
        body = body(r) if callable(body) else body
        return status, {k: v.replace("{base}", self.url) for k, v in headers.items()}, body
