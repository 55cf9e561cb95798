"""Widely used third-party clients, pointed at the sandbox unchanged, walk it as a user's script would."""

from __future__ import annotations

import pytest

from sandbox.server import GITHUB_TOKEN, Sandbox


@pytest.fixture(scope="module")
def sandbox(small_org):
    with Sandbox(small_org) as sb:
        yield sb


def test_pygithub_walks_org_teams_repos_pulls_reviews_comments_commits_events(sandbox):
    """PyGithub: organisation, teams and members, repositories, pulls, reviews, review comments, commits,
    requested reviewers, issue events (per pull and per repository), issues, rate limit."""
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
    assert g.get_rate_limit().resources.core.remaining < 5000
