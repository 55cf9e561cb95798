"""Jira failures say why, at once: a damaged answer (HTML with 200, truncated JSON, `{}` where a page was due), an
unknown project, an invalid JQL, a missing token and a time Jira never writes each end in one line naming the
method, the path, the status, the item or page and what to do; none is retried."""

from __future__ import annotations

import pytest

from connectors.http import ConnectorError, HttpSettings, InvalidPayloadError
from connectors.jira import JiraSettings, JqlError, UnknownProjectError, connect
from tests.scripted import ScriptedServer

FAST = HttpSettings(backoff_base_s=0.02, backoff_max_s=0.1, max_retries=4, connect_timeout_s=2, read_timeout_s=10)
TOKEN = "sandbox-jira-api-token"


def one_line(e: BaseException) -> str:
    text = str(e)
    assert "\n" not in text and "Traceback" not in text and TOKEN not in text and "max_retries" not in text
    return text


@pytest.fixture(scope="module")
def store():
    from sandbox import generator

    return generator.generate("small", 1)


@pytest.fixture(params=["cloud", "datacenter"])
def sb(request, store):
    import copy

    from sandbox.server import Sandbox

    with Sandbox(copy.deepcopy(store), port=0, jira_deployment=request.param) as sandbox:
        yield sandbox


def aim(sb, kind: str, route: str, after: int = 0) -> None:
    sb.app.set_faults(rate=1.0, kinds=[kind], routes=[route], limit=1, after=after)
    sb.app.reset_stats()


def source(sb, **kw):
    return connect(JiraSettings.from_env(sb.env(), http=FAST, **kw))


def search_route(sb) -> str:
    return "jira.search_jql" if sb.app.jira_deployment == "cloud" else "jira.search"


def search_path(sb) -> str:
    return "GET /rest/api/3/search/jql" if sb.app.jira_deployment == "cloud" else "GET /rest/api/2/search"


def a_project(sb) -> str:
    return max(sb.app.store.jira_projects, key=lambda k: sum(i.project == k for i in sb.app.store.jira_issues))


def test_an_html_page_with_200_on_a_search_page(sb, tmp_path):
    src = source(sb)
    aim(sb, "html_200", search_route(sb))
    with pytest.raises(InvalidPayloadError) as e:
        src.extract_project(tmp_path, a_project(sb), None)
    msg = one_line(e.value)
    assert msg.startswith(f"{search_path(sb)} (search page 1")
    assert "): 200 with a body that is not JSON (text/html" in msg
    assert msg.endswith("a proxy or login page answered instead of the API: check the URL and the proxy settings")
    assert sb.app.stats.requests[search_route(sb)] == 1  # not retried


def test_truncated_json_on_a_later_search_page(sb, tmp_path):
    src = source(sb, page_size=20)
    aim(sb, "malformed_json", search_route(sb), after=1)
    with pytest.raises(InvalidPayloadError) as e:
        src.extract_project(tmp_path, a_project(sb), None)
    msg = one_line(e.value)
    page = "search page 2 after a page token" if sb.app.jira_deployment == "cloud" else "search page 2, startAt=20"
    assert msg.startswith(f"{search_path(sb)} ({page}): 200 with a body that is not JSON (application/json")
    assert "the answer is damaged" in msg
    assert sb.app.stats.requests[search_route(sb)] == 2


def test_an_empty_object_where_a_search_page_was_due(sb, tmp_path):
    src = source(sb, page_size=20)
    aim(sb, "empty_json", search_route(sb), after=1)
    with pytest.raises(InvalidPayloadError) as e:
        src.extract_project(tmp_path, a_project(sb), None)
    msg = one_line(e.value)
    assert msg.startswith(f"{search_path(sb)} (search page 2") and "): 200 without `issues` ('{}')" in msg
    assert "run again" in msg
    assert sb.app.stats.requests[search_route(sb)] == 2


def test_truncated_json_from_bulkfetch(store, tmp_path):
    import copy

    from sandbox.server import Sandbox

    with Sandbox(copy.deepcopy(store), port=0, jira_deployment="cloud") as sb:
        src = source(sb)
        aim(sb, "malformed_json", "jira.bulkfetch")
        long = next(i.project for i in sb.app.store.jira_issues if len(i.histories) > 100)
        with pytest.raises(InvalidPayloadError) as e:
            src.extract_project(tmp_path, long, None)
        msg = one_line(e.value)
        assert msg.startswith("POST /rest/api/3/changelog/bulkfetch (changelogs of ")
        assert "issues): 200 with a body that is not JSON" in msg and sb.app.stats.requests["jira.bulkfetch"] == 1


@pytest.mark.parametrize("kind,route,want", [
    ("html_200", "jira.field", "/field: 200 with a body that is not JSON (text/html"),
    ("malformed_json", "jira.status", "/status: 200 with a body that is not JSON (application/json"),
    ("empty_json", "jira.issueLinkType", "/issueLinkType: 200 with no 'issueLinkTypes' in its JSON"),
])
def test_damaged_catalogues_read_by_the_jira_package(sb, tmp_path, kind, route, want):
    src = source(sb)
    aim(sb, kind, route)
    with pytest.raises(InvalidPayloadError) as e:
        src.extract_site(tmp_path)
    msg = one_line(e.value)
    v = 3 if sb.app.jira_deployment == "cloud" else 2
    assert msg.startswith(f"GET /rest/api/{v}") and want in msg, msg
    assert sb.app.stats.requests[route] == 1


