"""The connectors' HTTP client fails fast and says why: a refused connection, an unknown host, an untrusted
certificate, a client error, an answer that is not JSON; and reports the waits it makes. Each test counts
attempts (the figure that made today's failures take minutes), with a loose time bound beside it."""

from __future__ import annotations

import time
from typing import ClassVar

import pytest

from connectors.http import (
    ApiError,
    AuthError,
    HttpClient,
    HttpSettings,
    InvalidPayloadError,
    NotFoundError,
    UnreachableError,
)
from tests.scripted import ScriptedServer

TOKEN = "s3cr3t-token-value"
DEFAULTS = HttpSettings()  # the settings a user runs with: only the waits are what they are


def client(url: str, settings: HttpSettings = DEFAULTS, **kw) -> HttpClient:
    return HttpClient(url, {"Authorization": f"Bearer {TOKEN}"}, settings, service="GitHub",
                      url_hint="GITHUB_API_URL", **kw)


def one_line(e: BaseException) -> str:
    text = str(e)
    assert "\n" not in text and TOKEN not in text and "Traceback" not in text
    return text


def test_refused_connection_fails_in_seconds_naming_the_cause(closed_port):
    c = client(f"http://127.0.0.1:{closed_port}")
    started = time.monotonic()
    with pytest.raises(UnreachableError) as e:
        c.get_json("/api/v3/user/orgs")
    took = time.monotonic() - started
    msg = one_line(e.value)
    assert msg.startswith(f"GitHub unreachable: 127.0.0.1:{closed_port} refused the connection on GET "
                          "/api/v3/user/orgs (3 attempts")
    assert "check GITHUB_API_URL" in msg
    assert e.value.cause == "refused" and not e.value.retryable
    assert c.log.total == DEFAULTS.connect_retries + 1 == 3  # not max_retries (8) with minutes of back-off
    assert took < 20


def test_unknown_host_fails_in_seconds_naming_the_cause():
    c = client("https://flowlens-nowhere.invalid/api/v3")
    started = time.monotonic()
    with pytest.raises(UnreachableError) as e:
        c.get_json("/user/orgs")
    msg = one_line(e.value)
    assert "the host name 'flowlens-nowhere.invalid' does not resolve on GET /api/v3/user/orgs" in msg
    assert "check GITHUB_API_URL and the machine's DNS" in msg and "refused" not in msg
    assert e.value.cause == "dns" and not e.value.retryable and c.log.total == 3
    assert time.monotonic() - started < 20


def test_untrusted_certificate_fails_at_once_and_names_the_ca_bundle(tls_server, monkeypatch):
    url, served = tls_server
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    c = client(url)
    started = time.monotonic()
    with pytest.raises(UnreachableError) as e:
        c.get_json("/api/v3/user/orgs")
    msg = one_line(e.value)
    assert msg.startswith("GET /api/v3/user/orgs: the TLS certificate of 127.0.0.1:")
    assert "not trusted" in msg and "REQUESTS_CA_BUNDLE" in msg and "ca_bundle" in msg
    assert "unreachable" not in msg  # today it read "unreachable", after 4-5 minutes
    assert e.value.cause == "tls" and not e.value.retryable
    assert c.log.total == 1 and served == []
    assert time.monotonic() - started < 20


def test_the_ca_bundle_is_configurable(tls_server, self_signed, monkeypatch):
    url, served = tls_server
    cert = str(self_signed[0])
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    assert client(url, HttpSettings(ca_bundle=cert)).get_json("/a") == {"ok": True}
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)  # what README documents for a machine-wide setting
    assert client(url).get_json("/b") == {"ok": True}
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bundle.pem")
    assert client(url, HttpSettings(ca_bundle=cert)).get_json("/c") == {"ok": True}  # the setting wins
    assert served == ["/a", "/b", "/c"]


class Script:
    """Answers request n with steps[n]; repeats the last step; records what it was asked."""

    def __init__(self, *steps: tuple[int, dict[str, str], object]) -> None:
        self.steps, self.seen = list(steps), []

    def __call__(self, request) -> tuple[int, dict[str, str], object]:
        self.seen.append(request.target)
        return self.steps[min(len(self.seen), len(self.steps)) - 1]


