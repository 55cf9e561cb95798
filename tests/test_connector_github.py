"""The GitHub connector: queries against GitHub's schema, the GraphQL->REST mapping against recorded REST
responses, a scripted GitHub serving recorded pages, then real HTTP against the sandbox in both modes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from graphql import build_schema, parse, validate

from connectors import github_graphql as gq
from connectors.github import GitHubSettings, connect, is_bot, matches
from connectors.http import AuthError, ConnectorError, HttpSettings, NotFoundError
from sandbox.generator import NEW_EVENT_KIND
from tests.scripted import ScriptedGitHub

SPECS = Path(__file__).resolve().parents[1] / "sandbox" / "specs"
RECORDED = Path(__file__).resolve().parent / "fixtures" / "github-recorded"
FAST = HttpSettings(backoff_base_s=0.05, backoff_max_s=0.2, max_retries=8, connect_timeout_s=2, read_timeout_s=20,
                    secondary_min_wait_s=0.2)
TOKEN = "ghp_testtoken1234567890"


def recorded(name: str):
    return json.loads((RECORDED / name).read_text())


def landed(root: Path, stream: str, partition: str = "*") -> list[dict]:
    out = []
    for f in sorted(root.glob(f"github/{partition}/*/{stream}-*.jsonl")):
        out += [json.loads(line) for line in f.read_text().splitlines()]
    return out


_landed_in = landed


# -- queries and settings ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def schema():
    return build_schema((SPECS / "github-graphql-schema.graphql").read_text(), assume_valid_sdl=True)


@pytest.mark.parametrize("name", ["REPO_PAGE", "VIEWER_ORGS", "ORG_REPOS", "ORG_TEAMS", "TEAM_MEMBERS", "timelines_1", "timelines_10",
                                  "search_0", "search_3", "repos_2"])
def test_every_query_validates_against_githubs_schema(schema, name):
    if name.startswith("timelines"):
        query = gq.timelines_query(int(name.split("_")[1]))
    elif name.startswith(("search", "repos")):
        query = gq.search_query(int(name.split("_")[1]), with_search=name.startswith("search"))
    else:
        query = getattr(gq, name)
    assert [e.message for e in validate(schema, parse(query))] == []


def test_queries_ask_for_the_rate_limit_and_the_item_types_exist(schema):
    for q in (gq.REPO_PAGE, gq.VIEWER_ORGS, gq.ORG_REPOS, gq.timelines_query(2)):
        assert "rateLimit { cost remaining resetAt }" in q
    pr_enum = set(schema.get_type("PullRequestTimelineItemsItemType").values)
    issue_enum = set(schema.get_type("IssueTimelineItemsItemType").values)
    assert set(gq.PR_ITEM_TYPES) <= pr_enum and set(gq.ISSUE_ITEM_TYPES) <= issue_enum


def test_settings_from_env_and_graphql_url():
    s = GitHubSettings.from_env({"GITHUB_TOKEN": TOKEN})
    assert s.api_url == "https://api.github.com" and s.graphql_url == "https://api.github.com/graphql"
    ghes = GitHubSettings.from_env({"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": "https://ghe.acme.io/api/v3/"},
                                   api="rest", overlap_minutes=5)
    assert ghes.graphql_url == "https://ghe.acme.io/api/graphql" and ghes.api == "rest"
    assert ghes.overlap_minutes == 5 and TOKEN not in repr(ghes)
    with pytest.raises(AuthError, match="GITHUB_TOKEN"):
        connect(GitHubSettings.from_env({}))


def test_patterns_and_bots():
    assert matches("acme/api", ["acme/*"], ["acme/legacy-*"])
    assert not matches("acme/legacy-billing", ["acme/*"], ["acme/legacy-*"])
    assert not matches("other/api", ["acme/*"], [])
    assert matches("Acme/API", [], [])
    assert is_bot({"login": "renovate[bot]", "type": "Bot"}) and is_bot({"login": "x", "type": "Bot"})
    assert is_bot({"login": "jenkins-ci", "type": "User"}, ["jenkins-ci"])
    assert not is_bot({"login": "ana", "type": "User"}, ["jenkins-ci"]) and not is_bot(None)


# -- GraphQL -> REST mapping against recorded REST ---------------------------------------------------
def _all_recorded_events():
    events = []
    for f in sorted(RECORDED.glob("timeline-*.json")):
        events += recorded(f.name)
    return events


def test_node_ids_decode_to_the_rest_ids_for_every_recorded_object():
    checked = 0
    for e in _all_recorded_events():
        for obj in (e, e.get("actor"), e.get("user"), e.get("requested_reviewer"), e.get("requested_team")):
            if isinstance(obj, dict) and obj.get("node_id") and isinstance(obj.get("id"), int):
                decoded = gq.decode_database_id(obj["node_id"])
                assert decoded in (obj["id"], None), obj["node_id"]
                checked += decoded is not None
                assert decoded is not None or "node" in obj["node_id"]  # some recordings redacted node ids
    assert checked > 300
    assert gq.decode_database_id("not-an-id") is None and gq.decode_database_id(None) is None


def _gql_user(rest_user: dict) -> dict:
    """The GraphQL Actor GitHub returns for a REST user (bots are named without "[bot]" there)."""
    login = rest_user["login"].removesuffix("[bot]")
    return {"__typename": rest_user["type"], "login": login, "id": rest_user["node_id"],
            "databaseId": rest_user["id"], "url": rest_user["html_url"]}


def test_review_maps_to_the_recorded_reviewed_event():
    rest = recorded("timeline-event-reviewed.json")[0]
    node = {"__typename": "PullRequestReview", "id": rest["node_id"], "databaseId": rest["id"],
            "author": _gql_user(rest["user"]), "body": rest["body"], "state": "APPROVED",
            "submittedAt": rest["submitted_at"], "createdAt": rest["submitted_at"],
            "authorAssociation": rest["author_association"], "commit": {"oid": rest["commit_id"]}}
    mapped = gq.map_timeline_item(node)
    for key in ("id", "node_id", "event", "state", "submitted_at", "body", "commit_id"):
        assert mapped[key] == rest[key], key
    assert "created_at" not in mapped
    assert {k: mapped["user"][k] for k in ("login", "id", "node_id", "type")} == \
        {k: rest["user"][k] for k in ("login", "id", "node_id", "type")}


@pytest.mark.parametrize("fixture,typename", [
    ("timeline-event-review-requested.json", "ReviewRequestedEvent"),
    ("timeline-event-review-requested-team.json", "ReviewRequestedEvent"),
    ("timeline-event-merged.json", "MergedEvent"),
    ("timeline-event-closed.json", "ClosedEvent"),
    ("timeline-event-ready-for-review.json", "ReadyForReviewEvent"),
])
def test_events_map_to_the_recorded_rest_events(fixture, typename):
    rest = recorded(fixture)[0]
    node = {"__typename": typename, "id": rest["node_id"], "createdAt": rest["created_at"],
            "actor": _gql_user(rest["actor"]), "commit": {"oid": rest.get("commit_id")}, "stateReason": None}
    if "requested_team" in rest:
        t = rest["requested_team"]
        node["requestedReviewer"] = {"__typename": "Team", "id": t["node_id"], "slug": t["slug"], "name": t["name"],
                                     "url": t["html_url"]}
    elif "requested_reviewer" in rest:
        node["requestedReviewer"] = _gql_user(rest["requested_reviewer"])
    mapped = gq.map_timeline_item(node)
    for key in ("id", "node_id", "event", "created_at"):
        if key != "id" or "node" not in rest["node_id"]:  # a redacted node id carries no database id
            assert mapped[key] == rest[key], key
    assert mapped["actor"]["login"] == rest["actor"]["login"]
    if "requested_team" in rest:
        assert (mapped["requested_team"]["slug"], mapped["requested_team"]["id"]) == \
            (rest["requested_team"]["slug"], rest["requested_team"]["id"])
        assert "requested_reviewer" not in mapped
    if "requested_reviewer" in rest:
        assert mapped["requested_reviewer"]["login"] == rest["requested_reviewer"]["login"]
        assert mapped["review_requester"]["login"] == rest["review_requester"]["login"]
    if rest["event"] == "merged":
        assert mapped["commit_id"] == rest["commit_id"]


def test_dismissal_labels_and_bots_map_like_rest():
    recorded_events = recorded("timeline-freeCodeCamp-47550.json")
    dismissed = next(e for e in recorded_events if e["event"] == "review_dismissed")
    node = {"__typename": "ReviewDismissedEvent", "id": dismissed["node_id"], "databaseId": dismissed["id"],
            "createdAt": dismissed["created_at"], "actor": _gql_user(dismissed["actor"]),
            "previousReviewState": "APPROVED", "dismissalMessage": None,
            "review": {"databaseId": dismissed["dismissed_review"]["review_id"]}}
    mapped = gq.map_timeline_item(node)
    for key in ("state", "review_id", "dismissal_message"):
        assert mapped["dismissed_review"][key] == dismissed["dismissed_review"][key]
    labeled = next(e for e in recorded_events if e["event"] == "labeled")
    node = {"__typename": "LabeledEvent", "id": labeled["node_id"], "createdAt": labeled["created_at"],
            "actor": _gql_user(labeled["actor"]), "label": {"name": labeled["label"]["name"], "color": "x"}}
    mapped = gq.map_timeline_item(node)
    assert mapped["label"]["name"] == labeled["label"]["name"] and mapped["id"] == labeled["id"]
    # the labeler is github-actions[bot]: GraphQL says "github-actions", REST "github-actions[bot]"
    assert mapped["actor"] == {**mapped["actor"], "login": labeled["actor"]["login"], "type": "Bot"}
    assert is_bot(mapped["actor"])
    assert gq.map_timeline_item({"__typename": "IssueComment", "id": "x"}) is None


def test_pull_maps_to_the_recorded_rest_pull():
    rest = recorded("pulls-freeCodeCamp-47550.json")
    node = {"id": rest["node_id"], "databaseId": rest["id"], "number": rest["number"], "title": rest["title"],
            "url": rest["html_url"], "state": "MERGED", "isDraft": rest["draft"], "locked": rest["locked"],
            "merged": True, "createdAt": rest["created_at"], "updatedAt": rest["updated_at"],
            "closedAt": rest["closed_at"], "mergedAt": rest["merged_at"], "headRefName": rest["head"]["ref"],
            "baseRefName": rest["base"]["ref"], "author": _gql_user(rest["user"]),
            "mergedBy": _gql_user(rest["merged_by"]),
            "assignees": {"nodes": []}, "labels": {"nodes": [{"name": lb["name"], "color": lb["color"]}
                                                             for lb in rest["labels"]]},
            "reviewRequests": {"nodes": [{"requestedReviewer": _gql_user(u)} for u in rest["requested_reviewers"]]
                               + [{"requestedReviewer": {"__typename": "Team", "id": t["node_id"], "slug": t["slug"],
                                                         "name": t["name"], "url": t["html_url"]}}
                                  for t in rest["requested_teams"]]},
            "timelineItems": {"nodes": [], "pageInfo": {}}}
    mapped = gq.map_pull(node, "freeCodeCamp/freeCodeCamp")
    assert mapped["url"] == rest["url"]
    for key in ("id", "node_id", "number", "state", "title", "created_at", "updated_at", "closed_at", "merged_at",
                "draft", "merged", "assignees"):
        assert mapped[key] == rest[key], key
    assert rest["requested_reviewers"]  # the recording has a pending request: the mapping is exercised
    for key, fields in (("requested_reviewers", ("login", "id", "node_id", "type")), ("requested_teams", ("slug",))):
        assert [{f: u[f] for f in fields} for u in mapped[key]] == [{f: u[f] for f in fields} for u in rest[key]]
    assert [lb["name"] for lb in mapped["labels"]] == [lb["name"] for lb in rest["labels"]]
    assert mapped["user"]["login"] == rest["user"]["login"] and mapped["head"]["ref"] == rest["head"]["ref"]
    assert mapped["merged_by"]["login"] == rest["merged_by"]["login"]
    assert mapped["base"]["repo"]["full_name"] == rest["base"]["repo"]["full_name"]


# -- a scripted GitHub serving recorded pages -------------------------------------------------------
def _rest_source(url: str, **kw):
    return connect(GitHubSettings(api_url=url, token=TOKEN, api="rest", http=FAST, **kw))


def test_rest_parser_lands_every_recorded_response(tmp_path):
    pull = recorded("pulls-freeCodeCamp-47550.json")
    jelly = {**pull, "number": 2733, "id": 2733, "node_id": "PR_x", "updated_at": "2022-09-20T00:00:00Z"}
    routes = {
        "/repos/o/r": (200, {"id": 1, "full_name": "o/r", "name": "r", "archived": False}, {}),
        "/repos/o/r/pulls": (200, [pull, jelly], {}),
        "/repos/o/r/issues/47550/timeline": (200, recorded("timeline-freeCodeCamp-47550.json"), {}),
        "/repos/o/r/issues/2733/timeline": (200, recorded("timeline-jellyfin-2733-page1.json"),
                                            {"Link": '<{base}/repos/o/r/issues/2733/timeline/p2>; rel="next"'}),
        "/repos/o/r/issues/2733/timeline/p2": (200, recorded("timeline-jellyfin-2733-page2.json"), {}),
        "/repos/o/r/issues": (200, [{**pull, "pull_request": {}},
                                    {"number": 9, "id": 9, "created_at": "2021-12-01T00:00:00Z",
                                     "updated_at": "2022-01-01T00:00:00Z", "title": "i"}], {}),
        "/repos/o/r/issues/9/timeline": (200, recorded("timeline-event-closed.json")
                                         + recorded("timeline-event-reviewed.json")[:0], {}),
    }
    reports = []
    with ScriptedGitHub(routes) as gh:
        res = _rest_source(gh.url).extract_repository(tmp_path, "o/r", None, progress=reports.append)
    assert reports[-1]["repository"] == "o/r" and reports[-1]["records"] == res.records
    events = landed(tmp_path, "timeline_events")
    expected = Counter()
    for name, number in (("timeline-freeCodeCamp-47550.json", 47550), ("timeline-jellyfin-2733-page1.json", 2733),
                         ("timeline-jellyfin-2733-page2.json", 2733), ("timeline-event-closed.json", 9)):
        expected += Counter((number, e["event"]) for e in recorded(name) if e["event"] not in gq.UNUSED_EVENTS)
    assert Counter((e["issue_number"], e["event"]["event"]) for e in events) == expected
    assert all(e["repository"] == "o/r" for e in events)
    assert [p["number"] for p in landed(tmp_path, "pull_requests")] == [47550, 2733]
    assert [i["number"] for i in landed(tmp_path, "issues")] == [9]
    assert res.records["timeline_events"] == sum(expected.values())
    assert res.cursor == {"updated": pull["updated_at"]}
    manifest = json.loads(res.manifest.read_text())
    assert manifest["complete"] and manifest["cursor"] == res.cursor and TOKEN not in res.manifest.read_text()
    auth = {h.get("Authorization") for _, h in gh.seen}
    assert auth == {f"Bearer {TOKEN}"}


def test_incremental_rest_stops_at_the_cursor_and_sends_etags(tmp_path):
    pull = recorded("pulls-freeCodeCamp-47550.json")
    old = {**pull, "number": 1, "updated_at": "2020-01-01T00:00:00Z"}

    def issues(handler):
        return [] if "since=" in handler.target else [old]

    routes = {"/repos/o/r": (200, {"id": 1, "full_name": "o/r"}, {"ETag": '"repo1"'}),
              "/repos/o/r/pulls": (200, [pull, old], {"ETag": '"p1"'}),
              "/repos/o/r/issues/47550/timeline": (200, [], {}),
              "/repos/o/r/issues": (200, issues, {})}
    with ScriptedGitHub(routes) as gh:
        src = _rest_source(gh.url)
        src.extract_repository(tmp_path, "o/r", {"updated": "2022-09-01T00:00:00Z"})
        assert all(p != "/repos/o/r/issues/1/timeline" for p, _ in gh.seen)  # older than the cursor: not read
        assert not any("If-None-Match" in h for _, h in gh.seen)  # nothing cached yet
        gh.seen.clear()
        _rest_source(gh.url).extract_repository(tmp_path, "o/r", {"updated": pull["updated_at"]})  # a later run
        sent = {p: h.get("If-None-Match") for p, h in gh.seen}
    assert sent["/repos/o/r/pulls"] == '"p1"' and sent["/repos/o/r"] == '"repo1"'
    assert (tmp_path / "github" / "_etags" / "o__r.json").exists()


def test_errors_are_one_line_and_name_the_fix(tmp_path):
    sso = {"x-github-sso": "required; url=https://github.com/orgs/acme/sso?authorization_request=abc"}
    saml = {"message": "Resource protected by organization SAML enforcement. You must grant your Personal Access "
                       "token access to this organization."}
    routes = {
        "/orgs/acme/repos": (403, saml, sso),
        "/repos/acme/private": (404, {"message": "Not Found"}, {"x-oauth-scopes": "read:org",
                                                                  "x-accepted-oauth-scopes": "repo"}),
        "/repos/acme/missing": (404, {"message": "Not Found"}, {"x-oauth-scopes": "repo, read:org",
                                                                  "x-accepted-oauth-scopes": "repo"}),
        "/user/orgs": (401, {"message": "Bad credentials"}, {}),
    }
    with ScriptedGitHub(routes) as gh:
        with pytest.raises(AuthError) as e:
            _rest_source(gh.url, organizations=["acme"]).discover_repositories()
        assert "SAML" in str(e.value) and "https://github.com/orgs/acme/sso" in str(e.value)
        with pytest.raises(AuthError) as e2:
            _rest_source(gh.url).extract_repository(tmp_path, "acme/private", None)
        assert "scope" in str(e2.value) and "repo" in str(e2.value)
        with pytest.raises(NotFoundError) as e3:
            _rest_source(gh.url).extract_repository(tmp_path, "acme/missing", None)
        assert "acme/missing" in str(e3.value)
        with pytest.raises(AuthError) as e4:
            _rest_source(gh.url).discover_repositories()
        assert "GITHUB_TOKEN" in str(e4.value) and "401" in str(e4.value)
    for err in (e, e2, e3, e4):
        assert "\n" not in str(err.value) and TOKEN not in str(err.value)


def test_graphql_errors_are_one_line(tmp_path):
    not_found = {"data": {"rateLimit": None, "repository": None},
                 "errors": [{"type": "NOT_FOUND", "path": ["repository"],
                             "message": "Could not resolve to a Repository with the name 'acme/nope'."}]}
    with ScriptedGitHub({"/graphql": (200, not_found, {})}) as gh:
        src = connect(GitHubSettings(api_url=gh.url, token=TOKEN, http=FAST))
        with pytest.raises(NotFoundError, match="acme/nope.*GITHUB_TOKEN"):
            src.extract_repository(tmp_path, "acme/nope", None)
    scopes = {"errors": [{"type": "INSUFFICIENT_SCOPES", "message": "Your token has not been granted the required "
                          "scopes to execute this query. The 'organizations' field requires one of the following "
                          "scopes: ['read:org'], but your token has only been granted the: ['repo'] scopes."}]}
    with ScriptedGitHub({"/graphql": (200, scopes, {})}) as gh:
        src = connect(GitHubSettings(api_url=gh.url, token=TOKEN, http=FAST))
        with pytest.raises(AuthError, match="GITHUB_TOKEN lacks.*read:org"):
            src.discover_repositories()


def test_graphql_502_is_retried_with_smaller_pages(tmp_path):
    firsts = []

    def graphql(handler):
        firsts.append(handler.body["variables"]["prFirst"])
        if len(firsts) <= 2:
            return 502, {"message": "Bad Gateway"}, {}
        return 200, {"data": {"rateLimit": {"cost": 1, "remaining": 4999, "resetAt": "2030-01-01T00:00:00Z"},
                              "repository": {"id": "R_1", "name": "r", "nameWithOwner": "o/r",
                                             "pullRequests": {"pageInfo": {"hasNextPage": False}, "nodes": []},
                                             "issues": {"pageInfo": {"hasNextPage": False}, "nodes": []}}}}, {}

    with ScriptedGitHub({"/graphql": graphql}) as gh:
        res = connect(GitHubSettings(api_url=gh.url, token=TOKEN, http=FAST, page_size=40)).extract_repository(
            tmp_path, "o/r", None)
    assert firsts == [40, 20, 10]
    assert res.records == {"repositories": 1} and res.requests == 3


# -- real HTTP against the sandbox ------------------------------------------------------------------
def _sandbox():
    from sandbox import generator
    from sandbox.server import Sandbox

    return Sandbox(generator.generate("small", 1), port=0)


def _sync(sb, root: Path, api: str, cursors: dict | None = None, **kw) -> dict:
    """Discover and extract every repository; returns {repo: ExtractResult}."""
    src = connect(GitHubSettings.from_env(sb.env(), api=api, http=FAST, **kw))
    return {r: src.extract_repository(root, r, (cursors or {}).get(r)) for r in src.discover_repositories()}


def _truth(store, repos=None, api="graphql"):
    """What the store holds: PRs, issues, and the landed timeline events, keyed as they land (REST also lands the
    kind GitHub added since, NEW_EVENT_KIND; GraphQL does not ask for it)."""
    live = {r.full_name for r in store.github_repos if not r.archived}
    pulls = {(p.repo, p.number) for p in store.github_pulls if p.repo in live and (repos is None or p.repo in repos)}
    issues = {(i.repo, i.number) for i in store.github_issues if i.repo in live and (repos is None or i.repo in repos)}
    events = Counter()
    for item in [p for p in store.github_pulls] + [i for i in store.github_issues]:
        if (item.repo, item.number) in pulls | issues:
            events += Counter((item.repo, item.number, e.event, e.id) for e in item.events
                              if e.event in gq.TIMELINE_EVENTS or (api == "rest" and e.event == NEW_EVENT_KIND))
    return pulls, issues, events


def _landed_keys(root: Path):
    pulls = Counter((p["base"]["repo"]["full_name"], p["number"]) for p in landed(root, "pull_requests"))
    issues = Counter((i["url"].split("/repos/")[1].rsplit("/issues/", 1)[0], i["number"])
                     for i in landed(root, "issues"))
    events = Counter((e["repository"], e["issue_number"], e["event"]["event"], e["event"]["id"])
                     for e in landed(root, "timeline_events"))
    return pulls, issues, events


def _essentials(root: Path, partition: str = "*") -> dict:
    """The fields the warehouse reads, per stream, mode-independent."""
    def landed(root: Path, stream: str) -> list[dict]:
        return _landed_in(root, stream, partition)

    def who(u):  # a deleted account: REST's ghost user, GraphQL's null
        return (None, None) if (u or {}).get("login") == "ghost" else ((u or {}).get("login"), (u or {}).get("type"))

    pulls = sorted((p["number"], p["id"], p["node_id"], p["state"], p["draft"], p["merged_at"], p["created_at"],
                    p["updated_at"], p["closed_at"], who(p["user"]),
                    tuple(sorted(u["login"] for u in p["requested_reviewers"])),
                    tuple(sorted(t["slug"] for t in p["requested_teams"])),
                    tuple(sorted(lb["name"] for lb in p["labels"])), tuple(sorted(a["login"] for a in p["assignees"])))
                   for p in landed(root, "pull_requests"))
    issues = sorted((i["number"], i["id"], i["state"], i["state_reason"], i["created_at"], i["updated_at"],
                     i["closed_at"], who(i["user"]), tuple(sorted(lb["name"] for lb in i["labels"])))
                    for i in landed(root, "issues"))
    events = []
    for rec in landed(root, "timeline_events"):
        e = rec["event"]
        if e["event"] not in gq.TIMELINE_EVENTS:
            continue  # a kind the models do not read: REST lands it, GraphQL does not ask for it
        events.append((rec["repository"], rec["issue_number"], e["event"], e["id"], e.get("created_at"),
                       e.get("submitted_at"), e.get("state"), e.get("body"), who(e.get("actor")),
                       who(e.get("user")), who(e.get("requested_reviewer")),
                       (e.get("requested_team") or {}).get("slug"), who(e.get("review_requester")),
                       tuple((e.get("dismissed_review") or {}).get(k) for k in ("state", "review_id",
                                                                                  "dismissal_message")),
                       (e.get("label") or {}).get("name"), who(e.get("assignee"))))
    repos = sorted((r["full_name"], r["id"], r["archived"]) for r in landed(root, "repositories"))
    return {"pulls": pulls, "issues": issues, "events": sorted(events, key=repr), "repos": repos}


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_full_sync_lands_every_pr_review_and_request_exactly_once(tmp_path, api):
    with _sandbox() as sb:
        results = _sync(sb, tmp_path, api)
        store = sb.app.store
        archived = {r.full_name for r in store.github_repos if r.archived}
        assert archived and not archived & set(results)  # archived repositories are skipped
        pulls, issues, events = _truth(store, api=api)
        got_pulls, got_issues, got_events = _landed_keys(tmp_path)
        assert got_pulls == Counter(pulls) and got_issues == Counter(issues)
        assert got_events == events
        # a kind GitHub added since: REST's timeline lands it (for the unknown_values check to name), GraphQL's
        # itemTypes never ask for it
        assert any(k[2] == NEW_EVENT_KIND for k in got_events) == (api == "rest")
        kinds = Counter(k[2] for k in got_events.elements())
        assert kinds["reviewed"] > 100 and kinds["review_requested"] > 100 and kinds["review_dismissed"] > 0
        assert sb.app.stats.early_retries == 0
        for repo, res in results.items():
            newest = max(p.updated_at for p in store.github_pulls + store.github_issues if p.repo == repo)
            assert res.cursor == {"updated": newest.strftime("%Y-%m-%dT%H:%M:%SZ")}
        if api == "graphql":  # one query per repository, discovery included, plus one per further timeline page
            extra = sum(-(-n // 100) - 1 for n in Counter(k[:2] for k in events.elements()).values())
            assert extra >= 2 and sum(sb.app.stats.requests.values()) <= len(results) + 2 + extra


def test_both_modes_land_equivalent_records(tmp_path):
    with _sandbox() as sb:
        _sync(sb, tmp_path / "g", "graphql")
        _sync(sb, tmp_path / "r", "rest")
    g, r = _essentials(tmp_path / "g"), _essentials(tmp_path / "r")
    assert g["events"] and g["pulls"] and g["issues"]
    for stream in g:
        assert g[stream] == r[stream], stream
    bots = [e for e in g["events"] if e[8][0] and e[8][0].endswith("[bot]")]
    assert all(e[8][1] == "Bot" for e in bots)


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_long_timelines_complete_with_nested_pages(tmp_path, api):
    with _sandbox() as sb:
        store = sb.app.store
        live = {r.full_name for r in store.github_repos if not r.archived}
        longs = [p for p in store.github_pulls
                 if p.repo in live and sum(e.event in gq.TIMELINE_EVENTS for e in p.events) > 100]
        repos = sorted({p.repo for p in longs})
        # default pages of 100 items: more than 100 land only if the nested timeline pages are followed
        _sync(sb, tmp_path, api, repositories=repos)
        _, _, events = _truth(store, set(repos), api)
        landed_events = _landed_keys(tmp_path)[2]
        assert landed_events == events
    assert len(longs) >= 2
    for p in longs:
        want = Counter(k for k in events.elements() if k[:2] == (p.repo, p.number))
        got = Counter(k for k in landed_events.elements() if k[:2] == (p.repo, p.number))
        assert got == want and sum(got.values()) > 100 and max(got.values()) == 1, (p.repo, p.number)


def test_faults_do_not_change_what_lands(tmp_path):
    with _sandbox() as sb:
        _sync(sb, tmp_path / "clean", "graphql", timeline_page_size=20)
        sb.app.set_faults(rate=0.1, kinds=["403_secondary", "429", "502_burst"], retry_after_s=1, seed=7)
        _sync(sb, tmp_path / "faulty", "graphql", timeline_page_size=20)
        assert sum(sb.app.stats.faults.values()) >= 2
        assert sb.app.stats.early_retries == 0
    assert _essentials(tmp_path / "faulty") == _essentials(tmp_path / "clean")


def test_faults_in_rest_mode_do_not_change_what_lands(tmp_path):
    with _sandbox() as sb:
        one = ["acme/payments-worker"]
        _sync(sb, tmp_path / "clean", "rest", repositories=one)
        sb.app.set_faults(rate=0.1, kinds=["403_secondary", "429", "502_burst"], retry_after_s=1, seed=7)
        _sync(sb, tmp_path / "faulty", "rest", repositories=one)
        assert sum(sb.app.stats.faults.values()) >= 1 and sb.app.stats.early_retries == 0
    assert _essentials(tmp_path / "faulty") == _essentials(tmp_path / "clean")
    assert _essentials(tmp_path / "clean")["pulls"]


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_incremental_run_fetches_only_what_changed(tmp_path, api):
    with _sandbox() as sb:
        first = _sync(sb, tmp_path / "1", api)
        full_requests = sum(sb.app.stats.requests.values())
        cursors = {repo: res.cursor for repo, res in first.items()}
        changed = sb.app.advance(0.01)
        assert changed > 0
        sb.app.reset_stats()
        second = _sync(sb, tmp_path / "2", api, cursors=cursors)
        store = sb.app.store
        from datetime import timedelta

        want = set()
        for item in store.github_pulls:
            if item.repo in cursors and \
                    item.updated_at >= _ts(cursors[item.repo]["updated"]) - timedelta(minutes=10):
                want.add((item.repo, item.number))
        got = set(_landed_keys(tmp_path / "2")[0])
        assert got == want and 0 < len(got) < len(store.github_pulls) / 5
        # every changed PR's events are complete in the second extract
        _, _, events = _truth(store, api=api)
        assert +Counter({k: v for k, v in events.items() if (k[0], k[1]) in got}) == \
            +Counter({k: v for k, v in _landed_keys(tmp_path / "2")[2].items() if (k[0], k[1]) in got})
        incremental = sum(sb.app.stats.requests.values())
        if api == "graphql":  # one query per repository whatever changed (small scale: so was the full run)
            assert incremental <= len(second) + 2
        else:
            assert incremental < full_requests / 4
        for repo, res in second.items():
            assert res.cursor["updated"] >= cursors[repo]["updated"]
        if api == "rest":  # unchanged repositories answer 304 to the conditional pulls request
            assert sb.app.stats.requests.get("github.timeline", 0) <= 2 * len(want) + len(store.github_issues)


def _ts(value: str):
    from datetime import datetime

    return datetime.fromisoformat(value)


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_sandbox_errors_are_one_line(tmp_path, api):
    with _sandbox() as sb:
        bad = {**sb.env(), "GITHUB_TOKEN": "ghp_wrongwrongwrong"}
        with pytest.raises(AuthError) as e:
            connect(GitHubSettings.from_env(bad, api=api, http=FAST)).discover_repositories()
        assert "GITHUB_TOKEN" in str(e.value) and "ghp_wrongwrongwrong" not in str(e.value)
        src = connect(GitHubSettings.from_env(sb.env(), api=api, http=FAST))
        with pytest.raises(NotFoundError) as e2:
            src.extract_repository(tmp_path, "acme/no-such-repo", None)
        assert "acme/no-such-repo" in str(e2.value)
        with pytest.raises(NotFoundError) as e3:
            connect(GitHubSettings.from_env(sb.env(), api=api, http=FAST,
                                            organizations=["no-such-org"])).discover_repositories()
        assert "no-such-org" in str(e3.value)
        for err in (e, e2, e3):
            assert "\n" not in str(err.value) and isinstance(err.value, ConnectorError)


def _per_partition(root: Path, repo: str) -> dict:
    from landing_format import partition_dir

    return _essentials(root, partition_dir(repo))


def test_one_search_over_many_repositories_lands_what_per_repository_runs_land(tmp_path, monkeypatch):
    with _sandbox() as sb:
        first = _sync(sb, tmp_path / "full", "graphql")
        sb.app.advance(0.01)
        cursors = {r: res.cursor for r, res in first.items()}
        src = connect(GitHubSettings.from_env(sb.env(), http=FAST))
        repos = src.discover_repositories()
        sb.app.reset_stats()
        per = {r: src.extract_repository(tmp_path / "per", r, cursors[r]) for r in repos}
        per_requests = sum(sb.app.stats.requests.values())
        sb.app.reset_stats()
        multi = src.extract_repositories(tmp_path / "multi", cursors)
        multi_requests = sum(sb.app.stats.requests.values())
        assert multi_requests < per_requests and multi_requests <= 2
        monkeypatch.setattr(gq, "SEARCH_MAX_RESULTS", 3)  # a search over the cap goes repository by repository
        sb.app.reset_stats()
        capped = src.extract_repositories(tmp_path / "capped", cursors)
        assert sum(sb.app.stats.requests.values()) == len(repos) + 1
    changed = 0
    for r in repos:
        assert not isinstance(multi[r], Exception)
        assert multi[r].records == per[r].records == capped[r].records and multi[r].cursor == per[r].cursor, r
        assert _per_partition(tmp_path / "multi", r) == _per_partition(tmp_path / "per", r), r
        got = _per_partition(tmp_path / "multi", r)
        changed += len(got["pulls"]) + len(got["issues"])
        assert got["repos"] and json.loads(multi[r].manifest.read_text())["cursor"] == multi[r].cursor
    assert changed > 0


def test_sandbox_search_qualifiers_and_order(tmp_path):
    from datetime import datetime

    with _sandbox() as sb:
        src = connect(GitHubSettings.from_env(sb.env(), http=FAST))
        store = sb.app.store
        since = sorted(p.updated_at for p in store.github_pulls)[-40]
        q = (f"repo:acme/payments-api org:acme-labs is:pr updated:>={since.strftime('%Y-%m-%dT%H:%M:%SZ')} "
             "sort:updated-desc")
        data = src.graphql(gq.search_query(0), {"q": q, "first": 100, "after": None, "tlFirst": 1})["search"]
        want = [p for p in store.github_pulls if (p.repo == "acme/payments-api" or p.repo.startswith("acme-labs/"))
                and p.updated_at >= since]
        assert data["issueCount"] == len(want) > 0
        got = [(n["repository"]["nameWithOwner"], n["number"]) for n in data["nodes"]]
        assert sorted(got) == sorted((p.repo, p.number) for p in want)
        stamps = [datetime.fromisoformat(n["updatedAt"]) for n in data["nodes"]]
        assert stamps == sorted(stamps, reverse=True) and {n["__typename"] for n in data["nodes"]} == {"PullRequest"}
        issues = src.graphql(gq.search_query(0), {"q": "org:acme is:issue", "first": 5, "after": None,
                                                   "tlFirst": 1})["search"]
        assert issues["issueCount"] == sum(i.repo.startswith("acme/") for i in store.github_issues)
        assert {n["__typename"] for n in issues["nodes"]} == {"Issue"} and "issueState" in issues["nodes"][0]
        with pytest.raises(ConnectorError, match="256"):
            src.graphql(gq.search_query(0), {"q": "repo:acme/x " * 30, "first": 5, "after": None, "tlFirst": 1})
