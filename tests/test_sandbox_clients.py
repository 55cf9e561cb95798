"""Widely used third-party clients, pointed at the sandbox unchanged, walk it as a user's script would."""

from __future__ import annotations

import pytest

from sandbox.server import GITHUB_TOKEN, JIRA_API_TOKEN, JIRA_PAT, Sandbox


@pytest.fixture(scope="module")
def sandbox(small_org):
    with Sandbox(small_org) as sb:
        yield sb


@pytest.fixture(scope="module")
def datacenter(small_org):
    with Sandbox(small_org, jira_deployment="datacenter") as sb:
        yield sb


def test_pygithub_walks_org_teams_repos_pulls_reviews_comments_commits_events(sandbox):
    """PyGithub: organisation, teams and members, repositories, pulls, reviews, review comments, commits,
    requested reviewers, issue events (per pull and per repository), issues, a user by login, conversation
    comments, rate limit."""
    from github import Auth, Github

    store = sandbox.app.store
    g = Github(auth=Auth.Token(GITHUB_TOKEN), base_url=f"{sandbox.url}/api/v3", per_page=30, retry=None)
    assert g.get_user().login == store.github_user_login
    assert sorted(o.login for o in g.get_user().get_orgs()) == sorted(store.github_orgs)
    org = g.get_organization("acme")
    assert org.login == "acme" and org.total_private_repos == sum(r.org == "acme" for r in store.github_repos)
    teams = {t.slug: [m.login for m in t.get_members()] for t in org.get_teams()}
    assert teams == {k.split("/")[1]: v for k, v in store.github_team_members.items() if k.startswith("acme/")}
    team = org.get_team_by_slug("payments")
    assert team.members_count == len(teams["payments"])
    assert [m.login for m in team.get_members(role="maintainer")]
    assert {r.full_name for r in org.get_repos()} == {r.full_name for r in store.github_repos if r.org == "acme"}
    repo = g.get_repo("acme/payments-api")
    pulls = [p for p in store.github_pulls if p.repo == repo.full_name]
    listed = list(repo.get_pulls(state="all", sort="created", direction="asc"))
    assert [p.number for p in listed] == sorted(p.number for p in pulls)
    by_number = {p.number: p for p in pulls}
    review_comments = 0
    for p in listed[:12]:
        mine = by_number[p.number]
        reviews = list(p.get_reviews())
        assert len(reviews) == sum(e.event == "reviewed" for e in mine.events)
        comments = list(p.get_review_comments())
        assert {c.pull_request_review_id for c in comments} <= {r.id for r in reviews}
        review_comments += len(comments)
        commits = list(p.get_commits())
        assert len(commits) == max(1, sum(e.event == "committed" for e in mine.events)) == p.commits
        assert all(c.sha and c.commit.message for c in commits)
        users, _teams = p.get_review_requests()
        list(users)
        events = [e.event for e in p.as_issue().get_events()]
        assert "reviewed" not in events
        assert len(list(p.as_issue().get_timeline())) == len(mine.events)
    assert review_comments
    all_comments = list(repo.get_pulls_review_comments())
    assert len({c.id for c in all_comments}) == len(all_comments) >= review_comments
    repo_events = list(repo.get_issues_events())
    assert repo_events and all(e.issue is not None for e in repo_events[:5])
    assert len(list(repo.get_issues(state="all"))) == len(pulls) + sum(
        i.repo == repo.full_name for i in store.github_issues)
    member = store.people[next(p for p in store.people if not store.people[p].bot)]
    user = g.get_user(member.login)  # what a script joining GitHub logins to people reads
    assert (user.login, user.name, user.email) == (member.login, member.name, member.email)
    talked = max(listed, key=lambda p: sum(e.event == "commented" for e in by_number[p.number].events))
    said = [e.id for e in by_number[talked.number].events if e.event == "commented"]
    assert said and [c.id for c in talked.get_issue_comments()] == said == [c.id for c in
                                                                        talked.as_issue().get_comments()]
    assert g.get_rate_limit().resources.core.remaining < 5000


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_atlassian_python_api_walks_projects_issues_and_the_site(deployment, sandbox, datacenter):
    """atlassian-python-api: the user, projects, versions, components, project types, priorities, resolutions,
    statuses, fields, users, group members, a JQL search with `is EMPTY`, issues with `*all`, comments,
    transitions, changelog, worklogs."""
    from atlassian import Jira

    sb = sandbox if deployment == "cloud" else datacenter
    store = sb.app.store
    me = store.people[store.jira_user_pid]
    if deployment == "cloud":
        j = Jira(url=sb.url, username=me.email, password=JIRA_API_TOKEN, cloud=True, api_version="3")
    else:
        j = Jira(url=sb.url, token=JIRA_PAT)
    assert j.myself()["displayName"] == me.name
    assert [p["key"] for p in j.projects()] == list(store.jira_projects)
    for key in store.jira_projects:
        names = {v for i in store.jira_issues if i.project == key for v in i.fix_versions}
        assert {v["name"] for v in j.get_project_versions(key)} == names
        assert {v["name"] for v in j.get_project_versions_paginated(key, limit=50)["values"]} == names
        assert len(j.get_project_components(key)) == 3
    assert {t["key"] for t in j.get_all_project_types()} >= {p.type for p in store.jira_projects.values()}
    assert [p["name"] for p in j.get_all_priorities()] == ["Highest", "High", "Medium", "Low", "Lowest"]
    assert j.get_all_resolutions() and len(j.get_all_statuses()) == len(store.jira_statuses)
    assert any(f["id"] == "comment" for f in j.get_all_fields())
    if deployment == "cloud":
        found = j.user_find_by_user_string(query=me.name.split()[0], start=0, limit=50)
        assert me.account_id in {u["accountId"] for u in found}
    else:
        found = j.user_find_by_user_string(username=me.username)
        assert me.user_key in {u["key"] for u in found}
    members = j.get_all_users_from_group("jira-software-users", limit=1000)
    assert members["total"] == sum(not p.bot for p in store.people.values())
    jql = "project = PAY AND assignee is EMPTY ORDER BY key ASC"
    want = sorted((i for i in store.jira_issues if i.project == "PAY" and i.assignee is None),
                  key=lambda i: int(i.key.split("-")[1]))[:20]
    got = (j.enhanced_jql(jql, limit=20) if deployment == "cloud" else j.jql(jql, limit=20))["issues"]
    assert [i["key"] for i in got] == [i.key for i in want]
    for issue in want[:5]:
        full = j.issue(issue.key, fields="*all")["fields"]
        assert {"comment", "worklog", "attachment", "issuelinks"} <= set(full)
        assert "comment" not in j.issue(issue.key, fields="*all,-comment")["fields"]
        comments = j.issue_get_comments(issue.key)
        assert comments["total"] == full["comment"]["total"]
        transitions = j.get_issue_transitions(issue.key)
        assert transitions and store.jira_statuses[issue.status].name not in {t["to"] for t in transitions}
        histories = j.get_issue_changelog(issue.key)
        assert (histories.get("total") if "total" in histories else len(histories["histories"])) == len(
            issue.histories)
        assert j.issue_get_worklog(issue.key)["total"] == full["worklog"]["total"]