@pytest.mark.parametrize("status", [400, 403, 404, 409, 410, 422])
def test_client_errors_are_never_retried(status):
    script = Script((status, {}, {"message": "Validation Failed", "errors": [{"message": "bad field"}]}))
    with ScriptedServer(script) as s, pytest.raises((ApiError, NotFoundError)) as e:
        client(s.url).get_json("/api/v3/repos/a/b/pulls")
    assert len(script.seen) == 1
    assert not e.value.retryable
    msg = one_line(e.value)
    assert msg.startswith("GET /api/v3/repos/a/b/pulls: ") and str(status) in msg


def test_timeouts_and_rate_limits_are_retried_and_flagged_retryable():
    script = Script((408, {}, {"message": "Request Timeout"}), (200, {}, {"ok": 1}))
    fast = HttpSettings(backoff_base_s=0.01, backoff_max_s=0.05, max_retries=2)
    with ScriptedServer(script) as s:
        assert client(s.url, fast).get_json("/x") == {"ok": 1}
        assert len(script.seen) == 2
        failing = Script((503, {}, b"<html><body>down for maintenance</body></html>"))
        with ScriptedServer(failing) as s2, pytest.raises(ApiError) as e:
            client(s2.url, fast).get_json("/y")
    assert len(failing.seen) == 3 and e.value.retryable and e.value.status == 503
    assert one_line(e.value).startswith("GET /y: 503 Service Unavailable after 3 attempts: an HTML page")


def test_auth_error_names_the_request_once_and_ends_one_sentence():
    script = Script((401, {}, {"errorMessages": ["You do not have permission to perform this operation."]}))
    with ScriptedServer(script) as s, pytest.raises(AuthError) as e:
        client(s.url, auth_hint="Check GITHUB_TOKEN.").get_json("/rest/api/3/myself")
    msg = one_line(e.value)
    assert "(401 Unauthorized on GET /rest/api/3/myself)" in msg and "GET GET" not in msg
    assert "operation.." not in msg and msg.endswith("perform this operation. Check GITHUB_TOKEN.")
    assert not e.value.retryable and len(script.seen) == 1


@pytest.mark.parametrize("body,kind,hint", [
    (b"<!DOCTYPE html><html><body>Sign in to the proxy</body></html>", "text/html", "proxy or login page"),
    (b'{"data":{"repository":{"pullRequests":', "application/json", "damaged"),
])
def test_a_200_that_is_not_json_is_refused_in_one_line(body, kind, hint):
    script = Script((200, {"Content-Type": kind}, body))
    with ScriptedServer(script) as s, pytest.raises(InvalidPayloadError) as e:
        client(s.url).get_json("/api/v3/repos/a/b/pulls", params={"page": 2})
    msg = one_line(e.value)
    assert msg.startswith(f"GET /api/v3/repos/a/b/pulls: 200 with a body that is not JSON ({kind}")
    assert hint in msg and not e.value.retryable and len(script.seen) == 1


def test_rate_limit_waits_are_reported_with_what_and_until_when():
    reset = int(time.time()) + 2
    script = Script((403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
                     {"message": "API rate limit exceeded for user ID 1."}), (200, {}, {"ok": 1}))
    waits: list[dict] = []
    with ScriptedServer(script) as s:
        c = client(s.url)
        c.on_wait = waits.append
        assert c.get_json("/api/v3/repos/a/b") == {"ok": 1}
    assert len(waits) == 1
    w = waits[0]
    assert w["event"] == "wait" and "rate limit" in w["reason"] and w["endpoint"] == "GET /api/v3/repos/a/b"
    assert 1 <= w["seconds"] <= 4 and w["until"][:4].isdigit() and "T" in w["until"]


def test_back_off_is_capped():
    settings = HttpSettings(backoff_base_s=1.0, backoff_max_s=3.0, secondary_min_wait_s=2.0,
                            secondary_max_wait_s=5.0)
    c = client("http://127.0.0.1:9", settings)

    class Resp:
        status_code = 429
        headers: ClassVar[dict[str, str]] = {}
        text = '{"message": "You have exceeded a secondary rate limit"}'

        def json(self):
            return {"message": "You have exceeded a secondary rate limit"}

    waits = [c._retry_wait(Resp(), attempt, frozenset({429})) for attempt in range(12)]
    assert max(waits) <= 5.0 and waits[0] >= 2.0
    Resp.status_code, Resp.text = 502, ""
    assert max(c._retry_wait(Resp(), attempt, frozenset({502})) for attempt in range(20)) <= 3.0 * 1.5
