"""The GitHub connector under faults and damaged answers: a transient fault on any request is retried, a
page that lacks what the warehouse needs fails its stream in one line with nothing of it landed, and
what is merely unusual (a deleted user, a review state or an event type nobody knew) is kept as data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors import github_graphql as gq
from connectors.github import GitHubSettings, connect
from connectors.http import ConnectorError, HttpSettings, InvalidPayloadError, NotFoundError
from tests.scripted import ScriptedGitHub

FAST = HttpSettings(backoff_base_s=0.05, backoff_max_s=0.2, secondary_min_wait_s=0.2, connect_timeout_s=2,
                    read_timeout_s=20)
TOKEN = "ghp_testtoken1234567890"


def landed_files(root: Path, partition: str = "*") -> list[Path]:
    return sorted(root.glob(f"github/{partition}/*/*.jsonl"))


def landed(root: Path, stream: str) -> list[dict]:
    return [json.loads(line) for f in sorted(root.glob(f"github/*/*/{stream}-*.jsonl"))
            for line in f.read_text().splitlines()]


def one_line(e: BaseException) -> str:
    text = str(e)
    assert "\n" not in text and TOKEN not in text and "Traceback" not in text and not text.startswith("'")
    return text


@pytest.fixture(scope="module")
def sandbox():
    from sandbox import generator
    from sandbox.server import Sandbox

    with Sandbox(generator.generate("small", 1), port=0) as sb:
        yield sb


@pytest.fixture
def sb(sandbox):
    sandbox.app.set_faults(rate=0.0, routes=[], limit=0, after=0, burst=3)
    sandbox.app.reset_stats()
    yield sandbox
    sandbox.app.set_faults(rate=0.0, routes=[], limit=0, after=0, burst=3)


def source(sb, **kw):
    return connect(GitHubSettings.from_env(sb.env(), http=FAST, **kw))


# -- transient faults are retried everywhere ------------------------------------------------------------
def test_a_502_on_the_graphql_discovery_request_is_retried(sb):
    want = source(sb).discover_repositories()
    sb.app.reset_stats()
    sb.app.set_faults(rate=1.0, kinds=["502_burst"], burst=1, limit=1, routes=["github.graphql"])
    assert source(sb).discover_repositories() == want  # today: the night ends with the 502
    assert sb.app.stats.faults == {"502_burst": 1}
    assert sb.app.stats.requests["github.graphql"] == 2  # the 502, then the same query again


# -- answers that are not what GitHub promises fail their stream, and nothing of it lands --------------------
@pytest.mark.parametrize("api,route", [("graphql", "github.graphql"), ("rest", "github.pulls")])
@pytest.mark.parametrize("kind", ["html_200", "malformed_json", "empty_json"])
def test_a_damaged_page_fails_the_repository_in_one_line_and_lands_nothing(sb, tmp_path, api, route, kind):
    src = source(sb, api=api)
    repo = "acme/payments-api"
    assert repo in src.discover_repositories()
    sb.app.reset_stats()
    sb.app.set_faults(rate=1.0, kinds=[kind], limit=1, routes=[route])
    with pytest.raises(InvalidPayloadError) as e:
        src.extract_repository(tmp_path, repo, None)
    msg = one_line(e.value)
    path = "/api/graphql" if api == "graphql" else f"/api/v3/repos/{repo}/pulls"
    assert msg.startswith(f"{'POST' if api == 'graphql' else 'GET'} {path}"), msg
    assert ("not JSON" in msg) == (kind != "empty_json")
    assert not e.value.retryable
    assert sb.app.stats.requests[route] == 1  # refused at once, not retried for minutes
    assert landed_files(tmp_path) == []


@pytest.mark.parametrize("api,route", [("graphql", "github.graphql"), ("rest", "github.pulls")])
def test_a_damaged_later_page_takes_back_the_pages_before_it(sb, tmp_path, api, route):
    src = source(sb, api=api, page_size=5)
    repo = "acme/payments-api"
    src.discover_repositories()
    sb.app.set_faults(rate=1.0, kinds=["malformed_json"], limit=1, routes=[route], after=2)
    with pytest.raises(InvalidPayloadError, match=r"not JSON"):
        src.extract_repository(tmp_path / "x", repo, None)
    assert sb.app.stats.faults == {"malformed_json": 1}
    assert landed_files(tmp_path / "x") == []  # two good pages came first: they are gone too
    sb.app.set_faults(rate=0.0)
    src.extract_repository(tmp_path / "y", repo, None)  # the next run lands everything
    assert len(landed(tmp_path / "y", "pull_requests")) == sum(p.repo == repo for p in sb.app.store.github_pulls)


def _graphql_repo(pulls: list[dict], issues: list[dict] | None = None) -> dict:
    conn = {"pageInfo": {"hasNextPage": False, "endCursor": None}}
    return {"data": {"rateLimit": {"cost": 1, "remaining": 4999, "resetAt": "2030-01-01T00:00:00Z"},
                     "repository": {"id": "R_1", "name": "r", "nameWithOwner": "o/r", "owner": {"login": "o"},
                                    "pullRequests": {**conn, "nodes": pulls},
                                    "issues": {**conn, "nodes": issues or []}}}}


def _gql_pull(number: int | None, **extra) -> dict:
    node = {"__typename": "PullRequest", "id": f"PR_{number}", "fullDatabaseId": str(1000 + (number or 0)),
            "title": "t", "url": "u", "state": "OPEN", "isDraft": False, "merged": False,
            "createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-01-02T00:00:00Z",
            "author": {"__typename": "User", "login": "ana", "id": "U_1", "url": "x"},
            "timelineItems": {"pageInfo": {"hasNextPage": False}, "nodes": []}, **extra}
    if number is not None:
        node["number"] = number
    return node


@pytest.mark.parametrize("missing", ["number", "updatedAt", "id", "timelineItems"])
def test_a_pull_request_without_what_the_warehouse_keys_on_fails_naming_it(tmp_path, missing):
    bad = {k: v for k, v in _gql_pull(8).items() if k != missing}
    with ScriptedGitHub({"/graphql": (200, _graphql_repo([_gql_pull(7), bad]), {})}) as gh:
        src = connect(GitHubSettings(api_url=gh.url, token=TOKEN, http=FAST))
        with pytest.raises(InvalidPayloadError) as e:
            src.extract_repository(tmp_path, "o/r", None)
    msg = one_line(e.value)
    assert msg.startswith("POST /graphql (pull requests of o/r, page after the start): pull request ")
    assert f"lacks '{missing}'" in msg and "nothing of this repository's pull requests is landed" in msg
    assert ("#8" in msg) == (missing != "number")
    assert landed_files(tmp_path) == []  # pull request #7 was fine, and is not landed either


def test_a_rest_pull_request_without_number_on_page_two_fails_the_stream(tmp_path):
    def pull(n):
        return {"number": n, "id": n, "node_id": f"PR_{n}", "state": "open", "created_at": "2024-01-01T00:00:00Z",
                "updated_at": f"2024-01-{10 - n:02d}T00:00:00Z", "user": {"login": "ana"},
                "base": {"repo": {"full_name": "o/r"}}}

    broken = {k: v for k, v in pull(3).items() if k != "number"}
    routes = {"/repos/o/r": (200, {"id": 1, "full_name": "o/r"}, {}),
              "/repos/o/r/pulls": (200, [pull(1), pull(2)], {"Link": '<{base}/repos/o/r/pulls/p2>; rel="next"'}),
              "/repos/o/r/pulls/p2": (200, [broken], {}),
              "/repos/o/r/issues/1/timeline": (200, [], {}), "/repos/o/r/issues/2/timeline": (200, [], {})}
    with ScriptedGitHub(routes) as gh:
        src = connect(GitHubSettings(api_url=gh.url, token=TOKEN, http=FAST, api="rest"))
        with pytest.raises(InvalidPayloadError) as e:
            src.extract_repository(tmp_path, "o/r", None)
    msg = one_line(e.value)
    assert msg.startswith("GET /repos/o/r/pulls: pull request with id 3 lacks 'number'")
    assert landed_files(tmp_path) == []


# -- what is unusual is kept as data, never dropped -----------------------------------------------------
def test_deleted_users_new_review_states_and_new_event_types_are_landed_as_they_came(tmp_path):
    ghost = {"login": "ghost", "id": 10137, "node_id": "MDQ6VXNlcjEwMTM3", "type": "User"}
    pull = {"number": 5, "id": 5, "node_id": "PR_5", "state": "closed", "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-09T00:00:00Z", "user": None, "base": {"repo": {"full_name": "o/r"}}}
    timeline = [
        {"id": 1, "event": "review_requested", "actor": ghost, "created_at": "2024-01-02T00:00:00Z",
         "requested_reviewer": {"login": "bo"}},
        {"id": 2, "event": "reviewed", "user": None, "state": "pending_approval",
         "submitted_at": "2024-01-03T00:00:00Z"},
        {"id": 3, "event": "copilot_work_started", "actor": None, "created_at": "2024-01-04T00:00:00Z"},
        {"id": 4, "event": "merged", "actor": ghost, "created_at": "2024-01-05T00:00:00Z"},
        {"id": 5, "event": "commented", "actor": ghost, "created_at": "2024-01-05T00:00:00Z"},  # never read
    ]
    routes = {"/repos/o/r": (200, {"id": 1, "full_name": "o/r"}, {}), "/repos/o/r/pulls": (200, [pull], {}),
              "/repos/o/r/issues/5/timeline": (200, timeline, {}), "/repos/o/r/issues": (200, [], {})}
    with ScriptedGitHub(routes) as gh:
        connect(GitHubSettings(api_url=gh.url, token=TOKEN, http=FAST, api="rest")).extract_repository(
            tmp_path / "rest", "o/r", None)
    events = [e["event"] for e in landed(tmp_path / "rest", "timeline_events")]
    assert [e["event"] for e in events] == ["review_requested", "reviewed", "copilot_work_started", "merged"]
    assert events[0]["actor"]["login"] == "ghost" and events[1]["user"] is None
    assert events[1]["state"] == "pending_approval" and landed(tmp_path / "rest", "pull_requests")[0]["user"] is None

    items = [{"__typename": "ReviewRequestedEvent", "id": "RRE_1", "createdAt": "2024-01-02T00:00:00Z",
              "actor": None, "requestedReviewer": {"__typename": "User", "login": "bo", "id": "U_2"}},
             {"__typename": "PullRequestReview", "id": "PRR_2", "fullDatabaseId": "2", "author": None,
              "state": "PENDING_APPROVAL", "submittedAt": "2024-01-03T00:00:00Z"},
             {"__typename": "CopilotWorkStartedEvent", "id": "CWS_3", "createdAt": "2024-01-04T00:00:00Z"},
             {"__typename": "IssueComment", "id": "IC_4"}]  # never read
    node = _gql_pull(5, author=None, timelineItems={"pageInfo": {"hasNextPage": False}, "nodes": items})
    with ScriptedGitHub({"/graphql": (200, _graphql_repo([node]), {})}) as gh:
        connect(GitHubSettings(api_url=gh.url, token=TOKEN, http=FAST)).extract_repository(
            tmp_path / "gql", "o/r", None)
    events = [e["event"] for e in landed(tmp_path / "gql", "timeline_events")]
    assert [e["event"] for e in events] == ["review_requested", "reviewed", "copilot_work_started"]
    assert events[0]["actor"] is None and events[1]["user"] is None and events[1]["state"] == "pending_approval"
    assert events[2]["__typename"] == "CopilotWorkStartedEvent"
    assert landed(tmp_path / "gql", "pull_requests")[0]["user"] is None
    assert gq.map_timeline_item(None) is None


# -- errors name what failed --------------------------------------------------------------------------------
def test_a_missing_timeline_endpoint_names_the_endpoint_and_the_pull_request(tmp_path):
    pull = {"number": 7, "id": 7, "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-02T00:00:00Z"}
    routes = {"/repos/o/r": (200, {"id": 1, "full_name": "o/r"}, {}), "/repos/o/r/pulls": (200, [pull], {})}
    with ScriptedGitHub(routes) as gh:  # every other path: GitHub's 404
        src = connect(GitHubSettings(api_url=gh.url, token=TOKEN, http=FAST, api="rest"))
        with pytest.raises(NotFoundError) as e:
            src.extract_repository(tmp_path, "o/r", None)
    msg = one_line(e.value)
    assert msg.startswith("GET /repos/o/r/issues/7/timeline: not found (404) for the timeline of pull request o/r#7")
    assert "although its repository answered" in msg
    assert "repository o/r not found" not in msg  # what it said today


def test_a_lost_graphql_timeline_continuation_names_the_pull_request(tmp_path):
    node = _gql_pull(9, timelineItems={"pageInfo": {"hasNextPage": True, "endCursor": "c1"}, "nodes": []})

    def graphql(r):
        if "Timelines" in r.body["query"]:
            return 200, {"data": {"t0": None}, "errors": [{"type": "NOT_FOUND", "path": ["t0"],
                                                            "message": "Could not resolve to a node"}]}, {}
        return 200, _graphql_repo([node]), {}

    with ScriptedGitHub({"/graphql": graphql}) as gh:
        src = connect(GitHubSettings(api_url=gh.url, token=TOKEN, http=FAST))
        with pytest.raises(NotFoundError) as e:
            src.extract_repository(tmp_path, "o/r", None)
    msg = one_line(e.value)
    assert "timelines of o/r #9" in msg and "NOT_FOUND" in msg and "repository o/r not found" not in msg
    assert landed(tmp_path, "pull_requests") == [] and landed(tmp_path, "timeline_events") == []


@pytest.mark.parametrize("viewer", [{"login": "app[bot]"}, None])
def test_a_viewer_without_organisations_is_one_line_naming_the_setting(viewer):
    body = {"data": {"rateLimit": None, "viewer": viewer}}
    with ScriptedGitHub({"/graphql": (200, body, {})}) as gh, pytest.raises(ConnectorError) as e:
        connect(GitHubSettings(api_url=gh.url, token=TOKEN, http=FAST)).discover_repositories()
    msg = one_line(e.value)  # today: "error: sources: 'viewer'"
    assert msg.startswith("POST /graphql (discovery: the token's organisations): GitHub did not list")
    assert "sources.github.organizations" in msg and not e.value.retryable
