"""One loopback HTTP server for both emulators: routing, faults, latency, request counts, admin.

Jira answers under `/rest/...`, GitHub under `/api/v3/...` and `/api/graphql` (GitHub Enterprise
paths, so one client serves github.com and GHES). `/_sandbox/...` is the control plane: request
counts, fault settings, advancing the clock; it is never faulted and needs no credentials.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from sandbox.model import Store
from sandbox.web import GITHUB_TOKEN, JIRA_API_TOKEN, JIRA_PAT, Request, Response, Router, json_response

REQUEST_LOG = 2000  # requests kept in `Stats.log` (GET /_sandbox/requests)
LOGGED_HEADERS = ("user-agent", "x-atlassian-token", "content-type", "accept")

# What real services do now and then, and a client must ride out: the default kinds.
TRANSIENT_KINDS = ("429", "429_no_retry_after", "403_secondary", "403_secondary_no_retry_after",
                   "502_burst", "503", "reset")
# Only when asked: a stall, and answers a client must refuse rather than load (a proxy's HTML login page
# with status 200, a truncated JSON body, an empty JSON object where a page was due). Generic: both APIs.
FAULT_KINDS = (*TRANSIENT_KINDS, "slow", "html_200", "malformed_json", "empty_json")


@dataclass
class FaultSettings:
    rate: float = 0.0  # share of API requests that fail
    kinds: list[str] = field(default_factory=lambda: list(TRANSIENT_KINDS))
    retry_after_s: int = 1  # what Retry-After / X-RateLimit-Reset ask for (real services: up to 60 s)
    burst: int = 3  # consecutive 502s in a 502 burst
    slow_s: float = 20.0  # how long a "slow" response stalls before answering
    seed: int = 0
    routes: list[str] = field(default_factory=list)  # route names faulted (e.g. "github.graphql"); [] = all
    limit: int = 0  # at most this many faults (a 502 burst counts once); 0 = no limit
    after: int = 0  # the first `after` requests (of `routes`, if given) are never faulted


@dataclass
class Stats:
    requests: dict[str, int] = field(default_factory=dict)  # route name -> count (faulted ones included)
    faults: dict[str, int] = field(default_factory=dict)
    early_retries: int = 0  # requests for a URL sooner than its last Retry-After allowed
    repositories: dict[str, int] = field(default_factory=dict)  # GitHub REST requests served per repository
    # The latest requests (method, path, route, auth scheme, client headers): what a client really sent.
    log: deque = field(default_factory=lambda: deque(maxlen=REQUEST_LOG))


class App:
    """The state every handler sees: the organisation, the mode, the lock, the counters."""

    def __init__(self, store: Store, jira_deployment: str = "cloud") -> None:
        if jira_deployment not in ("cloud", "datacenter"):
            raise ValueError("jira_deployment must be 'cloud' or 'datacenter'")
        self.store = store
        self.jira_deployment = jira_deployment
        self.lock = threading.RLock()  # held while handling a request and while advancing the clock
        self.router = Router()
        self.stats = Stats()
        self.faults = FaultSettings()
        self.latency_ms = 0.0
        self._fault_rng = random.Random(0)
        self._burst_left = 0
        self._faults_started = 0
        self._fault_candidates = 0
        self._not_before: dict[str, float] = {}
        from sandbox import github_api, github_graphql, jira_api  # the emulators register their routes

        jira_api.register(self)
        github_api.register(self)
        github_graphql.register(self)
        self._register_admin()

    # -- control plane -------------------------------------------------------------------------
    def set_faults(self, **settings: Any) -> FaultSettings:
        with self.lock:
            unknown = set(settings.get("kinds", [])) - set(FAULT_KINDS)
            if unknown:
                raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(FAULT_KINDS)}")
            self.faults = FaultSettings(**{**asdict(self.faults), **settings})
            self._fault_rng = random.Random(self.faults.seed)
            self._burst_left = 0
            self._faults_started = self._fault_candidates = 0
            return self.faults

    def reset_stats(self) -> None:
        with self.lock:
            self.stats = Stats()

    def advance(self, fraction: float, days: float = 1.0, seed: int | None = None) -> int:
        """Move the clock on by `days` and change `fraction` of the items; returns how many changed."""
        from sandbox import cache, generator

        with self.lock:
            try:
                return generator.advance(self.store, fraction=fraction, days=days, seed=seed)
            finally:
                cache.invalidate(self.store)

    def move(self, login: str, team: str) -> None:
        """A person changes team now (sandbox/gen_advance.py's `move`): later runs see the new membership."""
        from sandbox import cache
        from sandbox.gen_advance import move

        with self.lock:
            try:
                move(self.store, login, team)
            finally:
                cache.invalidate(self.store)

    def _register_admin(self) -> None:
        r = self.router

        def stats(req: Request) -> Response:
            s = self.stats
            return json_response({"requests": s.requests, "total": sum(s.requests.values()),
                                  "faults": s.faults, "early_retries": s.early_retries,
                                  "repositories": s.repositories})

        def requests_log(req: Request) -> Response:
            return json_response(list(self.stats.log))

        def reset(req: Request) -> Response:
            self.reset_stats()
            return Response(204)

        def faults(req: Request) -> Response:
            if req.method == "PUT":
                try:
                    self.set_faults(**(req.json() or {}))
                except (TypeError, ValueError) as e:
                    return json_response({"error": str(e)}, 400)
            return json_response(asdict(self.faults))

        def latency(req: Request) -> Response:
            if req.method == "PUT":
                self.latency_ms = float((req.json() or {}).get("ms", 0))
            return json_response({"ms": self.latency_ms})

        def advance(req: Request) -> Response:
            body = req.json() or {}
            changed = self.advance(float(body.get("fraction", 0.01)), float(body.get("days", 1.0)),
                                   body.get("seed"))
            return json_response({"changed": changed, "now": self.store.now.isoformat()})

        def truth(req: Request) -> Response:
            from sandbox import truth as oracle

            as_of = req.arg("as_of")
            when = datetime.fromisoformat(as_of) if as_of else None
            return json_response(oracle.to_json(oracle.compute(self.store, when, self.jira_deployment)))

        r.add("GET", "/_sandbox/truth", "admin", truth)
        r.add("GET", "/_sandbox/stats", "admin", stats)
        r.add("POST", "/_sandbox/stats/reset", "admin", reset)
        r.add("GET", "/_sandbox/requests", "admin", requests_log)
        for m in ("GET", "PUT"):
            r.add(m, "/_sandbox/faults", "admin", faults)
            r.add(m, "/_sandbox/latency", "admin", latency)
        r.add("POST", "/_sandbox/advance", "admin", advance)

    # -- request path --------------------------------------------------------------------------
    def count(self, name: str) -> None:
        self.stats.requests[name] = self.stats.requests.get(name, 0) + 1

    def pick_fault(self, url: str, route: str = "") -> str | None:
        """Decide, deterministically from the fault seed, whether this request fails and how."""
        now = time.monotonic()
        with self.lock:
            if url in self._not_before and now < self._not_before[url] - 0.05:
                self.stats.early_retries += 1
            f = self.faults
            if f.routes and route not in f.routes:
                return None
            self._fault_candidates += 1
            if self._fault_candidates <= f.after:
                return None
            if self._burst_left > 0:
                self._burst_left -= 1
                kind = "502_burst"
            elif (f.rate > 0 and f.kinds and (not f.limit or self._faults_started < f.limit)
                  and self._fault_rng.random() < f.rate):
                kind = self._fault_rng.choice(f.kinds)
                self._faults_started += 1
                if kind == "502_burst":
                    self._burst_left = max(f.burst - 1, 0)
            else:
                return None
            self.stats.faults[kind] = self.stats.faults.get(kind, 0) + 1
            if kind in ("429", "403_secondary", "503"):
                self._not_before[url] = now + f.retry_after_s
            return kind


HTML_LOGIN = (b"<!DOCTYPE html>\n<html><head><title>Sign in - Corporate Proxy</title></head>\n<body><form "
              b"method=\"post\" action=\"/login\"><input name=\"user\"><input name=\"password\" "
              b"type=\"password\"></form></body></html>\n")


def fault_response(kind: str, is_github: bool, retry_after_s: int) -> Response:
    """The error a real service sends for this fault, in its own body shape and headers."""
    reset_epoch = str(int(time.time()) + retry_after_s)
    if kind == "html_200":
        return Response(200, HTML_LOGIN, {"Content-Type": "text/html; charset=utf-8"})
    if kind == "malformed_json":
        body = b'{"data":{"repository":{"pullRequests":{"nodes":[{"number":1,' if is_github else \
            b'{"startAt":0,"maxResults":50,"total":12,"issues":[{"id":"10001","key":'
        return Response(200, body, {"Content-Type": "application/json; charset=utf-8"})
    if kind == "empty_json":
        return json_response({})
    if is_github:
        secondary = {
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
                       "again. If you reach out to GitHub Support for help, please include the request ID "
                       "0000:0000:0000000:0000000:00000000.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
                                 "#about-secondary-rate-limits",
        }
        if kind in ("429", "403_secondary"):
            return json_response(secondary, 429 if kind == "429" else 403, {"Retry-After": str(retry_after_s)})
        if kind in ("429_no_retry_after", "403_secondary_no_retry_after"):
            return json_response(secondary, 429 if kind.startswith("429") else 403)
        if kind == "503":
            return json_response({"message": "Service Unavailable"}, 503, {"Retry-After": str(retry_after_s)})
        return Response(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                        {"Content-Type": "text/html"})
    if kind == "429":
        return json_response({"errorMessages": ["Rate limit exceeded."], "errors": {}}, 429,
                             {"Retry-After": str(retry_after_s), "X-RateLimit-Limit": "350",
                              "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": _iso_in(retry_after_s),
                              "RateLimit-Reason": "jira-burst-based"})
    if kind in ("429_no_retry_after", "403_secondary_no_retry_after", "403_secondary"):
        return json_response({"errorMessages": ["Rate limit exceeded."], "errors": {}}, 429,
                             {"X-RateLimit-Limit": "350", "X-RateLimit-Remaining": "0",
                              "X-RateLimit-Reset": _iso_in(retry_after_s), "X-Reset-Epoch": reset_epoch})
    if kind == "503":
        return json_response({"errorMessages": ["Service Unavailable"], "errors": {}}, 503,
                             {"Retry-After": str(retry_after_s)})
    return Response(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", {"Content-Type": "text/html"})


def _iso_in(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "flowlens-sandbox"
    # Headers and body go out in two writes: with Nagle's algorithm on, the body waits for the client's delayed
    # ACK of the headers (up to 40 ms on Linux), which capped a kept-alive client at about 20 requests a second.
    disable_nagle_algorithm = True
    app: App  # set on the subclass per server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _dispatch(self) -> None:
        app = self.app
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        host = self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.server_address[1]}"
        req = Request(self.command, split.path, parse_qs(split.query, keep_blank_values=True),
                      {k.lower(): v for k, v in self.headers.items()}, body, f"http://{host}")
        is_admin = split.path.startswith("/_sandbox/")
        is_github = split.path.startswith("/api/")
        matched = app.router.match(self.command, split.path)
        if not is_admin:
            with app.lock:
                app.count(matched[0] if matched else "unmatched")
                app.stats.log.append({"method": self.command, "path": split.path,
                                      "route": matched[0] if matched else "unmatched",
                                      "auth": req.headers.get("authorization", "").partition(" ")[0],
                                      "headers": {h: req.headers[h] for h in LOGGED_HEADERS if h in req.headers}})
            if app.latency_ms:
                time.sleep(app.latency_ms / 1000 * (0.5 + random.random()))
            kind = app.pick_fault(self.path, matched[0] if matched else "unmatched")
            if kind == "slow":
                time.sleep(app.faults.slow_s)
            elif kind == "reset":
                return self._reset_mid_body()
            elif kind:
                return self._send(fault_response(kind, is_github, app.faults.retry_after_s))
        if matched is None:
            return self._send(not_found(is_github, app.router.path_known(split.path)))
        _, handler, params = matched
        req.params = params
        try:
            with app.lock:
                resp = handler(req)
        except Exception as e:  # noqa: BLE001 - an emulator bug must show as a 500, not a hung client
            resp = json_response({"message": f"sandbox error: {type(e).__name__}: {e}"}, 500)
        self._send(resp)

    def _send(self, resp: Response) -> None:
        self.send_response(resp.status)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if resp.body and self.command != "HEAD":
            self.wfile.write(resp.body)

    def _reset_mid_body(self) -> None:
        body = b'{"startAt":0,"maxResults":100,"total":12345,"issues":[{"id":"1000'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "65536")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass


def not_found(is_github: bool, path_known: bool) -> Response:
    if is_github:
        return json_response({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, 404)
    if path_known:
        return json_response({"errorMessages": ["Method Not Allowed"], "errors": {}}, 405)
    return json_response({"errorMessages": ["null for uri: not found"], "errors": {}}, 404)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def handle_error(self, request: Any, client_address: Any) -> None:  # client hung up: not our problem
        pass


class Sandbox:
    """A running sandbox: `with Sandbox(store) as sb: requests.get(sb.url + ...)`."""

    def __init__(self, store: Store, host: str = "127.0.0.1", port: int = 0,
                 jira_deployment: str = "cloud") -> None:
        self.app = App(store, jira_deployment)
        handler = type("Handler", (_Handler,), {"app": self.app})
        self._server = _Server((host, port), handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        """The variables of docs/design.md that point a client at this sandbox."""
        person = self.app.store.people[self.app.store.jira_user_pid]
        env = {"JIRA_URL": self.url}
        if self.app.jira_deployment == "cloud":
            env |= {"JIRA_EMAIL": person.email, "JIRA_API_TOKEN": JIRA_API_TOKEN}
        elif getattr(self.app, "jira_oauth", False):
            from sandbox import jira_oauth

            env |= jira_oauth.env()
        else:
            env |= {"JIRA_PAT": JIRA_PAT}
        return env | {"GITHUB_API_URL": f"{self.url}/api/v3", "GITHUB_TOKEN": GITHUB_TOKEN}

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
