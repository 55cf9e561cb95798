"""A polite HTTP client shared by the connectors: time-outs, retries, rate limits, safe errors.

- 429/503 (and GitHub's 403 secondary limit): wait what `Retry-After` or the rate-limit reset asks,
  never less; without either, exponential backoff with jitter (GitHub's secondary limit: at least
  `secondary_min_wait_s`, as GitHub documents). One wait pauses every thread of the client.
- 5xx and broken connections: exponential backoff with jitter, bounded retries.
- Primary budgets (`x-ratelimit-remaining/reset`): slow down as the budget runs low, wait for the
  reset when it is out.
- Errors are one line naming the method, the endpoint and the status; tokens never appear in them.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ConnectorError(Exception):
    """A failure a user can act on; the message is one line."""

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = dict(headers or {})  # the failing response's headers, when there was one


class AuthError(ConnectorError):
    pass


class NotFoundError(ConnectorError):
    pass


class ApiError(ConnectorError):
    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass
class HttpSettings:
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    max_retries: int = 8
    backoff_base_s: float = 1.0
    backoff_max_s: float = 120.0
    secondary_min_wait_s: float = 60.0  # GitHub: without Retry-After, wait at least a minute
    max_in_flight: int = 4
    low_budget: int = 50  # below this many requests left, spread the rest until the reset
    user_agent: str = "flowlens/0.1 (+https://github.com/flowlens)"


@dataclass
class RequestLog:
    """What a client did, for metadata and benchmarks."""

    requests: Counter = field(default_factory=Counter)  # endpoint label -> requests sent (retries included)
    retries: int = 0
    waited_s: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.requests.values())


class HttpClient:
    """One API's client: `get_json`, `post_json`, `request`; thread-safe."""

    def __init__(self, base_url: str, headers: dict[str, str], settings: HttpSettings | None = None,
                 service: str = "API", auth_hint: str = "", on_request: Callable[[str, int], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.settings = settings or HttpSettings()
        self.service = service
        self.auth_hint = auth_hint
        self.log = RequestLog()
        self._on_request = on_request
        self._sleep = sleep
        self._secrets = [v.split(" ", 1)[-1] for v in headers.values() if v]
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(self.settings.max_in_flight, 4), max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update({"User-Agent": self.settings.user_agent, "Accept": "application/json", **headers})
        self._slots = threading.BoundedSemaphore(self.settings.max_in_flight)
        self._lock = threading.Lock()
        self._not_before = 0.0  # monotonic instant before which no request may start
        self._rng = random.Random()

    @property
    def session(self) -> requests.Session:
        """The authenticated session, for libraries (the `jira` package) that want one."""
        return self._session

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"

    def get_json(self, path: str, params: dict[str, Any] | None = None, label: str | None = None) -> Any:
        return self.request("GET", path, params=params, label=label).json()

    def post_json(self, path: str, body: Any, label: str | None = None) -> Any:
        return self.request("POST", path, json=body, label=label).json()

    def request(self, method: str, path: str, *, label: str | None = None,
                ok: frozenset[int] = frozenset({200, 201, 204, 304}), retry_on: frozenset[int] = RETRY_STATUSES,
                **kwargs: Any) -> requests.Response:
        """Send with retries; returns a response whose status is in `ok`, else raises a ConnectorError."""
        url = self.url(path)
        label = label or f"{method} {urlsplit(url).path}"
        s = self.settings
        attempt = 0
        while True:
            self._wait_turn()
            with self._slots:
                with self._lock:
                    self.log.requests[label] += 1
                try:
                    resp = self._session.request(method, url, timeout=(s.connect_timeout_s, s.read_timeout_s),
                                                 **kwargs)
                    if resp.status_code in ok:
                        _ = resp.content  # read the whole body now: a reset mid-body raises here, and is retried
                except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as e:
                    if attempt >= s.max_retries:
                        raise ConnectorError(self._redact(
                            f"{method} {label}: {self.service} unreachable after {attempt + 1} attempts "
                            f"({type(e).__name__}); check the URL and the network")) from None
                    attempt += 1
                    self._backoff(attempt)
                    continue
            if self._on_request:
                self._on_request(label, resp.status_code)
            self._note_budget(resp)
            if resp.status_code in ok:
                return resp
            wait = self._retry_wait(resp, attempt, retry_on)
            if wait is None or attempt >= s.max_retries:
                raise self._error(method, label, resp, attempt)
            attempt += 1
            with self._lock:
                self.log.retries += 1
            self._pause(wait)

    # -- waiting -------------------------------------------------------------------------------
    def _wait_turn(self) -> None:
        delay = self._not_before - time.monotonic()
        if delay > 0:
            with self._lock:
                self.log.waited_s += delay
            self._sleep(delay)

    def _pause(self, seconds: float) -> None:
        """Hold every thread of this client for `seconds` (a rate limit applies to the token, not the thread)."""
        with self._lock:
            self._not_before = max(self._not_before, time.monotonic() + seconds)

    def _backoff(self, attempt: int) -> None:
        s = self.settings
        self._pause(min(s.backoff_max_s, s.backoff_base_s * 2 ** (attempt - 1)) * (0.5 + self._rng.random()))

    def _retry_wait(self, resp: requests.Response, attempt: int, retry_on: frozenset[int]) -> float | None:
        s = self.settings
        backoff = min(s.backoff_max_s, s.backoff_base_s * 2 ** attempt) * (0.5 + self._rng.random())
        asked = _retry_after(resp) or _reset_wait(resp)
        if resp.status_code == 403 and _is_rate_limited(resp):
            if asked is not None:
                return asked + 0.1
            return max(s.secondary_min_wait_s * 2 ** attempt, backoff) if _is_secondary(resp) else backoff
        if resp.status_code not in retry_on:
            return None
        if asked is not None:
            return max(asked + 0.1, 0.0)
        if resp.status_code == 429 and _is_secondary(resp):
            return max(s.secondary_min_wait_s * 2 ** attempt, backoff)
        return backoff

    def _note_budget(self, resp: requests.Response) -> None:
        remaining = resp.headers.get("x-ratelimit-remaining")
        if remaining is None or not remaining.isdigit() or resp.status_code in (403, 429):
            return
        left, reset_in = int(remaining), _reset_wait(resp)
        if reset_in is None or left >= self.settings.low_budget:
            return
        # Spread what is left over the time to the reset; when nothing is left, wait for the reset.
        self._pause(reset_in + 1 if left == 0 else reset_in / max(left, 1))

    # -- errors --------------------------------------------------------------------------------
    def _error(self, method: str, label: str, resp: requests.Response, attempt: int) -> ConnectorError:
        err = self._make_error(method, label, resp, attempt)
        err.headers = dict(resp.headers)  # connectors read scope / SSO headers to explain the failure
        return err

    def _make_error(self, method: str, label: str, resp: requests.Response, attempt: int) -> ConnectorError:
        detail = _error_detail(resp)
        where = f"{method} {label}"
        if resp.status_code == 401:
            return AuthError(self._redact(f"{self.service} rejected the credentials (401 on {where}): "
                                          f"{detail}. {self.auth_hint}".strip()))
        if resp.status_code == 404:
            return NotFoundError(self._redact(f"{where}: not found (404): {detail}"))
        tries = f" after {attempt + 1} attempts" if attempt else ""
        body = _json_or_none(resp)
        return ApiError(self._redact(f"{where} failed with {resp.status_code}{tries}: {detail}"),
                        resp.status_code, body)

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret and len(secret) > 3:
                text = text.replace(secret, "***")
        return " ".join(text.split())


def _json_or_none(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _error_detail(resp: requests.Response) -> str:
    body = _json_or_none(resp)
    if isinstance(body, dict):
        parts = list(body.get("errorMessages") or [])
        errors = body.get("errors")
        if isinstance(errors, dict):
            parts += [f"{k}: {v}" for k, v in errors.items()]
        elif isinstance(errors, list):
            parts += [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors]
        if body.get("message"):
            parts.append(str(body["message"]))
        if parts:
            return "; ".join(parts)[:300]
    text = (resp.text or resp.reason or "").strip()
    return " ".join(text.split())[:200] or f"HTTP {resp.status_code}"


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _reset_wait(resp: requests.Response) -> float | None:
    """Seconds to the rate-limit reset: GitHub sends epoch seconds, Jira an ISO timestamp."""
    value = resp.headers.get("x-ratelimit-reset")
    if not value:
        return None
    try:
        reset = float(value) if value.replace(".", "", 1).isdigit() else \
            datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None
    return max(reset - time.time(), 0.0)


def _is_secondary(resp: requests.Response) -> bool:
    body = _json_or_none(resp)
    return isinstance(body, dict) and "secondary rate limit" in str(body.get("message", "")).lower()


def _is_rate_limited(resp: requests.Response) -> bool:
    return _is_secondary(resp) or resp.headers.get("x-ratelimit-remaining") == "0"