def test_an_html_page_instead_of_server_info_names_jira_url(sb):
    aim(sb, "html_200", "jira.serverInfo")
    with pytest.raises(ConnectorError) as e:
        source(sb)
    msg = one_line(e.value)
    assert "GET /rest/api/2/serverInfo: 200 with a body that is not JSON (text/html" in msg
    assert msg.endswith("check JIRA_URL")


def test_an_unknown_project_and_an_invalid_jql(sb, tmp_path):
    src = source(sb)
    sb.app.reset_stats()
    with pytest.raises(UnknownProjectError) as e:
        src.extract_project(tmp_path, "NOPE", None)
    msg = one_line(e.value)
    assert msg.startswith(f"{search_path(sb)}: 400: Jira does not know project 'NOPE'")
    assert msg.endswith("Check the project keys in flowlens.toml (sources.jira.projects)")
    src.settings.jql = "status = = Done"
    with pytest.raises(JqlError) as e:
        src.extract_project(tmp_path, a_project(sb), None)
    msg = one_line(e.value)
    assert msg.startswith(f"{search_path(sb)}: 400: Jira refused the JQL for project {a_project(sb)}: ")
    assert msg.endswith("Check sources.jira.jql in flowlens.toml")
    assert sb.app.stats.requests[search_route(sb)] == 2  # one each: a 400 is never retried


def test_a_missing_token_names_the_variable():
    with pytest.raises(ConnectorError) as e:
        JiraSettings.from_env({"JIRA_URL": "https://x.atlassian.net", "JIRA_EMAIL": "me@x.org"})
    assert "JIRA_API_TOKEN is not set" in one_line(e.value)


@pytest.mark.parametrize("field,value,want", [
    ("updated", "15/Jan/24 10:30 AM",
     "issue SD-1: fields.updated '15/Jan/24 10:30 AM' is not a time as Jira's REST API writes it"),
    ("created", "Jan 15, 2024", "changelog of issue SD-1: history 7 has created 'Jan 15, 2024'"),
])
def test_a_time_jira_never_writes(tmp_path, field, value, want):
    """A proxy or plugin rewriting times: the issue is named, nothing is guessed, the search is asked once."""
    seen: list[str] = []
    hist = {"id": "7", "created": value if field == "created" else "2024-01-15T10:30:00.000+0000", "items": []}
    issue = {"id": "10001", "key": "SD-1",
             "fields": {"updated": value if field == "updated" else "2024-01-15T10:30:00.000+0000",
                        "status": {"name": "Open"}, "project": {"key": "SD", "projectTypeKey": "software"}},
             "changelog": {"startAt": 0, "maxResults": 1, "total": 1, "histories": [hist]}}

    def answer(r):
        seen.append(r.path)
        if r.path == "/rest/api/2/serverInfo":
            return 200, {}, {"deploymentType": "Server", "versionNumbers": [9, 12, 0]}
        if r.path == "/rest/api/2/myself":
            return 200, {}, {"name": "me", "timeZone": "UTC"}
        if r.path == "/rest/api/2/field":
            return 200, {}, []
        if r.path == "/rest/api/2/search":
            return 200, {}, {"startAt": 0, "maxResults": 100, "total": 1, "issues": [issue]}
        return 404, {}, {"errorMessages": ["null for uri"]}

    with ScriptedServer(answer) as server:
        src = connect(JiraSettings(url=server.url, pat="pat-secret-1", http=FAST))
        with pytest.raises(InvalidPayloadError) as e:
            src.extract_project(tmp_path, "SD", None)
    msg = one_line(e.value)
    assert want in msg and "report it with the issue key" in msg, msg
    assert seen.count("/rest/api/2/search") == 1


@pytest.mark.parametrize("error,retried", [
    (InvalidPayloadError("GET /rest/api/3/search/jql (search page 1): 200 with a body that is not JSON"), False),
    (UnknownProjectError("GET /rest/api/3/search/jql: 400: Jira does not know project 'NOPE'", 400), False),
    (ConnectorError("GET /rest/api/3/search/jql: 503 after 9 attempts; Jira is failing", retryable=True), True),
])
def test_the_extract_step_is_retried_only_for_what_may_pass(error, retried):
    """Dagster's retry policy gets a failure it may retry only when a transient fault outlived the client's
    retries; a damaged answer or a user mistake fails the step at once, with the cause as its one line."""
    import dagster as dg

    from pipelines.assets.extract import _extract_many

    ok = type("R", (), {"records": {"issues": 1}, "pages": {"issues": 1}, "requests": 2})()
    with dg.build_asset_context() as context, pytest.raises(dg.Failure) as e:
        _extract_many(context, "jira", ["PAY", "OPS"], lambda keys, report: {"PAY": ok, "OPS": error})
    assert e.value.allow_retries is retried
    assert e.value.description == f"1 of 2 jira partitions failed: OPS: {error}"
