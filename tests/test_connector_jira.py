"""The Jira connector: spec-shaped pages from a scripted server, then real HTTP against the sandbox."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors.http import AuthError, ConnectorError, HttpSettings
from connectors.jira import JiraSettings, JqlError, UnknownProjectError, connect
from connectors.jira_time import jql_date, parse_time, since_clause
from tests.scripted import ScriptedServer

FAST = HttpSettings(backoff_base_s=0.05, backoff_max_s=0.2, max_retries=6, connect_timeout_s=2, read_timeout_s=10)


# -- pure functions ---------------------------------------------------------------------------------
def test_times_parse_iso_offsets_and_epoch_millis():
    assert parse_time("2024-01-15T10:30:00.000+0530") == datetime(2024, 1, 15, 5, 0, tzinfo=UTC)
    assert parse_time(1475046060000) == datetime(2016, 9, 28, 7, 1, tzinfo=UTC)
    assert parse_time("1475046060000") == parse_time(1475046060000)


def test_incremental_clause_is_in_the_users_zone_minus_the_overlap():
    cursor = {"updated": "2024-03-10T23:55:00+00:00"}
    assert since_clause(cursor, 10, ZoneInfo("Asia/Kolkata")) == 'updated >= "2024/03/11 05:15"'
    assert since_clause(cursor, 10, ZoneInfo("America/Los_Angeles")) == 'updated >= "2024/03/10 16:45"'
    assert since_clause(None, 10, ZoneInfo("UTC")) is None
    assert jql_date(datetime(2024, 1, 1, 0, 0, 59, tzinfo=UTC), ZoneInfo("UTC")) == "2024/01/01 00:00"


def test_settings_from_env_name_the_missing_variables():
    with pytest.raises(ConnectorError, match="JIRA_URL"):
        JiraSettings.from_env({})
    with pytest.raises(ConnectorError, match="JIRA_EMAIL and JIRA_API_TOKEN.*JIRA_PAT"):
        JiraSettings.from_env({"JIRA_URL": "https://x.atlassian.net", "JIRA_EMAIL": "a@b.c"})
    s = JiraSettings.from_env({"JIRA_URL": "https://x", "JIRA_PAT": "topsecret"}, overlap_minutes=5)
    assert s.overlap_minutes == 5 and "topsecret" not in repr(s)


# -- a scripted Jira speaking the spec's example shapes ---------------------------------------------
class ScriptedJira(ScriptedServer):
    """Routes (method, path) to handlers(query, body) -> (status, json); records every request."""

    def __init__(self, routes):
        super().__init__(self._answer)
        self.routes = routes
        self.seen: list[tuple[str, str, dict, object]] = []

    def _answer(self, r):
        self.seen.append((r.method, r.path, r.query, r.body))
        handler = self.routes.get((r.method, r.path))
        status, obj = handler(r.query, r.body) if handler else (404, {"errorMessages": ["null for uri"]})
        return status, {}, obj


def _hist(i: int, created) -> dict:
    return {"id": str(i), "created": created, "author": {"accountId": "a1"},
            "items": [{"field": "status", "fieldtype": "jira", "fieldId": "status", "from": "1", "fromString": "To Do",
                       "to": "3", "toString": "In Progress"}]}


def _issue(n: int, updated: str, histories: list[dict], total: int, ptype: str = "software") -> dict:
    return {"id": str(10000 + n), "key": f"SD-{n}",
            "fields": {"updated": updated, "project": {"key": "SD", "projectTypeKey": ptype},
                       "status": {"name": "Open", "statusCategory": {"key": "new"}}},
            "changelog": {"startAt": 0, "maxResults": len(histories), "total": total, "histories": histories}}


def _read(root: Path, stream: str) -> list[dict]:
    return [json.loads(line) for p in sorted(root.rglob(f"{stream}-*.jsonl")) for line in p.read_text().splitlines()]


def _common_routes(deployment: str, tz: str) -> dict:
    fields = [{"id": "customfield_10001", "name": "Team", "custom": True},
              {"id": "customfield_10020", "name": "Sprint", "custom": True},
              {"id": "customfield_10021", "name": "Flagged", "custom": True},
              {"id": "customfield_10014", "name": "Epic Link", "custom": True},
              {"id": "summary", "name": "Summary", "custom": False}]
    v = 3 if deployment == "Cloud" else 2
    return {("GET", "/rest/api/2/serverInfo"): lambda q, b: (200, {"deploymentType": deployment, "version": "10"}),
            ("GET", f"/rest/api/{v}/myself"): lambda q, b: (200, {"accountId": "a1", "timeZone": tz}),
            ("GET", f"/rest/api/{v}/field"): lambda q, b: (200, fields)}


def test_cloud_pages_bulkfetch_merge_and_approvals(tmp_path):
    long_embedded = [_hist(i, f"2024-02-01T10:{i % 60:02d}:00.000+0530") for i in range(50, 150)]
    pages = {None: {"issues": [_issue(1, "2024-02-01T10:00:00.000+0530", long_embedded, 150, "service_desk")],
                    "nextPageToken": "t2", "isLast": False},
             "t2": {"issues": [_issue(2, "2024-02-02T09:00:00.000-0800", [_hist(900, "2024-02-02T09:00:00.000-0800")],
                                      1, "service_desk")], "isLast": True}}
    # The bulk changelog splits issue 1 across two pages and sends `created` as epoch millis.
    bulk = {None: {"issueChangeLogs": [{"issueId": "10001", "changeHistories": [
                _hist(i, 1706760000000 + i) for i in range(80)]}], "nextPageToken": "b2"},
            "b2": {"issueChangeLogs": [{"issueId": "10001", "changeHistories": [
                _hist(i, 1706760000000 + i) for i in range(80, 150)]}]}}
    approvals = {"0": {"size": 1, "start": 0, "limit": 1, "isLastPage": False,
                       "values": [{"id": "1", "finalDecision": "approved", "approvers": []}]},
                 "1": {"size": 1, "start": 1, "limit": 1, "isLastPage": True,
                       "values": [{"id": "2", "finalDecision": "declined", "approvers": []}]}}
    routes = _common_routes("Cloud", "Asia/Kolkata") | {
        ("GET", "/rest/api/3/search/jql"): lambda q, b: (200, pages[q.get("nextPageToken")]),
        ("POST", "/rest/api/3/changelog/bulkfetch"): lambda q, b: (200, bulk[b.get("nextPageToken")]),
        ("GET", "/rest/servicedeskapi/request/SD-1/approval"): lambda q, b: (200, approvals[q["start"]]),
        ("GET", "/rest/servicedeskapi/request/SD-2/approval"): lambda q, b: (404, {"errorMessages": ["no request"]}),
    }
    with ScriptedJira(routes) as jira:
        src = connect(JiraSettings(url=jira.url, email="e@x", api_token="tok-123456", http=FAST))
        res = src.extract_project(tmp_path, "SD", None)
        search = next(s for s in jira.seen if s[1] == "/rest/api/3/search/jql")[2]
        assert search["expand"] == "changelog" and "customfield_10021" in search["fields"]
        asked = search["fields"].split(",")
        assert "*all" not in asked and "*navigable" not in asked and "summary" in asked  # item_flow.title
        logs = {r["issueKey"]: r["changeHistories"] for r in _read(tmp_path, "changelogs")}
        assert len(logs["SD-1"]) == 150 and len({h["id"] for h in logs["SD-1"]}) == 150
        assert logs["SD-1"][0]["created"] == "2024-02-01T04:00:00.000+0000"  # epoch millis made ISO
        assert len(logs["SD-2"]) == 1
        assert all("changelog" not in i for i in _read(tmp_path, "issues"))
        assert [a["approval"]["id"] for a in _read(tmp_path, "approvals")] == ["1", "2"]
        assert res.cursor == {"updated": "2024-02-02T17:00:00+00:00"}
        assert res.records == {"issues": 2, "changelogs": 2, "approvals": 2}
        # The next run asks from the cursor minus the overlap, in the user's zone (UTC+05:30).
        jira.seen.clear()
        src.extract_project(tmp_path / "2", "SD", res.cursor)
        jql = next(s for s in jira.seen if s[1] == "/rest/api/3/search/jql")[2]["jql"]
        assert jql == 'project = "SD" AND updated >= "2024/02/02 22:20" ORDER BY updated ASC'


def test_datacenter_short_pages_and_changelog_fallback(tmp_path):
    issues = [_issue(n, f"2024-02-0{n}T10:00:00.000+0100", [_hist(n * 10, "2024-02-01T10:00:00.000+0100")],
                     3 if n == 2 else 1) for n in range(1, 6)]

    def search(q, b):  # the server caps the page at 2 whatever maxResults asks
        start = int(q["startAt"])
        return 200, {"startAt": start, "maxResults": 2, "total": 5, "issues": issues[start:start + 2]}

    def changelog(q, b):
        start = int(q["startAt"])
        values = [_hist(20 + i, "2024-02-01T11:00:00.000+0100") for i in range(3)][start:start + 2]
        return 200, {"startAt": start, "maxResults": 2, "total": 3, "isLast": start + 2 >= 3, "values": values}

    routes = _common_routes("Server", "Europe/Berlin") | {
        ("GET", "/rest/api/2/search"): search,
        ("GET", "/rest/api/2/issue/SD-2/changelog"): changelog}
    with ScriptedJira(routes) as jira:
        src = connect(JiraSettings(url=jira.url, pat="pat-secret-xyz", http=FAST))
        src.extract_project(tmp_path, "SD", None, reconcile=False)
        assert sorted(i["key"] for i in _read(tmp_path, "issues")) == [f"SD-{n}" for n in range(1, 6)]
        logs = {r["issueKey"]: r["changeHistories"] for r in _read(tmp_path, "changelogs")}
        assert len(logs["SD-2"]) == 3 and len(logs) == 5
        assert not any(s[1].endswith("bulkfetch") for s in jira.seen)  # DC: no bulkfetch
        assert [s[2]["startAt"] for s in jira.seen if s[1] == "/rest/api/2/search"] == ["0", "2", "4"]


def test_jira_400s_become_one_line_project_and_jql_errors(tmp_path):
    def search(q, b):
        if "NOPE" in q["jql"]:
            return 400, {"errorMessages": ["The value 'NOPE' does not exist for the field 'project'."], "errors": {}}
        return 400, {"errorMessages": ["Error in the JQL Query: The character '%' is a reserved JQL character."]}

    with ScriptedJira(_common_routes("Cloud", "UTC") | {("GET", "/rest/api/3/search/jql"): search}) as jira:
        src = connect(JiraSettings(url=jira.url, email="e@x", api_token="tok-123456", http=FAST))
        with pytest.raises(UnknownProjectError, match=r"^GET /rest/api/3/search/jql: 400: Jira does not know project 'NOPE'"
                                                      r".*does not exist") as e:
            src.extract_project(tmp_path, "NOPE", None)
        assert "\n" not in str(e.value)
        src.settings.jql = "summary ~ %"
        with pytest.raises(JqlError, match="reserved JQL character.*sources.jira.jql"):
            src.extract_project(tmp_path, "ABC", None)


def test_unreachable_host_names_jira_url():
    settings = JiraSettings(url="http://127.0.0.1:9", email="e@x", api_token="tok-123456",
                            http=HttpSettings(max_retries=1, backoff_base_s=0.01, connect_timeout_s=1))
    with pytest.raises(ConnectorError, match=r"Jira unreachable: 127.0.0.1:9 refused the connection on "
                                             r"GET /rest/api/2/serverInfo .*check JIRA_URL") as e:
        connect(settings)
    assert "tok-123456" not in str(e.value)


def test_bad_credentials_name_the_variables():
    routes = {("GET", "/rest/api/2/serverInfo"): lambda q, b: (200, {"deploymentType": "Cloud"}),
              ("GET", "/rest/api/3/myself"): lambda q, b: (401, {"errorMessages": ["Unauthorized"]})}
    with ScriptedJira(routes) as jira:
        with pytest.raises(AuthError, match="JIRA_EMAIL and JIRA_API_TOKEN") as e:
            connect(JiraSettings(url=jira.url, email="e@x", api_token="tok-123456", http=FAST))
        assert "tok-123456" not in str(e.value)


def test_approvals_field_found_by_schema_and_used_when_usable(tmp_path):
    """A localised Approvals field is found by its schema; its value lands without a request, and only an
    issue whose value is missing or of an unknown shape is asked of servicedeskapi."""
    fields = [{"id": "customfield_10777", "name": "Genehmigungen", "custom": True,
               "schema": {"type": "sd-approvals", "custom": "com.atlassian.servicedesk.approvals-plugin:sd-approvals",
                          "customId": 10777}},
              {"id": "customfield_10888", "name": "Approvals", "custom": True,  # a look-alike text field
               "schema": {"type": "string", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield"}}]
    one = {"id": "5", "name": "CAB", "finalDecision": "approved", "approvers": []}
    issues = [_issue(n, "2024-02-01T10:00:00.000+0000", [], 0, "service_desk") for n in (1, 2, 3, 4)]
    issues[0]["fields"]["customfield_10777"] = [one]  # usable: lands as is
    issues[1]["fields"]["customfield_10777"] = None  # no approvals: no request
    issues[2]["fields"]["customfield_10777"] = "5"  # unknown shape: ask servicedeskapi
    # issues[3] has no value at all (the field was not returned): ask servicedeskapi
    asked = {"values": [{"id": "9", "finalDecision": "pending", "approvers": []}], "isLastPage": True}
    routes = _common_routes("Cloud", "UTC") | {
        ("GET", "/rest/api/3/field"): lambda q, b: (200, fields),
        ("GET", "/rest/api/3/search/jql"): lambda q, b: (200, {"issues": issues, "isLast": True}),
        ("GET", "/rest/servicedeskapi/request/SD-3/approval"): lambda q, b: (200, asked),
        ("GET", "/rest/servicedeskapi/request/SD-4/approval"): lambda q, b: (200, asked),
    }
    with ScriptedJira(routes) as jira:
        src = connect(JiraSettings(url=jira.url, email="e@x", api_token="tok-123456", http=FAST))
        assert src.custom_fields()["approvals"] == ["customfield_10777"]
        src.extract_project(tmp_path, "SD", None)
        search = next(s for s in jira.seen if s[1] == "/rest/api/3/search/jql")[2]
        assert "customfield_10777" in search["fields"].split(",")
        assert sorted(s[1] for s in jira.seen if "servicedeskapi" in s[1]) == [
            "/rest/servicedeskapi/request/SD-3/approval", "/rest/servicedeskapi/request/SD-4/approval"]
    got = sorted((a["issueKey"], a["approval"]["id"]) for a in _read(tmp_path, "approvals"))
    assert got == [("SD-1", "5"), ("SD-3", "9"), ("SD-4", "9")]
    assert all("customfield_10777" not in i["fields"] for i in _read(tmp_path, "issues"))  # lands once


# -- against the sandbox (real HTTP) ----------------------------------------------------------------
SANDBOX_HTTP = HttpSettings(backoff_base_s=0.05, backoff_max_s=0.5, max_retries=8, connect_timeout_s=2,
                            read_timeout_s=10, max_in_flight=4)


@pytest.fixture(scope="module")
def small_store():
    from sandbox import generator

    return generator.generate("small", 1)


def _sandbox(store, deployment):
    import copy

    from sandbox.server import Sandbox

    return Sandbox(copy.deepcopy(store), port=0, jira_deployment=deployment)


def _sync(env: dict, root: Path, cursors: dict | None = None, **overrides) -> dict:
    src = connect(JiraSettings.from_env(env, http=SANDBOX_HTTP, **overrides))
    src.extract_site(root)
    return {key: src.extract_project(root, key, (cursors or {}).get(key), reconcile=True)
            for key in src.discover_projects()}


def _landed(root: Path) -> dict:
    """What landed, keyed for comparison: issues by id, history ids per issue, approvals per issue."""
    issues = {i["id"]: i for i in _read(root, "issues")}
    histories: dict[str, list[str]] = {}
    for r in _read(root, "changelogs"):
        histories.setdefault(r["issueKey"], []).extend(h["id"] for h in r["changeHistories"])
    approvals: dict[str, list[dict]] = {}
    for r in _read(root, "approvals"):
        approvals.setdefault(r["issueKey"], []).append(r["approval"])
    remote: dict[str, list[str]] = {}
    for r in _read(root, "remote_links"):
        remote.setdefault(r["issueKey"], []).extend(x["object"]["url"] for x in r["remoteLinks"])
    return {"issues": issues, "histories": histories, "approvals": approvals, "remote_links": remote}


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_full_sync_lands_every_issue_and_history_once(small_store, tmp_path, deployment):
    with _sandbox(small_store, deployment) as sb:
        store = sb.app.store
        results = _sync(sb.env(), tmp_path)
        got = _landed(tmp_path)
        assert sorted(i["key"] for i in got["issues"].values()) == sorted(i.key for i in store.jira_issues)
        assert len(_read(tmp_path, "issues")) == len(store.jira_issues)  # each issue once
        # every field the warehouse reads is asked for, titles included
        titles = {i["key"]: i["fields"].get("summary") for i in _read(tmp_path, "issues")}
        assert titles == {i.key: i.summary for i in store.jira_issues}
        long_ones = [i for i in store.jira_issues if len(i.histories) > 100]
        assert long_ones, "the store should hold issues with more than 100 histories"
        for issue in store.jira_issues:
            assert sorted(got["histories"].get(issue.key, []), key=int) == sorted(str(h.id) for h in issue.histories)
            assert len(got["approvals"].get(issue.key, [])) == len(issue.approvals), issue.key
        assert sum(len(i.approvals) for i in store.jira_issues) > 0
        ids = {r["key"] for r in _read(tmp_path, "issue_ids")}
        assert ids == {i.key for i in store.jira_issues}
        # Times come in the user's offset; at least some are not UTC.
        assert any(not h["created"].endswith("+0000") for r in _read(tmp_path, "changelogs")
                   for h in r["changeHistories"])
        for key, res in results.items():
            top = max(i.updated for i in store.jira_issues if i.project == key)
            assert parse_time(res.cursor["updated"]) == top.replace(microsecond=top.microsecond // 1000 * 1000)
        assert {p.name.split("-")[0] for p in (tmp_path / "jira" / "_site").rglob("*.jsonl")} == \
            {"statuses", "fields", "myself", "link_types"}
        secrets = [v for k, v in sb.env().items() if k in ("JIRA_API_TOKEN", "JIRA_PAT")]
        for f in tmp_path.rglob("*"):
            if f.is_file():
                assert not any(s in f.read_text() for s in secrets), f


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_remote_links_of_every_changed_issue_land_and_a_site_without_them_goes_on(small_store, tmp_path, deployment):
    from sandbox.jira_api import JiraSite

    with _sandbox(small_store, deployment) as sb:
        _sync(sb.env(), tmp_path / "on")
        got = _landed(tmp_path / "on")
        assert got["remote_links"] == {i.key: [x.url for x in i.remote_links] for i in small_store.jira_issues}
        assert sum(len(v) for v in got["remote_links"].values()) > 0
        for mode, status in (("denied", 403), ("absent", 404)):
            sb.app.jira_site = JiraSite(remote_links=mode)
            sb.app.reset_stats()
            results = _sync(sb.env(), tmp_path / mode)
            off = _landed(tmp_path / mode)
            assert off["remote_links"] == {} and off["issues"].keys() == got["issues"].keys()
            assert off["histories"] == got["histories"]
            # asked until the first refusal (the requests already in flight then), not once per issue
            assert 1 <= sum(v for k, v in sb.app.stats.requests.items() if "remotelink" in k) < 10
            v = 3 if deployment == "cloud" else 2
            gaps = [g for r in results.values() for g in r.gaps]
            assert {(g["endpoint"], g["status"]) for g in gaps} == {
                (f"GET /rest/api/{v}/issue/{{key}}/remotelink", status)}
            assert len(gaps) == len(results)  # each project's manifest says so
        # a site too big for a request per changed issue turns them off (sources.jira.remote_links = false)
        sb.app.jira_site = JiraSite()
        sb.app.reset_stats()
        results = _sync(sb.env(), tmp_path / "unwanted", remote_links=False)
        unwanted = _landed(tmp_path / "unwanted")
        assert unwanted["remote_links"] == {} and unwanted["issues"].keys() == got["issues"].keys()
        assert not [k for k in sb.app.stats.requests if "remotelink" in k]
        assert not [g for r in results.values() for g in r.gaps]  # asked not to: not a gap


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_approvals_from_the_field_equal_the_servicedeskapi_fallback(small_store, tmp_path, deployment):
    runs = {}
    for name, hidden in (("field", set()), ("fallback", {"Approvals"})):
        with _sandbox(small_store, deployment) as sb:
            sb.app.jira_hide_fields = hidden
            src = connect(JiraSettings.from_env(sb.env(), http=SANDBOX_HTTP))
            for key in src.discover_projects():
                src.extract_project(tmp_path / name, key, None)
            # the two sandboxes differ only in their port, which every `self` link carries
            landed = json.loads(json.dumps(_landed(tmp_path / name)).replace(sb.url, "BASE"))
            runs[name] = (landed, dict(src.client.log.requests))
    (field, field_requests), (fallback, fallback_requests) = runs["field"], runs["fallback"]
    sd_issues = [i for i in small_store.jira_issues if small_store.jira_projects[i.project].type == "service_desk"]
    assert not any("servicedeskapi" in k for k in field_requests)  # zero extra requests with the field
    assert sum(v for k, v in fallback_requests.items() if "servicedeskapi" in k) == len(sd_issues)
    assert field["approvals"] == fallback["approvals"]
    assert field["issues"] == fallback["issues"] and field["histories"] == fallback["histories"]
    assert sum(len(v) for v in field["approvals"].values()) == sum(len(i.approvals) for i in sd_issues) > 0
    for issue in sd_issues:
        assert [a["id"] for a in field["approvals"].get(issue.key, [])] == [a.id for a in issue.approvals]


def test_faults_change_nothing_and_retries_wait_as_asked(small_store, tmp_path):
    with _sandbox(small_store, "cloud") as sb:
        _sync(sb.env(), tmp_path / "clean")
        sb.app.reset_stats()
        sb.app.set_faults(rate=0.1, kinds=["429", "503", "reset", "502_burst"], retry_after_s=1, seed=7)
        _sync(sb.env(), tmp_path / "faulty")
        assert sum(sb.app.stats.faults.values()) > 0
        assert sb.app.stats.early_retries == 0
    clean, faulty = _landed(tmp_path / "clean"), _landed(tmp_path / "faulty")
    assert faulty == clean


def test_incremental_run_fetches_only_what_changed(small_store, tmp_path):
    from datetime import timedelta

    with _sandbox(small_store, "cloud") as sb:
        store = sb.app.store
        first = _sync(sb.env(), tmp_path / "full")
        before = {i.key: (i.updated, len(i.histories)) for i in store.jira_issues}
        full_requests = sum(r.requests for r in first.values())
        changed_n = sb.app.advance(0.01)
        changed = {i.key for i in store.jira_issues if (i.updated, len(i.histories)) != before.get(i.key)}
        assert changed_n > 0 and changed
        sb.app.reset_stats()
        src = connect(JiraSettings.from_env(sb.env(), http=SANDBOX_HTTP))
        second = {k: src.extract_project(tmp_path / "inc", k, first[k].cursor) for k in first}
        got = _landed(tmp_path / "inc")
        landed = {i["key"] for i in got["issues"].values()}
        expected = set()
        for key, res in first.items():
            since = parse_time(res.cursor["updated"]) - timedelta(minutes=10)
            since = since.replace(second=0, microsecond=0)
            expected |= {i.key for i in store.jira_issues if i.project == key and i.updated >= since}
        assert changed <= landed and landed == expected
        for issue in store.jira_issues:
            if issue.key in landed:
                assert len(got["histories"][issue.key]) == len(issue.histories)
        # One search page per project, the field list, at most one bulkfetch, and per changed issue only its
        # remote links (no bulk endpoint lists them)
        per_issue = {k: v for k, v in src.client.log.requests.items() if "{key}" in k}
        assert per_issue == {"GET /rest/api/3/issue/{key}/remotelink": len(landed)}
        assert sum(r.requests for r in second.values()) - len(landed) <= min(len(second) + 2, full_requests - 1)
        assert got["remote_links"] == {k: [x.url for x in i.remote_links] for i in store.jira_issues
                                       if (k := i.key) in landed}
        assert not any("servicedeskapi" in k for k in src.client.log.requests)
        for key, res in second.items():
            assert res.cursor["updated"] >= first[key].cursor["updated"]


def test_user_mistakes_give_one_line_errors(small_store, tmp_path):
    with _sandbox(small_store, "cloud") as sb:
        bad = {**sb.env(), "JIRA_API_TOKEN": "wrong-token-123"}
        with pytest.raises(AuthError, match="JIRA_EMAIL and JIRA_API_TOKEN") as e:
            connect(JiraSettings.from_env(bad, http=SANDBOX_HTTP))
        assert "wrong-token-123" not in str(e.value) and "\n" not in str(e.value)
        src = connect(JiraSettings.from_env(sb.env(), http=SANDBOX_HTTP))
        with pytest.raises(UnknownProjectError, match="NOPE") as e:
            src.extract_project(tmp_path, "NOPE", None)
        assert "\n" not in str(e.value)
        src.settings.jql = "status = = Done"
        with pytest.raises(JqlError, match="sources.jira.jql") as e:
            src.extract_project(tmp_path, next(iter(sb.app.store.jira_projects)), None)
        assert "\n" not in str(e.value)
    with _sandbox(small_store, "datacenter") as sb, pytest.raises(AuthError, match="JIRA_PAT"):
        connect(JiraSettings.from_env({**sb.env(), "JIRA_PAT": "nope-nope"}, http=SANDBOX_HTTP))


def test_one_search_over_all_projects_lands_what_per_project_runs_land(small_store, tmp_path):
    with _sandbox(small_store, "cloud") as sb:
        src = connect(JiraSettings.from_env(sb.env(), http=SANDBOX_HTTP))
        keys = src.discover_projects()
        first = src.extract_projects(tmp_path / "full", {k: None for k in keys})
        assert len(keys) > 1 and all(not isinstance(r, Exception) for r in first.values())
        sb.app.advance(0.01)
        cursors = {k: first[k].cursor for k in keys}
        cursors[keys[0]] = None  # a project without a cursor joins the search whole
        src = connect(JiraSettings.from_env(sb.env(), http=SANDBOX_HTTP))
        per = {k: src.extract_project(tmp_path / "per", k, cursors[k]) for k in keys}
        per_requests = src.client.log.total
        src = connect(JiraSettings.from_env(sb.env(), http=SANDBOX_HTTP))
        multi = src.extract_projects(tmp_path / "multi", cursors)
        searches = src.client.log.requests.get("GET /rest/api/3/search/jql", 0)
        assert src.client.log.total < per_requests and searches < len(keys)
    for k in keys:
        assert multi[k].records == per[k].records and multi[k].cursor == per[k].cursor, k
        a = _landed(tmp_path / "per" / "jira" / k)
        b = _landed(tmp_path / "multi" / "jira" / k)
        assert a == b and a["issues"], k
        manifest = json.loads(next((tmp_path / "multi" / "jira" / k).glob("*/_manifest.json")).read_text())
        assert manifest["complete"] and manifest["cursor"] == multi[k].cursor


def test_a_bad_project_in_a_search_over_many_fails_alone(small_store, tmp_path):
    with _sandbox(small_store, "cloud") as sb:
        src = connect(JiraSettings.from_env(sb.env(), http=SANDBOX_HTTP))
        good = src.discover_projects()[0]
        out = src.extract_projects(tmp_path, {good: None, "NOPE": None})
    assert isinstance(out["NOPE"], UnknownProjectError) and "NOPE" in str(out["NOPE"])
    assert not isinstance(out[good], Exception) and out[good].records["issues"] > 0
