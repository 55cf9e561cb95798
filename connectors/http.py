"""A polite HTTP client for both connectors: time-outs, retries, rate limits, one-line errors.

- 429/503/408 (and GitHub's 403 secondary limit): wait what `Retry-After` or the rate-limit reset asks,
  never less; without either, exponential backoff with jitter (GitHub's secondary limit: at least
  `secondary_min_wait_s`, as GitHub documents). One wait pauses every thread of the client, and each
  wait is reported to `on_wait` (what it waits for, until when).
- 5xx, read time-outs and connections reset mid-answer: exponential backoff with jitter, capped.
- A refused connection, an unknown host and a connect time-out: `connect_retries` brief retries, then
  an `UnreachableError` naming the cause; an untrusted TLS certificate: at once, naming the CA bundle.
- Any other 4xx is never retried. A 2xx whose body is not JSON: `InvalidPayloadError`, not retried.
- Errors are one line naming the method, the path and the status; tokens never appear in them.
- Requests are counted per endpoint label, in total, and per job (`tally`), exactly while threads share
  the client.
"""

from __future__ import annotations

import email.utils
import os
import random
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class ConnectorError(Exception):
    """A failure a user can act on; the message is one line. `retryable`: worth retrying the whole step
    later (a transient fault that outlived the client's own retries), never for a 4xx or a user mistake."""

    retryable: bool = False

    def __init__(self, message: str, headers: dict[str, str] | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.headers = dict(headers or {})  # the failing response's headers, when there was one
        if retryable is not None:
            self.retryable = retryable


class AuthError(ConnectorError):
    pass


class NotFoundError(ConnectorError):
    pass


class ApiError(ConnectorError):
    def __init__(self, message: str, status: int | None = None, body: Any = None,
                 retryable: bool | None = None) -> None:
        if retryable is None:
            retryable = status is not None and (status in (408, 429) or status >= 500)
        super().__init__(message, retryable=retryable)
        self.status = status
        self.body = body


class InvalidPayloadError(ConnectorError):
    """An answer that lacks what the API promises (not JSON, a required field missing): never retried."""


class UnreachableError(ConnectorError):
    """No HTTP answer at all; `cause` is refused, dns, tls, connect_timeout, timeout or reset."""

    def __init__(self, message: str, cause: str, retryable: bool = False) -> None:
        super().__init__(message, retryable=retryable)
        self.cause = cause


@dataclass
class HttpSettings:
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    max_retries: int = 8  # for 5xx, 408/429, rate limits, read time-outs and resets
    connect_retries: int = 2  # for a refused connection, an unknown host, a connect time-out
    connect_backoff_s: float = 0.5
    backoff_base_s: float = 1.0
    backoff_max_s: float = 120.0  # cap of any computed back-off
    secondary_min_wait_s: float = 60.0  # GitHub: without Retry-After, wait at least a minute
    secondary_max_wait_s: float = 600.0  # cap of the secondary limit's growing wait
    max_wait_s: float = 3900.0  # a server asking for a longer wait (beyond GitHub's hourly reset) fails
    max_in_flight: int = 4
    low_budget: int = 50  # below this many requests left, spread the rest until the reset
    report_wait_s: float = 1.0  # waits at least this long are reported to `on_wait`
    ca_bundle: str | None = None  # CA bundle file for TLS; None: REQUESTS_CA_BUNDLE, else certifi's
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
                 sleep: Callable[[float], None] = time.sleep, url_hint: str = "the URL",
                 secrets: Iterable[str] = (), session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.settings = settings or HttpSettings()
        self.service = service
        self.auth_hint = auth_hint
        self.url_hint = url_hint  # what a user changes when the host is wrong, e.g. "GITHUB_API_URL"
        self.log = RequestLog()
        self.on_wait: Callable[[dict[str, Any]], None] | None = None  # gets {"event": "wait", ...}
        self._on_request = on_request
        self._sleep = sleep
        # redacted from every message: header credentials, and those an auth object carries (`secrets`)
        self._secrets = [v.split(" ", 1)[-1] for v in headers.values() if v] + [x for x in secrets if x]
        self._tls = threading.local()  # per thread: the tallies open in it (see `tally`)
        # `session`: a library's own authenticated session (the `jira` package's: Basic, PAT, OAuth1, Kerberos
        # live in its `auth`); we send through `requests.Session.request` on it, so its own retrying override
        # (if any) is bypassed and the retries, waits, counts and errors below are ours.
        self._session = session if session is not None else requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(self.settings.max_in_flight, 4), max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update({"User-Agent": self.settings.user_agent, "Accept": "application/json", **headers})
        if self.settings.ca_bundle:
            self._session.verify = self.settings.ca_bundle
        self._slots = threading.BoundedSemaphore(self.settings.max_in_flight)
        self._lock = threading.Lock()
        self._not_before = 0.0  # monotonic instant before which no request may start
        self._rng = random.Random()

    @property
    def session(self) -> requests.Session:
        """The authenticated session the client sends through."""
        return self._session

    @contextmanager
    def tally(self, counter: Counter | None = None) -> Iterator[Counter]:
        """Count by endpoint label the requests this thread sends inside the block, retries included, whatever
        other threads send meanwhile. Pass one Counter to several threads' blocks to count one job across them."""
        counter = Counter() if counter is None else counter
        open_ = self._tls.__dict__.setdefault("tallies", [])
        open_.append(counter)
        try:
            yield counter
        finally:
            open_.pop()  # blocks nest within a thread

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"

    def get_json(self, path: str, params: dict[str, Any] | None = None, label: str | None = None) -> Any:
        return json_of(self.request("GET", path, params=params, label=label))

    def post_json(self, path: str, body: Any, label: str | None = None) -> Any:
        return json_of(self.request("POST", path, json=body, label=label))

    def request(self, method: str, path: str, *, label: str | None = None,
                ok: frozenset[int] = frozenset({200, 201, 204, 304}), retry_on: frozenset[int] = RETRY_STATUSES,
                **kwargs: Any) -> requests.Response:
        """Send with retries; returns a response whose status is in `ok`, else raises a ConnectorError.
        `label` groups requests in the log (default: method and path)."""
        url = self.url(path)
        where = f"{method} {urlsplit(url).path}"
        label = label or where
        s = self.settings
        if s.ca_bundle:
            kwargs.setdefault("verify", s.ca_bundle)  # beats REQUESTS_CA_BUNDLE, which requests prefers
        attempt = connect_failures = 0
        started = time.monotonic()
        while True:
            self._wait_turn()
            with self._slots:
                with self._lock:
                    self.log.requests[label] += 1
                    for counter in getattr(self._tls, "tallies", ()):
                        counter[label] += 1
                try:
                    resp = requests.Session.request(self._session, method, url,
                                                    timeout=(s.connect_timeout_s, s.read_timeout_s), **kwargs)
                    if resp.status_code in ok:
                        _ = resp.content  # read the whole body now: a reset mid-body raises here, and is retried
                except requests.RequestException as e:
                    cause = transport_cause(e)
                    if cause == "tls":
                        raise self._unreachable(cause, where, url, e, 1, started) from None
                    if cause in ("refused", "dns", "connect_timeout"):
                        if connect_failures >= s.connect_retries:
                            raise self._unreachable(cause, where, url, e, connect_failures + 1, started) from None
                        connect_failures += 1
                        self._pause(s.connect_backoff_s * 2 ** (connect_failures - 1), None, where)
                        continue
                    if attempt >= s.max_retries:
                        raise self._unreachable(cause, where, url, e, attempt + 1, started) from None
                    attempt += 1
                    self._backoff(attempt, where)
                    continue
            if self._on_request:
                self._on_request(label, resp.status_code)
            self._note_budget(resp, where)
            if resp.status_code in ok:
                resp.flowlens_where = where  # for json_of's error message
                return resp
            wait = self._retry_wait(resp, attempt, retry_on)
            if wait is None or attempt >= s.max_retries:
                raise self._error(method, where, resp, attempt)
            if wait > s.max_wait_s:
                raise ApiError(self._redact(
                    f"{where}: {resp.status_code} {resp.reason or ''}: {self.service} asks to wait "
                    f"{wait / 60:.0f} minutes, more than the {s.max_wait_s / 60:.0f} allowed; run again later"),
                    resp.status_code, retryable=True)
            attempt += 1
            with self._lock:
                self.log.retries += 1
            self._pause(wait, _wait_reason(resp, self.service), where)

    # -- waiting -------------------------------------------------------------------------------
    def _wait_turn(self) -> None:
        delay = self._not_before - time.monotonic()
        if delay > 0:
            with self._lock:
                self.log.waited_s += delay
            self._sleep(delay)

    def _pause(self, seconds: float, reason: str | None = None, endpoint: str = "") -> None:
        """Hold every thread of this client for `seconds` (a rate limit applies to the token, not the
        thread); a wait with a reason that long enough is reported."""
        with self._lock:
            until = max(self._not_before, time.monotonic() + seconds)
            longer = until > self._not_before + 0.5
            self._not_before = until
        if reason and longer and self.on_wait and seconds >= self.settings.report_wait_s:
            when = datetime.now(UTC).timestamp() + seconds
            try:
                self.on_wait({"event": "wait", "reason": reason, "seconds": round(seconds, 1), "endpoint": endpoint,
                              "until": datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds")})
            except Exception:  # noqa: BLE001, S110 - a broken progress display never fails a request
                pass

    def pause(self, seconds: float, reason: str, endpoint: str) -> None:
        """A wait a connector decided (GraphQL's rate limit in the body): every thread waits, it is reported."""
        self._pause(seconds, reason, endpoint)

    def _backoff(self, attempt: int, where: str) -> None:
        s = self.settings
        self._pause(min(s.backoff_max_s, s.backoff_base_s * 2 ** (attempt - 1)) * (0.5 + self._rng.random()),
                    f"{self.service} did not answer in full; retry {attempt} of {s.max_retries}", where)

    def _retry_wait(self, resp: requests.Response, attempt: int, retry_on: frozenset[int]) -> float | None:
        s = self.settings
        backoff = min(s.backoff_max_s, s.backoff_base_s * 2 ** attempt) * (0.5 + self._rng.random())
        limited = _is_rate_limited(resp)
        # every GitHub answer carries the hourly reset: it is a wait only for a rate limit
        asked = _retry_after(resp) or (_reset_wait(resp) if limited or resp.status_code == 429 else None)
        secondary = min(s.secondary_max_wait_s, s.secondary_min_wait_s * 2 ** attempt)
        if resp.status_code == 403 and limited:
            if asked is not None:
                return asked + 0.1
            return max(secondary, backoff) if _is_secondary(resp) else backoff
        if resp.status_code not in retry_on:
            return None
        if asked is not None:
            return max(asked + 0.1, 0.0)
        if resp.status_code == 429 and _is_secondary(resp):
            return max(secondary, backoff)
        return backoff

    def _note_budget(self, resp: requests.Response, where: str) -> None:
        remaining = resp.headers.get("x-ratelimit-remaining")
        if remaining is None or not remaining.isdigit() or resp.status_code in (403, 429):
            return
        left, reset_in = int(remaining), _reset_wait(resp)
        if reset_in is None or left >= self.settings.low_budget:
            return
        # Spread what is left over the time to the reset; when nothing is left, wait for the reset.
        if left == 0:
            self._pause(reset_in + 1, f"{self.service} rate limit used up: waiting for its reset", where)
        else:
            self._pause(reset_in / max(left, 1), f"{self.service} rate limit low ({left} left): spreading them "
                        "to the reset", where)

    # -- errors --------------------------------------------------------------------------------
    def _error(self, method: str, where: str, resp: requests.Response, attempt: int) -> ConnectorError:
        err = self._make_error(where, resp, attempt)
        err.headers = dict(resp.headers)  # connectors read scope / SSO headers to explain the failure
        return err

    def _make_error(self, where: str, resp: requests.Response, attempt: int) -> ConnectorError:
        detail = _error_detail(resp)
        status = f"{resp.status_code} {resp.reason}".strip() if resp.reason else str(resp.status_code)
        said = "" if detail.lower() in (str(resp.reason).lower(), f"http {resp.status_code}") else f": {detail}"
        if resp.status_code == 401:
            return AuthError(self._redact(f"{self.service} rejected the credentials ({status} on {where})"
                                          f"{_sentence(said) if said else '.'} {self.auth_hint}".strip()))
        if resp.status_code == 404:
            return NotFoundError(self._redact(f"{where}: not found (404){said}"))
        tries = f" after {attempt + 1} attempts" if attempt else ""
        retryable = resp.status_code in (408, 429) or resp.status_code >= 500
        hint = f"; {self.service} is failing, run again later" if retryable else ""
        return ApiError(self._redact(f"{where}: {status}{tries}{said}{hint}"), resp.status_code,
                        _json_or_none(resp), retryable=retryable)

    def _unreachable(self, cause: str, where: str, url: str, exc: BaseException, attempts: int,
                     started: float) -> UnreachableError:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        took = f"{attempts} attempt{'s' if attempts > 1 else ''} in {time.monotonic() - started:.1f} s"
        svc, fix = self.service, self.url_hint
        if cause == "tls":
            bundle = self.settings.ca_bundle or os.environ.get("REQUESTS_CA_BUNDLE") or \
                os.environ.get("CURL_CA_BUNDLE") or "certifi's default bundle"
            msg = (f"{where}: the TLS certificate of {host}:{port} is not trusted ({_tls_reason(exc)}; CA bundle: "
                   f"{bundle}); if {host} uses your organisation's own CA, point REQUESTS_CA_BUNDLE (or "
                   f"sources.{svc.lower()}.ca_bundle in flowlens.toml) at a PEM file holding it")
            return UnreachableError(self._redact(msg), cause)
        text = {
            "refused": f"{svc} unreachable: {host}:{port} refused the connection on {where} ({took}); check "
                       f"{fix} and that the service is running",
            "dns": f"{svc} unreachable: the host name {host!r} does not resolve on {where} ({took}); check {fix} "
                   f"and the machine's DNS",
            "connect_timeout": f"{svc} unreachable: no connection to {host}:{port} within "
                               f"{self.settings.connect_timeout_s:g} s on {where} ({took}); check {fix}, a proxy "
                               f"or a firewall",
            "timeout": f"{svc} did not answer {where} within {self.settings.read_timeout_s:g} s ({took}); "
                       f"it may be overloaded, run again later",
            "reset": f"{svc} dropped the connection during {where} ({took}): {type(exc).__name__}; "
                     f"run again later",
        }[cause]
        return UnreachableError(self._redact(text), cause, retryable=cause in ("timeout", "reset"))

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret and len(secret) > 3:
                text = text.replace(secret, "***")
        return " ".join(text.split())


def json_of(resp: requests.Response) -> Any:
    """The body as JSON; an answer that is not JSON (an HTML page, a truncated body) is an
    InvalidPayloadError naming the request, the status, the content type and how the body starts."""
    try:
        return resp.json()
    except ValueError:
        pass
    where = getattr(resp, "flowlens_where", None) or f"{resp.request.method} {urlsplit(resp.url).path}"
    kind = resp.headers.get("Content-Type", "no content type").split(";")[0]
    start = " ".join((resp.text or "").split())[:80]
    hint = ("a proxy or login page answered instead of the API: check the URL and the proxy settings"
            if "html" in kind.lower() else "the answer is damaged; if it persists, report it to the service")
    raise InvalidPayloadError(f"{where}: {resp.status_code} with a body that is not JSON ({kind}, "
                              f"{len(resp.content)} bytes: {start!r}); {hint}") from None


def transport_cause(exc: BaseException) -> str:
    """Why a request got no answer: tls, dns, refused, connect_timeout, timeout (read) or reset."""
    chain, seen = [exc], set()
    while chain:
        e = chain.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, (requests.exceptions.SSLError, ssl.SSLError)):
            return "tls"
        if isinstance(e, socket.gaierror) or type(e).__name__ == "NameResolutionError":
            return "dns"
        if isinstance(e, ConnectionRefusedError):
            return "refused"
        if isinstance(e, requests.exceptions.ConnectTimeout) or type(e).__name__ == "ConnectTimeoutError":
            return "connect_timeout"
        chain += [x for x in (getattr(e, "reason", None), e.__cause__, e.__context__, *getattr(e, "args", ()))
                  if isinstance(x, BaseException)]
    if isinstance(exc, (requests.exceptions.ReadTimeout, requests.Timeout)):
        return "timeout"
    return "reset"


def _tls_reason(exc: BaseException) -> str:
    chain: list[BaseException | None] = [exc]
    while chain:
        e = chain.pop()
        if isinstance(e, ssl.SSLCertVerificationError):
            return e.verify_message or "certificate verify failed"
        if isinstance(e, BaseException):
            chain += [getattr(e, "reason", None), e.__cause__, e.__context__,
                      *[a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]]
    text = str(exc)
    return "certificate verify failed" if "CERTIFICATE_VERIFY_FAILED" in text else text.split(" (")[0][:120]


def _sentence(text: str) -> str:
    """A detail ending in exactly one full stop (details often carry their own)."""
    return text.rstrip(" .") + "."


def _wait_reason(resp: requests.Response, service: str) -> str:
    status = resp.status_code
    if _is_secondary(resp):
        return f"{service} secondary rate limit ({status})"
    if _is_rate_limited(resp) or status == 429:
        return f"{service} rate limit ({status})"
    if status == 503:
        return f"{service} unavailable (503)"
    return f"{service} answered {status}; retrying"


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
        if body.get("errorMessage"):  # Jira Service Management's error shape
            parts.append(str(body["errorMessage"]))
        if parts:
            return "; ".join(parts)[:300]
    text = (resp.text or resp.reason or "").strip()
    if "<html" in text[:200].lower():
        return f"an HTML page ({resp.reason or 'no reason given'})"
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