def test_answers_are_kept_per_request_shape_until_the_world_moves(small_org):
    """The sandbox keeps rendered pages (the repeat pass of `make bench sandbox`), and advancing drops them."""
    import copy

    import requests

    store = copy.deepcopy(small_org)
    with Sandbox(store) as sb:
        env = sb.env()
        jira, gh = requests.Session(), requests.Session()
        jira.auth = (env["JIRA_EMAIL"], env["JIRA_API_TOKEN"])
        gh.headers["Authorization"] = f"token {GITHUB_TOKEN}"
        search = (f"{sb.url}/rest/api/3/search/jql", {"jql": "project = PAY ORDER BY updated DESC", "maxResults": 5,
                                                      "fields": "updated"})
        pulls = (f"{env['GITHUB_API_URL']}/repos/acme/payments-api/pulls",
                 {"state": "all", "sort": "updated", "direction": "desc", "per_page": 5})
        before = [s.get(url, params=params).json() for s, (url, params) in ((jira, search), (gh, pulls))]
        again = [s.get(url, params=params).json() for s, (url, params) in ((jira, search), (gh, pulls))]
        assert again == before
        changed = sb.app.advance(0.5, days=3)
        assert changed
        after = [s.get(url, params=params).json() for s, (url, params) in ((jira, search), (gh, pulls))]
        assert after[0]["issues"][0]["fields"]["updated"] > before[0]["issues"][0]["fields"]["updated"]
        assert after[1][0]["updated_at"] > before[1][0]["updated_at"]
        ops = {**search[1], "jql": "project = OPS", "fields": "*all"}
        assert "customfield_10019" in jira.get(search[0], params=ops).json()["issues"][0]["fields"]
        sb.app.jira_hide_fields = {"Approvals"}  # a site option is part of the shape
        assert "customfield_10019" not in jira.get(search[0], params=ops).json()["issues"][0]["fields"]


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_jira_package_walks_the_parts_of_issues_and_projects(deployment, sandbox, datacenter):
    """The `jira` package beyond search: comments, transitions, worklogs, versions, components, users, groups,
    issue links, attachments and `*all` fields as resources."""
    import jira

    sb = sandbox if deployment == "cloud" else datacenter
    store = sb.app.store
    me = store.people[store.jira_user_pid]
    client = (jira.JIRA(server=sb.url, basic_auth=(me.email, JIRA_API_TOKEN)) if deployment == "cloud"
              else jira.JIRA(server=sb.url, token_auth=JIRA_PAT))
    linked = next(i for i in store.jira_issues if i.links)
    issue = client.issue(linked.key, fields="*all")
    assert {link.type.name for link in issue.fields.issuelinks} == {x.type for x in linked.links}
    assert len(client.comments(linked.key)) == issue.fields.comment.total
    assert [c.id for c in issue.fields.comment.comments] == [c.id for c in client.comments(linked.key)]
    assert len(client.worklogs(linked.key)) == issue.fields.worklog.total
    moves = client.transitions(linked.key)
    assert moves and store.jira_statuses[linked.status].name not in {t["to"]["name"] for t in moves}
    assert all(a.filename for a in issue.fields.attachment)
    for key in store.jira_projects:
        assert {v.name for v in client.project_versions(key)} == {
            v for i in store.jira_issues if i.project == key for v in i.fix_versions}
        assert [c.name for c in client.project_components(key)] == ["Backend", "Frontend", "Infrastructure"]
    if deployment == "cloud":
        assert me.account_id in {u.accountId for u in client.search_users(query=me.name.split()[0])}
    else:
        assert me.username in {u.name for u in client.search_users(user=me.username)}
    assert len(client.group_members("jira-software-users")) == sum(not p.bot for p in store.people.values())
