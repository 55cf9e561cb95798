"""The Jira connector connects through the `jira` package (`jira.JIRA`), and every request it sends, the package's
and the bulk paths', goes through the package's authenticated session with our retries, counts and errors."""

from __future__ import annotations

import copy

import jira
import pytest

from connectors.http import ApiError, AuthError, HttpSettings
from connectors.jira import JiraSettings, connect
from tests.scripted import ScriptedServer

FAST = HttpSettings(backoff_base_s=0.02, backoff_max_s=0.1, max_retries=4, connect_timeout_s=2, read_timeout_s=10)


@pytest.fixture(scope="module")
def small_store():
    from sandbox import generator

    return generator.generate("small", 1)


def _sandbox(store, deployment):
    from sandbox.server import Sandbox

    return Sandbox(copy.deepcopy(store), port=0, jira_deployment=deployment)


@pytest.mark.parametrize("deployment,scheme", [("cloud", "Basic"), ("datacenter", "Bearer")])
def test_a_run_connects_with_jira_JIRA_and_sends_everything_through_its_session(small_store, tmp_path,
                                                                                 deployment, scheme):
    with _sandbox(small_store, deployment) as sb:
        src = connect(JiraSettings.from_env(sb.env(), http=FAST))
        assert isinstance(src.jira, jira.JIRA)
        assert src.client.session is src.jira._session  # the bulk paths' session is the package's own
        src.extract_site(tmp_path)
        results = src.extract_projects(tmp_path, {k: None for k in src.discover_projects()})
        assert all(not isinstance(r, Exception) for r in results.values())
        log = list(sb.app.stats.log)
        routes = [r["route"] for r in log]
        # the package read the site: serverInfo, then myself (the time zone), fields, statuses, link types
        assert routes[:2] == ["jira.serverInfo", "jira.myself"]
        assert {"jira.field", "jira.status", "jira.issueLinkType", "jira.project"} <= set(routes)
        assert {"jira.search_jql" if deployment == "cloud" else "jira.search"} <= set(routes)
        # every request, the search pages and changelogs too, came with the package's headers and the auth
        for r in log:
            assert r["auth"] == scheme, r
            assert r["headers"].get("x-atlassian-token") == "no-check", r
        # one count: ours equals what the sandbox served
        assert src.client.log.total == sum(sb.app.stats.requests.values()) == len(log)


def test_the_packages_calls_get_our_retries_and_one_line_errors():
    """A 503 on the package's `myself` is retried by our client (the package's retries are off); a 400 on its
    `field` is not retried, and its message names the method, the path and Jira's words."""
    seen: list[str] = []
    busy = {"left": 2}

    def answer(r):
        seen.append(f"{r.method} {r.path}")
        if r.path == "/rest/api/2/serverInfo":
            return 200, {}, {"deploymentType": "Server", "versionNumbers": [9, 12, 0], "version": "9.12.0"}
        if r.path == "/rest/api/2/myself":
            if busy["left"]:
                busy["left"] -= 1
                return 503, {"Retry-After": "0"}, {"errorMessages": ["Service Unavailable"]}
            return 200, {}, {"name": "me", "timeZone": "Europe/Berlin"}
        if r.path == "/rest/api/2/field":
            return 400, {}, {"errorMessages": ["Field listing refused by a plugin."], "errors": {}}
        return 404, {}, {"errorMessages": ["null for uri"]}

    with ScriptedServer(answer) as server:
        src = connect(JiraSettings(url=server.url, pat="pat-secret-123", http=FAST))
        assert str(src.zone) == "Europe/Berlin"
        assert seen == ["GET /rest/api/2/serverInfo"] + ["GET /rest/api/2/myself"] * 3
        assert src.client.log.requests["GET /rest/api/2/myself"] == 3
        with pytest.raises(ApiError) as e:
            src.fields()
        assert seen.count("GET /rest/api/2/field") == 1  # a 4xx is never retried
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith("GET /rest/api/2/field: 400")
        assert "Field listing refused by a plugin." in msg and "pat-secret-123" not in msg


def test_refused_credentials_on_the_packages_call_name_the_variables():
    def answer(r):
        if r.path == "/rest/api/2/serverInfo":
            return 200, {}, {"deploymentType": "Cloud", "versionNumbers": [1001, 0, 0]}
        return 401, {}, {"errorMessages": ["Client must be authenticated to access this resource."]}

    with ScriptedServer(answer) as server:
        with pytest.raises(AuthError, match=r"401.* on GET /rest/api/3/myself.*JIRA_EMAIL and JIRA_API_TOKEN") as e:
            connect(JiraSettings(url=server.url, email="me@x.org", api_token="tok-secret-9", http=FAST))
        assert "tok-secret-9" not in str(e.value)


def test_oauth1_signed_requests_are_verified_by_the_sandbox(small_store, tmp_path):
    """Data Center with an application link: the package signs every request (RSA-SHA1), the bulk paths too,
    and the sandbox verifies each signature with oauthlib; a key the site does not know is refused in one line."""
    with _sandbox(small_store, "datacenter") as sb:
        sb.app.jira_oauth = True
        env = sb.env()
        assert "JIRA_PAT" not in env and env["JIRA_OAUTH_CONSUMER_KEY"]
        src = connect(JiraSettings.from_env(env, http=FAST))
        key = src.discover_projects()[0]
        result = src.extract_project(tmp_path, key, None)
        assert result.records["issues"] == sum(1 for i in sb.app.store.jira_issues if i.project == key)
        log = list(sb.app.stats.log)
        assert {r["auth"] for r in log} == {"OAuth"}
        assert [r["route"] for r in log][:3] == ["jira.myself", "jira.serverInfo", "jira.myself"]  # the package's check
        assert src.client.log.total == len(log)

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()).decode()
        with pytest.raises(AuthError, match=r"401.*GET /rest/api/2/myself.*JIRA_OAUTH") as e:
            connect(JiraSettings.from_env({**env, "JIRA_OAUTH_PRIVATE_KEY": other}, http=FAST))
        assert "\n" not in str(e.value) and env["JIRA_OAUTH_ACCESS_TOKEN_SECRET"] not in str(e.value)
