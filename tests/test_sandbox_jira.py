"""The Jira emulator over real HTTP: shapes against Atlassian's OpenAPI subset, pagination, JQL, auth, `jira`."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jira
import pytest
import requests
from openapi_schema_validator import OAS30Validator

from sandbox import server
from sandbox.cache import invalidate
from sandbox.jira_api import EMBEDDED_CHANGELOG_CAP
from sandbox.model import (
    FIELD_FLAGGED,
    Calendar,
    JiraChangeItem,
    JiraHistory,
    JiraIssue,
    JiraLink,
    JiraProject,
    JiraStatus,
    JsmApproval,
    Person,
    Store,
    Team,
)

SPECS = Path(__file__).resolve().parents[1] / "sandbox" / "specs"
T0 = datetime(2024, 3, 1, 7, 30, tzinfo=UTC)  # 10:30 in the user's zone (Europe/Moscow, +0300)
BIG = "AL-3"  # the issue with more histories than Cloud embeds


def build_store() -> Store:
    """A small organisation by hand: 2 software projects and a service desk, one issue with 130 histories."""
    teams = {k: Team(k, k.title(), Calendar("Europe/Moscow"), k) for k in ("alpha", "beta")}
    people = {}
    for n, (tz, team) in enumerate([("Europe/Moscow", "alpha"), ("America/New_York", "alpha"),
                                    ("Asia/Kolkata", "beta"), ("Europe/Berlin", "beta")], start=1):
        pid = f"p{n:04d}"
        people[pid] = Person(pid, f"Person {n}", f"person{n}@example.com", team, tz, f"5b10ac8d82e05b22cc7d4e{n:02d}",
                             f"JIRAUSER{10000 + n}", f"person{n}", f"person{n}")
    statuses = {s.id: s for s in [JiraStatus("1", "To Do", "new", "backlog"),
                                  JiraStatus("3", "In Progress", "indeterminate", "active"),
                                  JiraStatus("10001", "Review", "indeterminate", "queue"),
                                  JiraStatus("10002", "Awaiting approval", "indeterminate", "approval"),
                                  JiraStatus("6", "Done", "done", "done")]}
    projects = {"AL": JiraProject("10000", "AL", "Alpha", "software", "alpha", "p0001", list(statuses)),
                "BE": JiraProject("10001", "BE", "Beta", "software", "beta", "p0003", list(statuses)),
                "SD": JiraProject("10002", "SD", "Service", "service_desk", "beta", "p0004", list(statuses), "1")}
    issues: list[JiraIssue] = []
    hid = 1000
    counters = {"AL": 0, "BE": 0, "SD": 0}
    for n in range(45):
        proj = ("AL", "BE", "SD")[n % 3]
        counters[proj] += 1
        key = f"{proj}-{counters[proj]}"
        created = T0 - timedelta(days=60 - n, hours=n % 5)
        updated = created + timedelta(days=3, minutes=n)
        nh = 130 if key == BIG else 1 + n % 4
        histories = []
        for h in range(nh):
            hid += 1
            to = ("3", "10001", "6")[h % 3]
            frm = ("1", "3", "10001")[h % 3]
            items = [JiraChangeItem("status", "jira", "status", frm, statuses[frm].name, to, statuses[to].name)]
            if h == 0:
                items.append(JiraChangeItem("assignee", "jira", "assignee", None, None, "p0002", "Person 2"))
            if h == 1:
                items.append(JiraChangeItem("Flagged", "custom", FIELD_FLAGGED, None, None, "[10019]", "Impediment"))
            histories.append(JiraHistory(hid, ("p0001", "p0002", None)[h % 3], created + timedelta(hours=h + 1),
                                         items))
        issues.append(JiraIssue(
            id=10000 + n, key=key, project=proj, issuetype="Service Request" if proj == "SD" else "Story",
            summary=f"Issue {key}", created=created, updated=updated, reporter="p0001",
            assignee="p0002" if n % 2 else None, status=("1", "3", "6")[n % 3], priority="Medium",
            resolution="Done" if n % 3 == 2 else None, resolutiondate=updated if n % 3 == 2 else None,
            labels=["x"], parent=None, team="alpha" if proj == "AL" else None, flagged=n % 5 == 0,
            sprint="AL Sprint 1" if proj == "AL" else None, fix_versions=["1.0"] if n % 4 == 0 else [], links=[],
            histories=histories))
    # the time zone case: AL-10 updated 10:30 Moscow (07:30 UTC), BE-10 at 09:30 Moscow (06:30 UTC)
    by_key = {i.key: i for i in issues}
    by_key["AL-10"].updated = T0
    by_key["BE-10"].updated = T0 - timedelta(hours=1)
    link = JiraLink("20001", "Blocks", "AL-1", "BE-1", T0)
    by_key["AL-1"].links.append(link)
    by_key["BE-1"].links.append(link)
    sd = by_key["SD-1"]
    for a in range(7):
        done = a < 6
        sd.approvals.append(JsmApproval(str(a + 1), f"Approval {a + 1}", T0 + timedelta(hours=a),
                                        T0 + timedelta(hours=a, minutes=30) if done else None,
                                        ("approved", "declined")[a % 2] if done else "pending",
                                        [("p0003", "approved" if done else "pending")]))
    return Store(seed=0, scale="hand", now=T0 + timedelta(days=30), teams=teams, people=people, memberships=[],
                 jira_statuses=statuses, jira_projects=projects, jira_issues=issues, github_orgs=[], github_repos=[],
                 github_team_members={}, github_pulls=[], github_issues=[], jira_user_pid="p0001",
                 github_user_login="person1")


@pytest.fixture(scope="module")
def cloud():
    with server.Sandbox(build_store(), port=0, jira_deployment="cloud") as sb:
        yield sb


@pytest.fixture(scope="module")
def dc():
    with server.Sandbox(build_store(), port=0, jira_deployment="datacenter") as sb:
        yield sb


def cloud_session(sb) -> requests.Session:
    s = requests.Session()
    s.auth = (sb.app.store.people[sb.app.store.jira_user_pid].email, server.JIRA_API_TOKEN)
    return s


def dc_session() -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {server.JIRA_PAT}"
    return s


# -- schema validation ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def spec() -> dict:
    doc = json.loads((SPECS / "jira-subset-search-changelog-status.json").read_text())
    more = json.loads((SPECS / "jira-subset-client-endpoints.json").read_text())  # the same document's
    doc["paths"] |= more["paths"]
    for kind, items in more["components"].items():
        doc["components"].setdefault(kind, {}).update(items)
    # Jira sends null for an empty from/to of a change item; Atlassian's document does not say nullable.
    for prop in ("from", "fromString", "to", "toString"):
        doc["components"]["schemas"]["ChangeDetails"]["properties"][prop]["nullable"] = True
    return doc


def validate(spec: dict, path: str, method: str, body) -> None:
    schema = spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
    OAS30Validator({**copy.deepcopy(schema), "components": spec["components"]}).validate(body)


def test_every_spec_path_validates(cloud, spec):
    s, u = cloud_session(cloud), cloud.url + "/rest/api/3"
    checks = [
        ("/rest/api/3/search/jql", "get", s.get(u + "/search/jql", params={
            "jql": "project in (AL, SD)", "fields": "*all", "expand": "changelog,names", "maxResults": 50})),
        ("/rest/api/3/search/jql", "post", s.post(u + "/search/jql", json={
            "jql": "project in (AL, SD)", "fields": ["summary", "status", "assignee"], "maxResults": 3})),
        ("/rest/api/3/issue/{issueIdOrKey}", "get", s.get(u + "/issue/AL-1", params={"expand": "changelog"})),
        ("/rest/api/3/issue/{issueIdOrKey}/changelog", "get", s.get(u + f"/issue/{BIG}/changelog")),
        ("/rest/api/3/changelog/bulkfetch", "post", s.post(u + "/changelog/bulkfetch", json={
            "issueIdsOrKeys": ["AL-1", BIG, "10001"], "maxResults": 50})),
        ("/rest/api/3/status", "get", s.get(u + "/status")),
        ("/rest/api/3/statuses/search", "get", s.get(u + "/statuses/search", params={"maxResults": 2})),
        ("/rest/api/3/statuscategory", "get", s.get(u + "/statuscategory")),
        ("/rest/api/3/field", "get", s.get(u + "/field")),
        ("/rest/api/3/serverInfo", "get", s.get(u + "/serverInfo")),
        ("/rest/api/3/myself", "get", s.get(u + "/myself")),
        ("/rest/api/3/issueLinkType", "get", s.get(u + "/issueLinkType")),
    ]
    for path, method, resp in checks:
        assert resp.status_code == 200, (path, resp.text)
        validate(spec, path, method, resp.json())
    assert {p for p, _, _ in checks} | {"/rest/api/3/search"} | CLIENT_PATHS == set(spec["paths"])


def test_dc_shapes_validate(dc, spec):
    s, u = dc_session(), dc.url + "/rest/api/2"
    validate(spec, "/rest/api/3/search", "get", s.get(u + "/search", params={
        "jql": "project in (AL, SD)", "expand": "changelog"}).json())
    validate(spec, "/rest/api/3/issue/{issueIdOrKey}", "get", s.get(u + "/issue/AL-1").json())
    validate(spec, "/rest/api/3/myself", "get", s.get(u + "/myself").json())
    validate(spec, "/rest/api/3/status", "get", s.get(u + "/status").json())


def test_approvals_shape_and_paging(cloud, dc):
    example = json.loads((SPECS / "jsm-servicedeskapi-approval-example.json").read_text())["example"]
    for sb, s in ((cloud, cloud_session(cloud)), (dc, dc_session())):
        seen, start = [], 0
        while True:
            r = s.get(sb.url + "/rest/servicedeskapi/request/SD-1/approval", params={"start": start, "limit": 3})
            assert r.status_code == 200
            page = r.json()
            assert set(page) == set(example)
            for v in page["values"]:
                assert set(example["values"][0]) - {"completedDate"} <= set(v)
                assert set(v["createdDate"]) == set(example["values"][0]["createdDate"])
                assert v["createdDate"]["jira"].endswith("+0300")
            seen += [v["id"] for v in page["values"]]
            if page["isLastPage"]:
                break
            start += page["size"]
        assert seen == [str(n) for n in range(1, 8)]
    pending = page["values"][-1]
    assert pending["finalDecision"] == "pending" and "completedDate" not in pending
    assert cloud_session(cloud).get(cloud.url + "/rest/servicedeskapi/request/AL-1/approval").status_code == 404


def _approvals_field(session, sb, api: int) -> dict | None:
    return next((f for f in session.get(sb.url + f"/rest/api/{api}/field").json()
                 if (f.get("schema") or {}).get("type") == "sd-approvals"), None)


def _search(session, sb, api: int, jql: str, **params) -> list[dict]:
    path = "/search/jql" if api == 3 else "/search"
    r = session.get(sb.url + f"/rest/api/{api}{path}", params={"jql": jql, "maxResults": 100, **params})
    assert r.status_code == 200, r.text
    return r.json()["issues"]


def test_approvals_field_renders_what_servicedeskapi_returns(cloud, dc):
    for sb, s, api in ((cloud, cloud_session(cloud), 3), (dc, dc_session(), 2)):
        field = _approvals_field(s, sb, api)
        assert field is not None and field["name"] == "Approvals" and field["custom"] is True
        assert field["schema"]["custom"] == "com.atlassian.servicedesk.approvals-plugin:sd-approvals"
        fid = field["id"]
        for fields in (fid, "*all", "*navigable", f"status,{fid}"):
            issues = _search(s, sb, api, "project in (AL, SD)", fields=fields)
            sd = [i for i in issues if i["key"].startswith("SD-")]
            assert len(sd) == 15 and len(issues) == 30
            for i in sd:
                api_values = s.get(sb.url + f"/rest/servicedeskapi/request/{i['key']}/approval",
                                   params={"limit": 50}).json()["values"]
                assert i["fields"][fid] == api_values, (fields, i["key"])
            assert len(next(i for i in sd if i["key"] == "SD-1")["fields"][fid]) == 7
            for i in issues:
                if i["key"].startswith("AL-"):
                    assert i["fields"].get(fid) is None
        # not asked for: not rendered
        assert all(fid not in i["fields"] for i in _search(s, sb, api, "project = SD", fields="status"))
        names = s.get(sb.url + f"/rest/api/{api}/issue/SD-1", params={"expand": "names"}).json()
        assert names["names"][fid] == "Approvals" and len(names["fields"][fid]) == 7


def test_hidden_or_absent_approvals_field(cloud):
    s = cloud_session(cloud)
    fid = _approvals_field(s, cloud, 3)["id"]
    cloud.app.jira_hide_fields = {"Approvals"}
    try:
        assert _approvals_field(s, cloud, 3) is None
        for fields in (fid, "*all"):
            assert all(fid not in i.get("fields", {}) for i in _search(s, cloud, 3, "project = SD", fields=fields))
    finally:
        cloud.app.jira_hide_fields = set()
    assert _approvals_field(s, cloud, 3) is not None
    store = build_store()
    del store.jira_projects["SD"]
    store.jira_issues = [i for i in store.jira_issues if i.project != "SD"]
    with server.Sandbox(store, port=0, jira_deployment="datacenter") as sb:
        assert _approvals_field(dc_session(), sb, 2) is None  # no service desk, no JSM field
        assert all(fid not in i["fields"] for i in _search(dc_session(), sb, 2, "project = AL", fields="*all"))


# -- search and pagination -------------------------------------------------------------------------------

def page_jql(sb, jql: str, size: int, post: bool = False, **extra) -> tuple[list[dict], int]:
    s, out, token, calls = cloud_session(sb), [], None, 0
    while True:
        params = {"jql": jql, "maxResults": size, **extra}
        if token:
            params["nextPageToken"] = token
        r = (s.post(sb.url + "/rest/api/3/search/jql", json=params) if post
             else s.get(sb.url + "/rest/api/3/search/jql", params=params))
        calls += 1
        assert r.status_code == 200, r.text
        body = r.json()
        out += body["issues"]
        token = body.get("nextPageToken")
        assert body["isLast"] == (token is None)
        if token is None:
            return out, calls


def test_search_jql_pages_every_issue_once(cloud):
    store = cloud.app.store
    want = {str(i.id) for i in store.jira_issues if i.project in ("AL", "BE")}
    for post in (False, True):
        got, calls = page_jql(cloud, "project in (AL, BE) ORDER BY key ASC", 7, post=post)
        assert len(got) == len(want) and {i["id"] for i in got} == want
        assert calls == -(-len(want) // 7)
    ids, _ = page_jql(cloud, "project = SD", 4)
    assert all(set(i) == {"id"} for i in ids)  # search/jql returns ids only by default


def test_search_jql_order_and_default(cloud):
    store = cloud.app.store
    got, _ = page_jql(cloud, "project = AL ORDER BY updated DESC", 50, fields="updated")
    al = sorted((i for i in store.jira_issues if i.project == "AL"), key=lambda i: i.updated, reverse=True)
    assert [g["key"] for g in got] == [i.key for i in al]
    got, _ = page_jql(cloud, "project = BE", 50, fields="key")
    be = sorted((i for i in store.jira_issues if i.project == "BE"), key=lambda i: i.created, reverse=True)
    assert [g["key"] for g in got] == [i.key for i in be]  # default ORDER BY created DESC
    got, _ = page_jql(cloud, "project = BE ORDER BY key DESC", 50, fields="key")
    assert [g["key"] for g in got] == [f"BE-{n}" for n in range(15, 0, -1)]  # numeric, not text, order


def test_page_tokens_survive_concurrent_updates(cloud):
    s, store = cloud_session(cloud), cloud.app.store
    jql = "project in (AL, BE, SD) ORDER BY updated ASC"
    seen, token = [], None
    for step in range(100):
        params = {"jql": jql, "maxResults": 10, "fields": "updated"}
        if token:
            params["nextPageToken"] = token
        body = s.get(cloud.url + "/rest/api/3/search/jql", params=params).json()
        seen += [i["key"] for i in body["issues"]]
        if step == 1:  # an issue already seen and one not yet seen are updated between pages
            with cloud.app.lock:
                for key in (seen[0], "AL-14"):
                    next(i for i in store.jira_issues if i.key == key).updated = store.now
                invalidate(store)  # what advance() does after changing the store
        token = body.get("nextPageToken")
        if token is None:
            break
    assert set(seen) == {i.key for i in store.jira_issues}  # nothing missed; the moved ones may repeat


def test_embedded_changelog_capped_with_true_total(cloud, dc):
    got, _ = page_jql(cloud, f"key = {BIG}", 10, fields="status", expand="changelog")
    log = got[0]["changelog"]
    assert log["total"] == 130 and len(log["histories"]) == EMBEDDED_CHANGELOG_CAP == log["maxResults"]
    ids = [int(h["id"]) for h in log["histories"]]
    big = next(i for i in cloud.app.store.jira_issues if i.key == BIG)
    assert ids == [h.id for h in reversed(big.histories)][:EMBEDDED_CHANGELOG_CAP]  # the newest, newest first
    r = dc_session().get(dc.url + "/rest/api/2/search", params={"jql": f"key = {BIG}", "expand": "changelog"})
    log = r.json()["issues"][0]["changelog"]
    assert log["total"] == 130 == len(log["histories"])  # Data Center embeds them all


def test_updated_in_user_time_zone(cloud):
    got, _ = page_jql(cloud, 'project in (AL, BE) AND updated >= "2024/03/01 10:00"', 50, fields="updated")
    keys = {g["key"] for g in got}
    assert "AL-10" in keys and "BE-10" not in keys  # 10:30 and 09:30 Moscow; in UTC both are before 10:00
    assert next(g for g in got if g["key"] == "AL-10")["fields"]["updated"] == "2024-03-01T10:30:00.000+0300"
    for jql, inside in [('updated > "2024-03-01 10:30"', False), ('updated <= "2024/03/01 10:30"', True),
                        ("updated < 2024-03-01", False), ('updated >= "2024/03/01"', True)]:
        got, _ = page_jql(cloud, f"key = AL-10 AND {jql}", 5)
        assert bool(got) == inside, jql


def test_jql_errors(cloud):
    s = cloud_session(cloud)
    for jql, message in [
        ("project = NOPE", "The value 'NOPE' does not exist for the field 'project'."),
        ("project in (AL, ZZ)", "The value 'ZZ' does not exist for the field 'project'."),
        ("projekt = AL", "Field 'projekt' does not exist or you do not have permission to view it."),
        ("order by created", ("Unbounded JQL queries are not allowed here. Please add a search restriction to "
                             "your query.")),
    ]:
        r = s.get(cloud.url + "/rest/api/3/search/jql", params={"jql": jql})
        assert r.status_code == 400 and r.json() == {"errorMessages": [message], "errors": {}}, jql
    for jql in ("project = ", "project = AL AND", "project AL", "(project = AL", 'updated >= "yesterday"'):
        r = s.get(cloud.url + "/rest/api/3/search/jql", params={"jql": jql})
        assert r.status_code == 400 and r.json()["errorMessages"][0].startswith(("Error in the JQL Query:",
                                                                                 "Date value")), jql
    r = s.get(cloud.url + "/rest/api/3/search/jql", params={"jql": "project = AL", "nextPageToken": "garbage"})
    assert r.status_code == 400
    r = s.get(cloud.url + "/rest/api/3/search/jql", params={"jql": "project AL"})
    assert r.json()["errorMessages"][0].startswith("Error in the JQL Query: Expecting operator but got 'AL'.")
    count = s.post(cloud.url + "/rest/api/3/search/approximate-count", json={"jql": "project = BE"}).json()
    assert count == {"count": 15}
    got, _ = page_jql(cloud, "issuekey in (AL-1, BE-2) OR key = SD-3", 10)
    assert len(got) == 3
    r = s.get(cloud.url + "/rest/api/3/issue/AL-999")
    assert r.status_code == 404
    assert r.json() == {"errorMessages": ["Issue does not exist or you do not have permission to see it."],
                        "errors": {}}


def test_dc_search_pages_with_server_cap(dc):
    s, store = dc_session(), dc.app.store
    out, start, calls = [], 0, 0
    while True:
        body = s.get(dc.url + "/rest/api/2/search", params={"jql": "project in (AL, BE, SD)", "startAt": start,
                                                             "maxResults": 1000}).json()
        calls += 1
        assert body["maxResults"] == 100 and body["total"] == len(store.jira_issues)
        out += body["issues"]
        start += body["maxResults"]
        if start >= body["total"]:
            break
    assert sorted(int(i["id"]) for i in out) == sorted(i.id for i in store.jira_issues)
    small = s.post(dc.url + "/rest/api/2/search", json={"jql": "project = AL", "startAt": 5, "maxResults": 4,
                                                        "fields": ["assignee", "status"]}).json()
    assert small["startAt"] == 5 and len(small["issues"]) == 4
    user = next(i["fields"]["assignee"] for i in small["issues"] if i["fields"]["assignee"])
    assert user["key"].startswith("JIRAUSER") and "accountId" not in user


def test_changelog_and_bulkfetch_pagination(cloud):
    s, store = cloud_session(cloud), cloud.app.store
    big = next(i for i in store.jira_issues if i.key == BIG)
    values, start = [], 0
    while True:
        body = s.get(cloud.url + f"/rest/api/3/issue/{BIG}/changelog", params={"startAt": start,
                                                                             "maxResults": 1000}).json()
        assert body["maxResults"] == 100 and body["total"] == 130
        values += body["values"]
        if body["isLast"]:
            break
        start += body["maxResults"]
    assert [int(v["id"]) for v in values] == [h.id for h in big.histories]  # oldest first, each once
    keys = [i.key for i in store.jira_issues]
    got: dict[str, list[int]] = {}
    token, calls = None, 0
    while True:
        req = {"issueIdsOrKeys": keys, "maxResults": 17}
        if token:
            req["nextPageToken"] = token
        body = s.post(cloud.url + "/rest/api/3/changelog/bulkfetch", json=req).json()
        calls += 1
        assert sum(len(x["changeHistories"]) for x in body["issueChangeLogs"]) <= 17
        for x in body["issueChangeLogs"]:
            got.setdefault(x["issueId"], []).extend(int(h["id"]) for h in x["changeHistories"])
        token = body.get("nextPageToken")
        if not token:
            break
    assert got == {str(i.id): [h.id for h in i.histories] for i in store.jira_issues}
    assert calls == -(-sum(len(i.histories) for i in store.jira_issues) // 17)
    body = s.post(cloud.url + "/rest/api/3/changelog/bulkfetch",
                  json={"issueIdsOrKeys": ["AL-1"], "fieldIds": ["assignee"]}).json()
    items = [it for x in body["issueChangeLogs"] for h in x["changeHistories"] for it in h["items"]]
    assert items and all(it["fieldId"] == "assignee" for it in items)
    assert items[0]["to"] == store.people["p0002"].account_id


def test_project_search_pages(cloud, dc):
    s, out, start = cloud_session(cloud), [], 0
    while True:
        body = s.get(cloud.url + "/rest/api/3/project/search", params={"startAt": start, "maxResults": 2}).json()
        out += [p["key"] for p in body["values"]]
        if body["isLast"]:
            break
        start += body["maxResults"]
    assert out == ["AL", "BE", "SD"]
    assert [p["key"] for p in dc_session().get(dc.url + "/rest/api/2/project").json()] == out
    assert s.get(cloud.url + "/rest/api/3/project/BE").json()["id"] == "10001"


def test_rendering_per_deployment(cloud, dc):
    c = cloud_session(cloud).get(cloud.url + "/rest/api/2/issue/AL-1", params={"expand": "changelog"}).json()
    d = dc_session().get(dc.url + "/rest/api/2/issue/AL-1", params={"expand": "changelog"}).json()
    assert c["fields"]["status"]["statusCategory"]["key"] == "new"
    assert c["fields"]["reporter"]["accountId"] == "5b10ac8d82e05b22cc7d4e01"
    assert d["fields"]["reporter"]["name"] == "person1" and "accountId" not in d["fields"]["reporter"]
    assert c["fields"]["issuelinks"][0]["outwardIssue"]["key"] == "BE-1"
    assert c["fields"]["created"].endswith("+0300") and d["fields"]["created"].endswith("+0300")
    assert isinstance(c["fields"]["description"], str)
    v3 = cloud_session(cloud).get(cloud.url + "/rest/api/3/issue/AL-1").json()
    assert v3["fields"]["description"]["type"] == "doc"  # ADF in v3
    assert "fieldId" in c["changelog"]["histories"][0]["items"][0]
    assert "fieldId" not in d["changelog"]["histories"][0]["items"][0]
    assigned = next(it for h in d["changelog"]["histories"] for it in h["items"] if it["field"] == "assignee")
    assert assigned["to"] == "JIRAUSER10002"
    info = dc_session().get(dc.url + "/rest/api/2/serverInfo").json()
    assert info["deploymentType"] == "Server"
    me = cloud_session(cloud).get(cloud.url + "/rest/api/3/myself").json()
    assert me["timeZone"] == "Europe/Moscow"
    names = {f["name"]: f for f in cloud_session(cloud).get(cloud.url + "/rest/api/3/field").json()}
    assert names["Flagged"]["id"] == FIELD_FLAGGED and names["Flagged"]["schema"]["custom"]


# -- auth and removed APIs -----------------------------------------------------------------------------

def test_auth_failures(cloud, dc):
    body = {"errorMessages": ["You are not authenticated. Authentication required to perform this operation."],
            "errors": {}}
    email = cloud.app.store.people["p0001"].email
    for sb, auth, headers in [(cloud, None, {}), (cloud, (email, "wrong"), {}), (cloud, ("x@y.z", server.JIRA_API_TOKEN), {}),
                              (cloud, None, {"Authorization": f"Bearer {server.JIRA_PAT}"}),
                              (dc, None, {}), (dc, (email, server.JIRA_API_TOKEN), {}),
                              (dc, None, {"Authorization": "Bearer nope"})]:
        r = requests.get(sb.url + "/rest/api/2/myself", auth=auth, headers=headers)
        assert r.status_code == 401 and r.json() == body
    assert dc_session().get(dc.url + "/rest/api/2/myself").status_code == 200


def test_old_search_gone_on_cloud_only(cloud, dc):
    s = cloud_session(cloud)
    for v in (2, 3):
        for r in (s.get(cloud.url + f"/rest/api/{v}/search", params={"jql": "project = AL"}),
                  s.post(cloud.url + f"/rest/api/{v}/search", json={"jql": "project = AL"})):
            assert r.status_code == 410
            assert r.json()["errorMessages"][0].startswith("The requested API has been removed.")
    assert dc_session().get(dc.url + "/rest/api/2/search/jql", params={"jql": "project = AL"}).status_code == 404
    assert dc_session().get(dc.url + "/rest/api/3/myself").status_code == 404  # DC has no v3


# -- third-party client --------------------------------------------------------------------------------

def test_jira_package_cloud(cloud):
    store = cloud.app.store
    client = jira.JIRA(server=cloud.url, basic_auth=(store.people["p0001"].email, server.JIRA_API_TOKEN))
    issues = client.enhanced_search_issues("project = AL", maxResults=0)
    assert sorted(i.key for i in issues) == sorted(i.key for i in store.jira_issues if i.project == "AL")
    assert issues[0].fields.status.statusCategory.key in ("new", "indeterminate", "done")
    page = client.enhanced_search_issues("project in (AL, BE)", maxResults=4)
    assert len(page) == 4 and page.nextPageToken
    assert client.myself()["accountId"] == store.people["p0001"].account_id
    assert client.issue("AL-1").fields.summary == "Issue AL-1"


def test_jira_package_datacenter(dc):
    store = dc.app.store
    client = jira.JIRA(server=dc.url, token_auth=server.JIRA_PAT)
    issues = client.search_issues("project in (AL, BE, SD) ORDER BY key ASC", maxResults=False)
    assert len(issues) == len(store.jira_issues) == len({i.key for i in issues})
    assert client.issue("SD-2").fields.issuetype.name == "Service Request"


# -- the generated organisation ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def generated():
    from sandbox import generator

    store = generator.generate("small", 1)
    with server.Sandbox(store, port=0, jira_deployment="cloud") as c, \
            server.Sandbox(generator.generate("small", 1), port=0, jira_deployment="datacenter") as d:
        yield c, d


def test_generated_small_pages_and_validates(generated, spec):
    cloud_sb, dc_sb = generated
    store = cloud_sb.app.store
    assert store.people[store.jira_user_pid].tz not in ("UTC", "Etc/UTC")
    projects = ", ".join(store.jira_projects)
    got, calls = page_jql(cloud_sb, f"project in ({projects}) ORDER BY updated ASC", 100, fields="*all",
                          expand="changelog")
    assert sorted(int(i["id"]) for i in got) == sorted(i.id for i in store.jira_issues)
    assert calls == -(-len(store.jira_issues) // 100)
    by_id = {str(i.id): i for i in store.jira_issues}
    long = [i for i in got if len(by_id[i["id"]].histories) > EMBEDDED_CHANGELOG_CAP]
    assert long  # small scale has issues beyond the embedded cap
    for i in long:
        assert i["changelog"]["total"] == len(by_id[i["id"]].histories)
        assert len(i["changelog"]["histories"]) == EMBEDDED_CHANGELOG_CAP
    validate(spec, "/rest/api/3/search/jql", "get", {"issues": got, "isLast": True})
    client = jira.JIRA(server=dc_sb.url, token_auth=server.JIRA_PAT)
    dc_issues = client.search_issues(f"project in ({projects})", maxResults=False, expand="changelog")
    assert sorted(i.key for i in dc_issues) == sorted(i.key for i in store.jira_issues)
    assert max(len(i.changelog.histories) for i in dc_issues) == max(len(i.histories) for i in store.jira_issues)
    s = cloud_session(cloud_sb)
    with_approvals = [i for i in store.jira_issues if i.approvals]
    assert with_approvals
    for issue in with_approvals:
        body = s.get(cloud_sb.url + f"/rest/servicedeskapi/request/{issue.key}/approval").json()
        assert [v["id"] for v in body["values"]] == [a.id for a in issue.approvals]


# -- what third-party clients call beyond flowlens -------------------------------------------------------
CLIENT_PATHS = {f"/rest/api/3{p}" for p in (
    "/issue/{issueIdOrKey}/comment", "/issue/{issueIdOrKey}/worklog", "/issue/{issueIdOrKey}/transitions",
    "/project/{projectIdOrKey}/version", "/project/{projectIdOrKey}/versions", "/project/{projectIdOrKey}/component",
    "/project/{projectIdOrKey}/components", "/project/type", "/priority/search", "/resolution/search", "/users/search",
    "/group/member", "/label", "/project", "/project/{projectIdOrKey}", "/project/search", "/priority", "/resolution",
    "/issuetype", "/user", "/group")}


def validate_component(spec: dict, name: str, body) -> None:
    OAS30Validator({"$ref": f"#/components/schemas/{name}", "components": spec["components"]}).validate(body)


def pages(s: requests.Session, url: str, key: str = "values", **params) -> list:
    """Every item of a Jira PageBean, following `nextPage` (or startAt for the pages that have no link)."""
    out, params = [], {"maxResults": 1, **params}
    r = s.get(url, params=params)
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        out += body[key]
        if body.get("isLast", body["startAt"] + len(body[key]) >= body["total"]):
            assert len(out) == body["total"]
            return out
        r = s.get(body["nextPage"]) if "nextPage" in body else s.get(url, params={
            **params, "startAt": body["startAt"] + len(body[key])})


def test_client_paths_validate_page_and_404(cloud, spec):
    s, u = cloud_session(cloud), cloud.url + "/rest/api/3"
    store = cloud.app.store
    busy = next(i for i in store.jira_issues if len(s.get(f"{u}/issue/{i.key}/comment").json()["comments"]) >= 2)
    checks = {
        "/issue/{issueIdOrKey}/comment": s.get(f"{u}/issue/{busy.key}/comment", params={"orderBy": "-created"}),
        "/issue/{issueIdOrKey}/worklog": s.get(f"{u}/issue/{busy.key}/worklog"),
        "/issue/{issueIdOrKey}/transitions": s.get(f"{u}/issue/{busy.key}/transitions"),
        "/project/{projectIdOrKey}/version": s.get(f"{u}/project/AL/version"),
        "/project/{projectIdOrKey}/versions": s.get(f"{u}/project/10000/versions"),
        "/project/{projectIdOrKey}/component": s.get(f"{u}/project/AL/component"),
        "/project/{projectIdOrKey}/components": s.get(f"{u}/project/AL/components"),
        "/project/type": s.get(f"{u}/project/type"), "/priority/search": s.get(f"{u}/priority/search"),
        "/resolution/search": s.get(f"{u}/resolution/search"), "/users/search": s.get(f"{u}/users/search"),
        "/group/member": s.get(f"{u}/group/member", params={"groupname": "jira-software-users"}),
        "/label": s.get(f"{u}/label"), "/project": s.get(f"{u}/project"), "/project/{projectIdOrKey}":
        s.get(f"{u}/project/AL"), "/project/search": s.get(f"{u}/project/search"), "/priority": s.get(f"{u}/priority"),
        "/resolution": s.get(f"{u}/resolution"), "/issuetype": s.get(f"{u}/issuetype"),
        "/user": s.get(f"{u}/user", params={"accountId": store.people["p0002"].account_id}),
        "/group": s.get(f"{u}/group", params={"groupname": "jira-software-users", "expand": "users[1:2]"}),
    }
    assert {f"/rest/api/3{p}" for p in checks} == CLIENT_PATHS
    for path, resp in checks.items():
        assert resp.status_code == 200, (path, resp.text)
        validate(spec, f"/rest/api/3{path}", "get", resp.json())
    comments = checks["/issue/{issueIdOrKey}/comment"].json()["comments"]
    assert checks["/issue/{issueIdOrKey}/comment"].json()["maxResults"] == 100  # Cloud's documented default
    assert comments[0]["created"] >= comments[-1]["created"] and comments[0]["body"]["type"] == "doc"  # ADF in v3
    v2 = s.get(f"{cloud.url}/rest/api/2/issue/{busy.key}/comment").json()["comments"]
    assert [c["id"] for c in v2] == [c["id"] for c in reversed(comments)] and isinstance(v2[0]["body"], str)
    assert [c["id"] for c in pages(s, f"{u}/issue/{busy.key}/comment", key="comments")] == [c["id"] for c in v2]
    transitions = checks["/issue/{issueIdOrKey}/transitions"].json()["transitions"]
    assert busy.status not in {t["to"]["id"] for t in transitions} and transitions
    one = s.get(f"{u}/issue/{busy.key}/transitions", params={"transitionId": transitions[0]["id"]}).json()
    assert [t["id"] for t in one["transitions"]] == [transitions[0]["id"]]
    expanded = s.get(f"{u}/issue/{busy.key}", params={"expand": "transitions", "fields": "status"}).json()
    validate(spec, "/rest/api/3/issue/{issueIdOrKey}", "get", expanded)
    assert [t["id"] for t in expanded["transitions"]] == [t["id"] for t in transitions]
    assert [v["name"] for v in pages(s, f"{u}/project/AL/version")] == ["1.0"]
    assert sorted(x["issueCount"] for x in pages(s, f"{u}/project/AL/component")) and len(
        pages(s, f"{u}/project/AL/component")) == 3
    assert [p["name"] for p in pages(s, f"{u}/priority/search")] == ["Highest", "High", "Medium", "Low", "Lowest"]
    assert len(pages(s, f"{u}/resolution/search")) == len(s.get(f"{u}/resolution").json())
    members = pages(s, f"{u}/group/member", groupname="jira-software-users")
    assert sorted(m["accountId"] for m in members) == sorted(p.account_id for p in store.people.values())
    users = [x for n in range(len(store.people)) for x in s.get(f"{u}/users/search",
                                                                   params={"startAt": n, "maxResults": 1}).json()]
    assert sorted(x["accountId"] for x in users) == sorted(p.account_id for p in store.people.values())
    assert pages(s, f"{u}/label") == ["x"]
    group = checks["/group"].json()["users"]  # the old group API the `jira` package pages with users[a:b]
    assert (group["size"], group["start-index"], group["end-index"]) == (len(members), 1, 2)
    assert [x["accountId"] for x in group["items"]] == [m["accountId"] for m in members[1:3]]
    error = spec["components"]["schemas"]["ErrorCollection"]
    for path in ("/issue/NOPE-1/comment", "/issue/NOPE-1/worklog", "/issue/NOPE-1/transitions",
                 "/project/NOPE/version", "/project/NOPE/versions", "/project/NOPE/component",
                 "/project/NOPE/components", "/user?accountId=nobody", "/group/member?groupname=nobody",
                 "/group?groupname=nobody"):
        r = s.get(u + path)
        assert r.status_code == 404, path
        OAS30Validator({**error, "components": spec["components"]}).validate(r.json())
        assert r.json()["errorMessages"]
    assert s.get(f"{u}/group/member").status_code == 400
    assert requests.get(f"{u}/project/type").status_code == 401


def test_fields_all_returns_every_field_a_site_would(cloud, spec):
    s, u = cloud_session(cloud), cloud.url + "/rest/api/3"
    issue = s.get(f"{u}/issue/AL-1", params={"fields": "*all"}).json()
    validate(spec, "/rest/api/3/issue/{issueIdOrKey}", "get", issue)
    fields = issue["fields"]
    for name in ("comment", "worklog", "attachment", "issuelinks", "components", "versions", "creator", "watches",
                 "votes", "timetracking", "subtasks", "progress", "statuscategorychangedate", "duedate"):
        assert name in fields, name
    assert fields["comment"]["comments"] == s.get(f"{u}/issue/AL-1/comment").json()["comments"]
    assert fields["worklog"]["total"] == s.get(f"{u}/issue/AL-1/worklog").json()["total"]
    for c in fields["comment"]["comments"]:
        validate_component(spec, "Comment", c)
    for w in fields["worklog"]["worklogs"]:
        validate_component(spec, "Worklog", w)
    assert fields["issuelinks"][0]["outwardIssue"]["key"] == "BE-1"
    no_comment = s.get(f"{u}/issue/AL-1", params={"fields": "*all,-comment"}).json()["fields"]
    assert "comment" not in no_comment and "worklog" in no_comment
    navigable = s.get(f"{u}/issue/AL-1", params={"fields": "*navigable"}).json()["fields"]
    assert not {"comment", "worklog", "attachment", "timetracking"} & set(navigable) and "issuelinks" in navigable
    listed = {f["id"]: f for f in s.get(f"{u}/field").json()}
    assert set(fields) <= set(listed) and listed["comment"]["navigable"] is False
    found = s.get(f"{u}/search/jql", params={"jql": "key = AL-1", "fields": "*all"}).json()["issues"][0]
    assert found["fields"]["comment"] == fields["comment"]
    dc_fields = s.get(f"{cloud.url}/rest/api/2/issue/AL-1", params={"fields": "comment"}).json()["fields"]
    assert all(isinstance(c["body"], str) for c in dc_fields["comment"]["comments"])


def test_data_center_serves_the_client_paths_it_has_and_lacks_the_others(dc):
    s, u = dc_session(), dc.url + "/rest/api/2"
    for path in ("/issue/AL-1/comment", "/issue/AL-1/worklog", "/issue/AL-1/transitions", "/project/AL/versions",
                 "/project/AL/version", "/project/AL/components", "/project/type", "/user?username=person2",
                 "/user/search?username=person", "/group/member?groupname=jira-administrators"):
        assert s.get(u + path).status_code == 200, path
    for path in ("/priority/search", "/resolution/search", "/users/search", "/project/AL/component", "/label"):
        r = s.get(u + path)
        assert r.status_code == 404 and r.json()["errorMessages"][0].startswith("null for uri"), path
    busy = next(i.key for i in dc.app.store.jira_issues if s.get(f"{u}/issue/{i.key}/comment").json()["total"])
    comments = s.get(f"{u}/issue/{busy}", params={"fields": "*all"}).json()["fields"]["comment"]["comments"]
    assert comments and all("key" in c["author"] and "jsdPublic" not in c for c in comments)
    assert "accountId" not in s.get(f"{u}/user", params={"username": "person2"}).json()


def test_jql_is_empty_and_is_not_empty(cloud):
    s, u = cloud_session(cloud), cloud.url + "/rest/api/3/search/jql"
    store = cloud.app.store

    def keys(jql: str) -> set[str]:
        r = s.get(u, params={"jql": jql, "fields": "key", "maxResults": 5000})
        assert r.status_code == 200, (jql, r.text)
        return {i["key"] for i in r.json()["issues"]}

    everything = {i.key for i in store.jira_issues}
    unassigned = {i.key for i in store.jira_issues if i.assignee is None}
    assert 0 < len(unassigned) < len(everything)
    assert keys("assignee is EMPTY") == keys("assignee = EMPTY") == keys("assignee IS null") == unassigned
    assert keys("assignee is not EMPTY") == keys("assignee != EMPTY") == everything - unassigned
    assert keys("project = AL AND resolution is not EMPTY") == {
        i.key for i in store.jira_issues if i.project == "AL" and i.resolution}
    assert keys("fixVersion is EMPTY") == {i.key for i in store.jira_issues if not i.fix_versions}
    assert keys("resolved is EMPTY") == {i.key for i in store.jira_issues if i.resolutiondate is None}
    assert keys("project is not EMPTY") == everything and keys("key is EMPTY ORDER BY key") == set()
    assert keys('assignee = "person2@example.com"') == {i.key for i in store.jira_issues if i.assignee == "p0002"}
    assert keys("labels = x") == everything
    assert keys("fixVersion in (1.0) AND assignee is EMPTY") == {
        i.key for i in store.jira_issues if "1.0" in i.fix_versions and i.assignee is None}
    r = s.get(u, params={"jql": "assignee is foo"})
    assert r.status_code == 400 and "'EMPTY' or 'NULL'" in r.json()["errorMessages"][0]
