"""The connectors' HTTP client against a scripted loopback server: waits, retries, errors, redaction."""

from __future__ import annotations

import socket
import time

import pytest

from connectors.http import ApiError, AuthError, ConnectorError, HttpClient, HttpSettings, NotFoundError
from tests.scripted import ScriptedServer

TOKEN = "s3cr3t-token-value"
FAST = HttpSettings(backoff_base_s=0.01, backoff_max_s=0.05, secondary_min_wait_s=0.3, max_retries=4)


class Script:
    """Answers request n with steps[n] (status, headers, body); repeats the last step."""

    def __init__(self, *steps: tuple[int, dict[str, str], object]) -> None:
        self.steps = list(steps)
        self.times: list[float] = []

    def __call__(self, request: object) -> tuple[int, dict[str, str], object]:
        self.times.append(time.monotonic())
        return self.steps[min(len(self.times), len(self.steps)) - 1]


@pytest.fixture
def serve():
    servers = []

    def start(script: Script) -> str:
        servers.append(ScriptedServer(script).__enter__())
        return servers[-1].url

    yield start
    for s in servers:
        s.__exit__()


def client(url: str, **kw) -> HttpClient:
    return HttpClient(url, {"Authorization": f"Bearer {TOKEN}"}, FAST, service="Test", **kw)


def test_retry_after_is_honoured_never_sooner(serve):
    script = Script((429, {"Retry-After": "1"}, {"message": "slow down"}), (200, {}, {"ok": True}))
    url = serve(script)
    assert client(url).get_json("/x") == {"ok": True}
    assert len(script.times) == 2
    assert script.times[1] - script.times[0] >= 1.0


def test_secondary_limit_without_retry_after_waits_the_minimum(serve):
    body = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes."}
    script = Script((403, {}, body), (200, {}, {"ok": 1}))
    url = serve(script)
    c = client(url)
    assert c.get_json("/x") == {"ok": 1}
    assert script.times[1] - script.times[0] >= FAST.secondary_min_wait_s
    assert c.log.retries == 1


def test_primary_limit_exhausted_waits_for_reset(serve):
    reset = str(int(time.time()) + 2)
    script = Script((200, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}, [1]), (200, {}, [2]))
    url = serve(script)
    c = client(url)
    assert c.get_json("/a") == [1]
    assert c.get_json("/b") == [2]
    assert script.times[1] - script.times[0] >= 1.0  # the reset was 1-2 s away when the budget ran out


def test_server_errors_are_retried_then_fail_with_one_line(serve):
    url = serve(Script((502, {"Content-Type": "text/html"}, b"<html>\n<h1>502 Bad Gateway</h1>\n</html>")))
    with pytest.raises(ApiError) as e:
        client(url).get_json("/rest/api/3/search/jql")
    msg = str(e.value)
    assert "\n" not in msg
    assert "GET /rest/api/3/search/jql" in msg and "502" in msg and "5 attempts" in msg


def test_not_retried_client_errors(serve):
    script = Script((400, {}, {"errorMessages": ["Error in the JQL Query: bad"], "errors": {}}))
    url = serve(script)
    with pytest.raises(ApiError, match="Error in the JQL Query: bad"):
        client(url).get_json("/search")
    assert len(script.times) == 1


def test_auth_error_names_the_fix_and_hides_the_token(serve):
    url = serve(Script((401, {}, {"message": f"Bad credentials for {TOKEN}"})))
    with pytest.raises(AuthError) as e:
        client(url, auth_hint="Set GITHUB_TOKEN to a valid token.").get_json("/user")
    assert "Set GITHUB_TOKEN" in str(e.value)
    assert TOKEN not in str(e.value)


def test_not_found(serve):
    url = serve(Script((404, {}, {"message": "Not Found"})))
    with pytest.raises(NotFoundError, match="not found"):
        client(url).get_json("/repos/a/b")


def test_unreachable_host_is_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    c = HttpClient(f"http://127.0.0.1:{port}", {}, HttpSettings(connect_retries=1, connect_backoff_s=0.01),
                   service="Jira")
    with pytest.raises(ConnectorError, match=r"^Jira unreachable: 127.0.0.1:\d+ refused the connection on GET "
                       r"/rest/api/3/serverInfo \(2 attempts"):
        c.get_json("/rest/api/3/serverInfo")


def test_tally_counts_one_threads_requests_retries_included(serve):
    """Per-job request counts stay exact while other threads share the client (issue 17)."""
    import threading

    seen: list[str] = []

    def answer(request):  # the first request for /mine is a 503
        seen.append(request.path)
        return (503, {}, {"message": "busy"}) if seen.count("/mine") == 1 and request.path == "/mine" \
            else (200, {}, {"ok": 1})

    c = client(serve(answer))
    start = threading.Barrier(2)

    def other() -> None:
        start.wait()
        for _ in range(5):
            c.get_json("/other")

    t = threading.Thread(target=other)
    t.start()
    with c.tally() as mine:
        start.wait()
        c.get_json("/mine")  # the first answer is a 503: retried, both sends count
        c.get_json("/mine")
    t.join()
    assert mine == {"GET /mine": 3}
    assert c.log.total == 8


def test_secrets_of_an_auth_object_are_redacted(serve):
    url = serve(Script((400, {}, {"message": "bad key k3y-in-an-auth-object"})))
    c = HttpClient(url, {}, FAST, service="Jira", secrets=["k3y-in-an-auth-object"])
    with pytest.raises(ApiError) as e:
        c.get_json("/x")
    assert "k3y-in-an-auth-object" not in str(e.value) and "***" in str(e.value)
