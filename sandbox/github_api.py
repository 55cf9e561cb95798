"""GitHub REST emulator (Enterprise paths under `/api/v3`): pulls, reviews, timelines, issues, orgs.

Shapes follow GitHub's OpenAPI description and real recorded responses. Every API response carries
rate-limit headers counted per token and resource; GETs carry an ETag and answer 304 to a matching
`If-None-Match` (not counted, as on GitHub). `render_*` functions are reused by the page writer.
"""

from __future__ import annotations

import base64
import hashlib
import math
import time
import uuid
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sandbox import cache
from sandbox.model import GhEvent, GhIssue, GhPull, GhRepo, Store
from sandbox.web import GITHUB_TOKEN, AppView, Request, Response, json_response

DOCS = "https://docs.github.com"
RATE_DOCS = f"{DOCS}/rest/overview/rate-limits-for-the-rest-api"
ISSUE_EVENTS = {"review_requested", "review_request_removed", "review_dismissed", "ready_for_review",
                "convert_to_draft", "assigned", "unassigned", "labeled", "unlabeled", "merged", "closed",
                "reopened"}  # what /issues/{n}/events lists (the timeline adds reviewed, commented, committed)
LABEL_COLORS = ("d73a4a", "0075ca", "cfd3d7", "a2eeef", "7057ff", "008672", "e4e669", "d876e3", "fbca04")


# -- small helpers ------------------------------------------------------------------------------
def iso(dt: datetime | None) -> str | None:
    """`2024-03-01T09:15:02Z` (times in the store are aware UTC)."""
    return dt.replace(tzinfo=None, microsecond=0).isoformat() + "Z" if dt else None


def parse_iso(s: str) -> datetime:
    return datetime.fromisoformat(s)


def stable_id(text: str, base: int = 10_000_000) -> int:
    """A positive id derived from a name, stable across runs."""
    return base + zlib.crc32(text.encode()) % 900_000_000


def legacy_node_id(kind: str, num: int) -> str:
    """GitHub's legacy global id, e.g. base64("04:User1")."""
    s = f"{len(kind):02d}:{kind}{num}"
    return base64.b64encode(s.encode()).decode()


def new_node_id(prefix: str, num: int) -> str:
    """GitHub's current global id: a type prefix and base64url of the msgpack array [0, id]."""
    packed = b"\x92\x00" + (b"\xce" + num.to_bytes(4, "big") if num < 2**32 else b"\xcf" + num.to_bytes(8, "big"))
    return f"{prefix}_" + base64.urlsafe_b64encode(packed).decode().rstrip("=")


def fake_sha(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


def api(base_url: str) -> str:
    return f"{base_url}/api/v3"


# -- indexes over the store (rebuilt when the store changes) -------------------------------------
class Index:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.key = self._key(store)
        self.repos = {r.full_name: r for r in store.github_repos}
        self.repos_by_id = {r.id: r for r in store.github_repos}
        self.pulls: dict[str, list[GhPull]] = {r.full_name: [] for r in store.github_repos}
        self.issues: dict[str, list[GhIssue]] = {r.full_name: [] for r in store.github_repos}
        self.items: dict[tuple[str, int], GhPull | GhIssue] = {}
        self.nodes: dict[str, Any] = {r.node_id: r for r in store.github_repos}
        for p in store.github_pulls:
            self.pulls.setdefault(p.repo, []).append(p)
            self.items[(p.repo, p.number)] = p
            self.nodes[p.node_id] = p
        for i in store.github_issues:
            self.issues.setdefault(i.repo, []).append(i)
            self.items[(i.repo, i.number)] = i
            self.nodes[i.node_id] = i
        self.people = {p.login: p for p in store.people.values()}
        self.team_slugs: dict[str, set[str]] = {}  # org -> slugs
        for key in store.github_team_members:
            org, slug = key.split("/", 1)
            self.team_slugs.setdefault(org, set()).add(slug)
        for t in store.teams.values():
            for org in store.github_orgs:
                self.team_slugs.setdefault(org, set()).add(t.github_slug)
        self.team_names = {t.github_slug: t.name for t in store.teams.values()}
        self.teams_by_id = {stable_id(f"team:{org}/{slug}"): (org, slug)
                            for org, slugs in self.team_slugs.items() for slug in slugs}
        self._repo_events: dict[str, list[tuple[GhPull | GhIssue, GhEvent]]] = {}
        self._repo_stats: dict[str, tuple[int, datetime]] = {}
        self._repo_json: dict[tuple[int, str], dict] = {}
        self._users: dict[tuple[str, str], dict] = {}

    def repo_stats(self, repo: GhRepo) -> tuple[int, datetime]:
        """(open issues and pulls, last pull update) of a repository."""
        hit = self._repo_stats.get(repo.full_name)
        if hit is None:
            fn = repo.full_name
            open_count = sum(1 for p in self.pulls.get(fn, ()) if p.state == "open") + sum(
                1 for i in self.issues.get(fn, ()) if i.state == "open")
            last = max((p.updated_at for p in self.pulls.get(fn, ())), default=repo.created_at)
            hit = self._repo_stats[fn] = (open_count, last)
        return hit

    def repo_events(self, full_name: str) -> list[tuple[GhPull | GhIssue, GhEvent]]:
        """Every issue event of a repository's pulls and issues, newest first (as /issues/events lists them)."""
        hit = self._repo_events.get(full_name)
        if hit is None:
            items: list[GhPull | GhIssue] = [*self.pulls.get(full_name, ()), *self.issues.get(full_name, ())]
            hit = [(i, e) for i in items for e in i.events if e.event in ISSUE_EVENTS]
            hit.sort(key=lambda ie: (ie[1].created_at, ie[1].id), reverse=True)
            self._repo_events[full_name] = hit
        return hit

    @staticmethod
    def _key(store: Store) -> tuple:
        return (id(store), store.now, len(store.github_pulls), len(store.github_issues), len(store.github_repos))


_INDEX: dict[int, Index] = {}


def index(store: Store) -> Index:
    ix = _INDEX.get(id(store))
    if ix is None or ix.key != Index._key(store):
        ix = _INDEX[id(store)] = Index(store)
        while len(_INDEX) > 4:  # keep a few stores' indexes, not every store a test session builds
            del _INDEX[next(iter(_INDEX))]
    return ix


# -- rendering: users, orgs, teams, repos ---------------------------------------------------------
GHOST = "ghost"  # GitHub's stand-in for a deleted account (REST renders it; GraphQL answers null)
GHOST_ID = 10137


def user_id(store: Store, login: str) -> int:
    if login == GHOST:
        return GHOST_ID
    person = index(store).people.get(login)
    if person and person.pid[1:].isdigit():
        return 100_000 + int(person.pid[1:])
    return stable_id(login)


def render_user(store: Store, login: str | None, base_url: str) -> dict | None:
    """GitHub's simple-user object for a login (bots get type "Bot"); shared, cached while the store stays as it
    is: do not mutate the result."""
    if login is None:
        return None
    ix = index(store)
    hit = ix._users.get((login, base_url))
    if hit is None:
        hit = ix._users[(login, base_url)] = _render_user(store, login, base_url)
    return hit


def _render_user(store: Store, login: str, base_url: str) -> dict:
    uid = user_id(store, login)
    a, h = api(base_url), base_url
    bot = login.endswith("[bot]")
    person = index(store).people.get(login)
    if person is not None and person.bot:
        bot = True
    return {
        "login": login, "id": uid, "node_id": legacy_node_id("Bot" if bot else "User", uid),
        "avatar_url": f"{h}/avatars/u/{uid}?v=4", "gravatar_id": "", "url": f"{a}/users/{login}",
        "html_url": f"{h}/{login}", "followers_url": f"{a}/users/{login}/followers",
        "following_url": f"{a}/users/{login}/following{{/other_user}}",
        "gists_url": f"{a}/users/{login}/gists{{/gist_id}}",
        "starred_url": f"{a}/users/{login}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{a}/users/{login}/subscriptions",
        "organizations_url": f"{a}/users/{login}/orgs", "repos_url": f"{a}/users/{login}/repos",
        "events_url": f"{a}/users/{login}/events{{/privacy}}",
        "received_events_url": f"{a}/users/{login}/received_events",
        "type": "Bot" if bot else "User", "user_view_type": "public", "site_admin": False,
    }


def render_org_user(org: str, base_url: str) -> dict:
    """An organisation as a repository owner (simple-user with type Organization)."""
    oid = stable_id("org:" + org)
    u = render_user_shape(org, oid, base_url)
    return u | {"node_id": legacy_node_id("Organization", oid), "type": "Organization"}


def render_user_shape(login: str, uid: int, base_url: str) -> dict:
    a = api(base_url)
    return {
        "login": login, "id": uid, "node_id": legacy_node_id("User", uid),
        "avatar_url": f"{base_url}/avatars/u/{uid}?v=4", "gravatar_id": "", "url": f"{a}/users/{login}",
        "html_url": f"{base_url}/{login}", "followers_url": f"{a}/users/{login}/followers",
        "following_url": f"{a}/users/{login}/following{{/other_user}}",
        "gists_url": f"{a}/users/{login}/gists{{/gist_id}}",
        "starred_url": f"{a}/users/{login}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{a}/users/{login}/subscriptions", "organizations_url": f"{a}/users/{login}/orgs",
        "repos_url": f"{a}/users/{login}/repos", "events_url": f"{a}/users/{login}/events{{/privacy}}",
        "received_events_url": f"{a}/users/{login}/received_events", "type": "User",
        "user_view_type": "public", "site_admin": False,
    }


def render_org(org: str, base_url: str) -> dict:
    """organization-simple, as /user/orgs lists it."""
    oid, a = stable_id("org:" + org), api(base_url)
    return {"login": org, "id": oid, "node_id": legacy_node_id("Organization", oid), "url": f"{a}/orgs/{org}",
            "repos_url": f"{a}/orgs/{org}/repos", "events_url": f"{a}/orgs/{org}/events",
            "hooks_url": f"{a}/orgs/{org}/hooks", "issues_url": f"{a}/orgs/{org}/issues",
            "members_url": f"{a}/orgs/{org}/members{{/member}}",
            "public_members_url": f"{a}/orgs/{org}/public_members{{/member}}",
            "avatar_url": f"{base_url}/avatars/u/{oid}?v=4", "description": None}


def render_team(store: Store, org: str, slug: str, base_url: str) -> dict:
    tid, a, oid = stable_id(f"team:{org}/{slug}"), api(base_url), stable_id("org:" + org)
    return {
        "name": index(store).team_names.get(slug, slug), "id": tid, "node_id": legacy_node_id("Team", tid),
        "slug": slug, "description": None, "privacy": "closed", "notification_setting": "notifications_enabled",
        "url": f"{a}/organizations/{oid}/team/{tid}", "html_url": f"{base_url}/orgs/{org}/teams/{slug}",
        "members_url": f"{a}/organizations/{oid}/team/{tid}/members{{/member}}",
        "repositories_url": f"{a}/organizations/{oid}/team/{tid}/repos", "permission": "push",
        "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
        "type": "organization", "organization_id": oid, "parent": None,
    }


def org_created(store: Store, org: str) -> datetime:
    """When the organisation was made: a year before its first repository."""
    first = min((r.created_at for r in store.github_repos if r.org == org), default=store.now)
    return first - timedelta(days=365)


def render_org_full(store: Store, org: str, base_url: str) -> dict:
    """organization-full, as GET /orgs/{org} answers a member (no billing or admin-only fields)."""
    repos = [r for r in store.github_repos if r.org == org]
    return render_org(org, base_url) | {
        # company, email, location, twitter_username: unset (GitHub's document types them string, not null)
        "name": org.replace("-", " ").title(), "blog": "", "is_verified": False, "has_organization_projects": True,
        "has_repository_projects": True, "public_repos": 0, "public_gists": 0, "followers": 0, "following": 0,
        "html_url": f"{base_url}/{org}", "type": "Organization", "total_private_repos": len(repos),
        "owned_private_repos": len(repos), "created_at": iso(org_created(store, org)),
        "updated_at": iso(store.now), "archived_at": None}


def team_members(store: Store, org: str, slug: str) -> list[str]:
    return list(store.github_team_members.get(f"{org}/{slug}", []))


def team_maintainers(store: Store, org: str, slug: str) -> set[str]:
    """A team's maintainers: the lead of the flowlens team it belongs to, if a member (else the first member)."""
    members = team_members(store, org, slug)
    team = next((t for t in store.teams.values() if t.github_slug == slug), None)
    leads = {store.people[p.lead].login for p in store.jira_projects.values()
             if team is not None and p.team == team.key and p.lead in store.people}
    return (leads & set(members)) or set(members[:1])


def render_team_full(store: Store, org: str, slug: str, base_url: str) -> dict:
    """team-full, as GET /orgs/{org}/teams/{slug} answers."""
    out = render_team(store, org, slug, base_url)
    repos = [r for r in store.github_repos if r.org == org
             and any(t.key == r.team and t.github_slug == slug for t in store.teams.values())]
    created = org_created(store, org) + timedelta(days=30)
    return out | {"members_count": len(team_members(store, org, slug)), "repos_count": len(repos),
                  "created_at": iso(created), "updated_at": iso(created),
                  "organization": render_org_full(store, org, base_url)}


def render_repo(store: Store, repo: GhRepo, base_url: str) -> dict:
    """The full repository object (as in a pull's head/base and /repos/{o}/{r}); shared, cached while the store
    stays as it is: do not mutate the result."""
    ix = index(store)
    hit = ix._repo_json.get((repo.id, base_url))
    if hit is None:
        hit = ix._repo_json[(repo.id, base_url)] = _render_repo(repo, base_url, *ix.repo_stats(repo))
    return hit


def _render_repo(repo: GhRepo, base_url: str, open_count: int, last: datetime) -> dict:
    a, h, fn = api(base_url), base_url, repo.full_name
    ra = f"{a}/repos/{fn}"
    return {
        "id": repo.id, "node_id": repo.node_id, "name": repo.name, "full_name": fn, "private": True,
        "owner": render_org_user(repo.org, base_url), "html_url": f"{h}/{fn}", "description": None,
        "fork": False, "url": ra, "forks_url": f"{ra}/forks", "keys_url": f"{ra}/keys{{/key_id}}",
        "collaborators_url": f"{ra}/collaborators{{/collaborator}}", "teams_url": f"{ra}/teams",
        "hooks_url": f"{ra}/hooks", "issue_events_url": f"{ra}/issues/events{{/number}}",
        "events_url": f"{ra}/events", "assignees_url": f"{ra}/assignees{{/user}}",
        "branches_url": f"{ra}/branches{{/branch}}", "tags_url": f"{ra}/tags",
        "blobs_url": f"{ra}/git/blobs{{/sha}}", "git_tags_url": f"{ra}/git/tags{{/sha}}",
        "git_refs_url": f"{ra}/git/refs{{/sha}}", "trees_url": f"{ra}/git/trees{{/sha}}",
        "statuses_url": f"{ra}/statuses/{{sha}}", "languages_url": f"{ra}/languages",
        "stargazers_url": f"{ra}/stargazers", "contributors_url": f"{ra}/contributors",
        "subscribers_url": f"{ra}/subscribers", "subscription_url": f"{ra}/subscription",
        "commits_url": f"{ra}/commits{{/sha}}", "git_commits_url": f"{ra}/git/commits{{/sha}}",
        "comments_url": f"{ra}/comments{{/number}}", "issue_comment_url": f"{ra}/issues/comments{{/number}}",
        "contents_url": f"{ra}/contents/{{+path}}", "compare_url": f"{ra}/compare/{{base}}...{{head}}",
        "merges_url": f"{ra}/merges", "archive_url": f"{ra}/{{archive_format}}{{/ref}}",
        "downloads_url": f"{ra}/downloads", "issues_url": f"{ra}/issues{{/number}}",
        "pulls_url": f"{ra}/pulls{{/number}}", "milestones_url": f"{ra}/milestones{{/number}}",
        "notifications_url": f"{ra}/notifications{{?since,all,participating}}",
        "labels_url": f"{ra}/labels{{/name}}", "releases_url": f"{ra}/releases{{/id}}",
        "deployments_url": f"{ra}/deployments", "created_at": iso(repo.created_at),
        "updated_at": iso(last), "pushed_at": iso(last), "git_url": f"git://{h.split('://')[-1]}/{fn}.git",
        "ssh_url": f"git@{h.split('://')[-1].split(':')[0]}:{fn}.git", "clone_url": f"{h}/{fn}.git",
        "svn_url": f"{h}/{fn}", "homepage": None, "size": 1024, "stargazers_count": 0, "watchers_count": 0,
        "language": "Python", "has_issues": True, "has_projects": True, "has_downloads": True,
        "has_wiki": False, "has_pages": False, "has_discussions": False, "forks_count": 0, "mirror_url": None,
        "archived": repo.archived, "disabled": False, "open_issues_count": open_count, "license": None,
        "allow_forking": False, "is_template": False, "web_commit_signoff_required": False, "topics": [],
        "visibility": "private", "forks": 0, "open_issues": open_count, "watchers": 0,
        "default_branch": "main",
    }


def render_label(repo_full: str, name: str, base_url: str) -> dict:
    lid = stable_id(f"label:{repo_full}:{name}")
    return {"id": lid, "node_id": legacy_node_id("Label", lid),
            "url": f"{api(base_url)}/repos/{repo_full}/labels/{name.replace(' ', '%20')}", "name": name,
            "color": LABEL_COLORS[lid % len(LABEL_COLORS)], "default": False, "description": ""}


# -- derived state of a pull --------------------------------------------------------------------
def pending_requests(store: Store, pull: GhPull) -> tuple[list[str], list[str]]:
    """(logins, team slugs) whose review is requested now, replayed from the events."""
    org = pull.repo.split("/")[0]
    users: list[str] = []
    teams: list[str] = []
    for e in pull.events:
        if e.event == "review_requested":
            if e.requested_reviewer and e.requested_reviewer not in users:
                users.append(e.requested_reviewer)
            if e.requested_team and e.requested_team not in teams:
                teams.append(e.requested_team)
        elif e.event == "review_request_removed":
            if e.requested_reviewer in users:
                users.remove(e.requested_reviewer)
            if e.requested_team in teams:
                teams.remove(e.requested_team)
        elif e.event == "reviewed":
            if e.actor in users:
                users.remove(e.actor)
            for t in list(teams):  # a member's review fulfils the team's request
                if e.actor in store.github_team_members.get(f"{org}/{t}", ()):
                    teams.remove(t)
    return users, teams


def merge_sha(pull: GhPull) -> str | None:
    for e in pull.events:
        if e.event == "merged":
            return e.commit_sha or fake_sha(pull.repo, pull.number, "merge")
    return fake_sha(pull.repo, pull.number, "merge") if pull.merged_at else None


def head_sha(pull: GhPull) -> str:
    commits = [e for e in pull.events if e.event == "committed"]
    return (commits[-1].commit_sha or fake_sha(pull.repo, pull.number, commits[-1].id)) if commits else \
        fake_sha(pull.repo, pull.number, "head")


def review_commit(pull: GhPull, event: GhEvent) -> str:
    sha = None
    for e in pull.events:
        if e.event == "committed" and (e.created_at, e.id) <= (event.created_at, event.id):
            sha = e.commit_sha or fake_sha(pull.repo, pull.number, e.id)
    return sha or head_sha(pull)


def author_association(store: Store, login: str) -> str:
    p = index(store).people.get(login)
    return "MEMBER" if p is not None and not p.bot else "NONE"


# -- rendering: pulls, issues --------------------------------------------------------------------
def render_pull(store: Store, pull: GhPull, base_url: str, simple: bool = False) -> dict:
    """The REST pull-request object (`simple=True`: the shape of a list item, pull-request-simple)."""
    a, h, fn, n = api(base_url), base_url, pull.repo, pull.number
    ix = index(store)
    repo = ix.repos.get(fn)
    users, teams = pending_requests(store, pull)
    org = fn.split("/")[0]
    sha = head_sha(pull)
    repo_obj = render_repo(store, repo, base_url) if repo else None
    links = {"self": f"{a}/repos/{fn}/pulls/{n}", "html": f"{h}/{fn}/pull/{n}",
             "issue": f"{a}/repos/{fn}/issues/{n}", "comments": f"{a}/repos/{fn}/issues/{n}/comments",
             "review_comments": f"{a}/repos/{fn}/pulls/{n}/comments",
             "review_comment": f"{a}/repos/{fn}/pulls/comments{{/number}}",
             "commits": f"{a}/repos/{fn}/pulls/{n}/commits", "statuses": f"{a}/repos/{fn}/statuses/{sha}"}
    out = {
        "url": links["self"], "id": pull.id, "node_id": pull.node_id, "html_url": links["html"],
        "diff_url": f"{h}/{fn}/pull/{n}.diff", "patch_url": f"{h}/{fn}/pull/{n}.patch",
        "issue_url": links["issue"], "commits_url": links["commits"],
        "review_comments_url": links["review_comments"], "review_comment_url": links["review_comment"],
        "comments_url": links["comments"], "statuses_url": links["statuses"], "number": n,
        "state": pull.state, "locked": False, "title": pull.title,
        "user": render_user(store, pull.author, base_url), "body": pull.body or None,
        "created_at": iso(pull.created_at), "updated_at": iso(pull.updated_at), "closed_at": iso(pull.closed_at),
        "merged_at": iso(pull.merged_at), "merge_commit_sha": merge_sha(pull),
        "assignee": render_user(store, pull.assignees[0], base_url) if pull.assignees else None,
        "assignees": [render_user(store, x, base_url) for x in pull.assignees],
        "requested_reviewers": [render_user(store, x, base_url) for x in users],
        "requested_teams": [render_team(store, org, t, base_url) for t in teams],
        "labels": [render_label(fn, name, base_url) for name in pull.labels], "milestone": None,
        "draft": pull.draft,
        "head": {"label": f"{org}:{pull.head_ref}", "ref": pull.head_ref, "sha": sha,
                 "user": render_org_user(org, base_url), "repo": repo_obj},
        "base": {"label": f"{org}:{pull.base_ref}", "ref": pull.base_ref,
                 "sha": fake_sha(fn, pull.base_ref, pull.created_at), "user": render_org_user(org, base_url),
                 "repo": repo_obj},
        "_links": {k: {"href": v} for k, v in links.items()},
        "author_association": author_association(store, pull.author), "auto_merge": None,
        "active_lock_reason": None,
    }
    if simple:
        return out
    comments = sum(1 for e in pull.events if e.event == "commented")
    commits = sum(1 for e in pull.events if e.event == "committed")
    return out | {
        "merged": pull.merged_at is not None, "mergeable": None if pull.state == "closed" else True,
        "rebaseable": None if pull.state == "closed" else True,
        "mergeable_state": "unknown" if pull.state == "closed" else "clean",
        "merged_by": render_user(store, pull.merged_by, base_url), "comments": comments,
        "review_comments": 0, "maintainer_can_modify": False, "commits": max(commits, 1),
        "additions": 10 + pull.id % 300, "deletions": pull.id % 120, "changed_files": 1 + pull.id % 12,
    }


def render_issue(store: Store, item: GhIssue | GhPull, base_url: str) -> dict:
    """The REST issue object; a pull request renders as the issue GitHub lists, with `pull_request`."""
    a, h, fn, n = api(base_url), base_url, item.repo, item.number
    ra = f"{a}/repos/{fn}"
    is_pull = isinstance(item, GhPull)
    closed_by = None
    for e in item.events:
        if e.event == "closed":
            closed_by = e.actor
    out = {
        "url": f"{ra}/issues/{n}", "repository_url": ra, "labels_url": f"{ra}/issues/{n}/labels{{/name}}",
        "comments_url": f"{ra}/issues/{n}/comments", "events_url": f"{ra}/issues/{n}/events",
        "html_url": f"{h}/{fn}/{'pull' if is_pull else 'issues'}/{n}", "id": item.id,
        "node_id": item.node_id, "number": n, "title": item.title,
        "user": render_user(store, item.author, base_url),
        "labels": [render_label(fn, x, base_url) for x in item.labels], "state": item.state,
        "locked": False, "assignee": render_user(store, item.assignees[0], base_url) if item.assignees else None,
        "assignees": [render_user(store, x, base_url) for x in item.assignees], "milestone": None,
        "comments": sum(1 for e in item.events if e.event == "commented"), "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at), "closed_at": iso(item.closed_at),
        "author_association": author_association(store, item.author), "type": None,
        "active_lock_reason": None, "body": None,
        "closed_by": render_user(store, closed_by, base_url) if item.state == "closed" else None,
        "reactions": _reactions(f"{ra}/issues/{n}/reactions"), "timeline_url": f"{ra}/issues/{n}/timeline",
        "performed_via_github_app": None,
        "state_reason": None if is_pull else item.state_reason,
    }
    if is_pull:
        out["draft"] = item.draft
        out["pull_request"] = {"url": f"{ra}/pulls/{n}", "html_url": f"{h}/{fn}/pull/{n}",
                               "diff_url": f"{h}/{fn}/pull/{n}.diff", "patch_url": f"{h}/{fn}/pull/{n}.patch",
                               "merged_at": iso(item.merged_at)}
    return out


def _reactions(url: str) -> dict:
    return {"url": url, "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0, "confused": 0,
            "heart": 0, "rocket": 0, "eyes": 0}


# -- rendering: timeline events and reviews ------------------------------------------------------
EVENT_PREFIX = {"review_requested": "RRE", "review_request_removed": "RRRE", "review_dismissed": "RDE",
                "ready_for_review": "RFRE", "convert_to_draft": "CTDE", "assigned": "AE", "unassigned": "UAE",
                "labeled": "LE", "unlabeled": "ULE", "merged": "ME", "closed": "CE", "reopened": "REE",
                "commented": "IC", "reviewed": "PRR", "committed": "C"}


def event_node_id(event: GhEvent) -> str:
    return new_node_id(EVENT_PREFIX.get(event.event, "E"), event.id)


def render_review(store: Store, pull: GhPull, event: GhEvent, base_url: str) -> dict:
    """A pull-request-review object (the reviews API spells the state in capitals)."""
    a, h, fn, n = api(base_url), base_url, pull.repo, pull.number
    html = f"{h}/{fn}/pull/{n}#pullrequestreview-{event.id}"
    return {
        "id": event.id, "node_id": event_node_id(event),
        # a review by a deleted account has no user at all (not the ghost the other objects show)
        "user": None if event.actor == GHOST else render_user(store, event.actor, base_url),
        "body": event.review_body or "", "state": (event.review_state or "COMMENTED").upper(),
        "html_url": html, "pull_request_url": f"{a}/repos/{fn}/pulls/{n}",
        "author_association": author_association(store, event.actor),
        "_links": {"html": {"href": html}, "pull_request": {"href": f"{a}/repos/{fn}/pulls/{n}"}},
        "submitted_at": iso(event.created_at), "commit_id": review_commit(pull, event),
    }


def render_timeline_event(store: Store, item: GhPull | GhIssue, event: GhEvent, base_url: str,
                          for_events_api: bool = False) -> dict:
    """One item of `/issues/{n}/timeline` as GitHub renders its type (`for_events_api`: the /events shape)."""
    a, h, fn, n = api(base_url), base_url, item.repo, item.number
    kind = event.event
    if kind == "reviewed":
        review = render_review(store, item, event, base_url)
        return review | {"state": review["state"].lower(), "event": "reviewed"}
    if kind == "committed":
        sha = event.commit_sha or fake_sha(fn, n, event.id)
        person = index(store).people.get(event.actor)
        who = {"name": person.name if person else event.actor,
               "email": person.email if person else f"{event.actor}@users.noreply.github.com",
               "date": iso(event.created_at)}
        parent = fake_sha(fn, n, event.id, "parent")
        return {
            "sha": sha, "node_id": new_node_id("C", event.id), "url": f"{a}/repos/{fn}/git/commits/{sha}",
            "html_url": f"{h}/{fn}/commit/{sha}", "author": who, "committer": who,
            "tree": {"sha": fake_sha(sha, "tree"), "url": f"{a}/repos/{fn}/git/trees/{fake_sha(sha, 'tree')}"},
            "message": f"Commit {sha[:7]}",
            "parents": [{"sha": parent, "url": f"{a}/repos/{fn}/git/commits/{parent}",
                         "html_url": f"{h}/{fn}/commit/{parent}"}],
            "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None,
                             "verified_at": None},
            "event": "committed",
        }
    actor = render_user(store, event.actor, base_url)
    if kind == "commented":
        return {
            "url": f"{a}/repos/{fn}/issues/comments/{event.id}",
            "html_url": f"{h}/{fn}/{'pull' if isinstance(item, GhPull) else 'issues'}/{n}#issuecomment-{event.id}",
            "issue_url": f"{a}/repos/{fn}/issues/{n}", "id": event.id, "node_id": event_node_id(event),
            "user": actor, "created_at": iso(event.created_at), "updated_at": iso(event.created_at),
            "author_association": author_association(store, event.actor), "body": event.review_body or "",
            "reactions": _reactions(f"{a}/repos/{fn}/issues/comments/{event.id}/reactions"),
            "performed_via_github_app": None, "event": "commented", "actor": actor,
        }
    out: dict[str, Any] = {
        "id": event.id, "node_id": event_node_id(event), "url": f"{a}/repos/{fn}/issues/events/{event.id}",
        "actor": actor, "event": kind, "commit_id": None, "commit_url": None, "created_at": iso(event.created_at),
        "performed_via_github_app": None,
    }
    org = fn.split("/")[0]
    if kind in ("review_requested", "review_request_removed"):
        out["review_requester"] = actor
        if event.requested_team:
            out["requested_team"] = render_team(store, org, event.requested_team, base_url)
        else:
            out["requested_reviewer"] = render_user(store, event.requested_reviewer, base_url)
    elif kind == "review_dismissed":
        out["dismissed_review"] = {"state": (event.dismissed_state or "approved").lower(),
                                   "review_id": event.dismissed_review_id or 0, "dismissal_message": None}
        if isinstance(item, GhPull):
            out["dismissed_review"]["dismissal_commit_id"] = review_commit(item, event)
    elif kind in ("labeled", "unlabeled"):
        lab = render_label(fn, event.label or "", base_url)
        out["label"] = {"name": lab["name"], "color": lab["color"]}
    elif kind in ("assigned", "unassigned"):
        out["assignee"] = render_user(store, event.assignee, base_url)
        if for_events_api:
            out["assigner"] = actor
    elif kind == "merged":
        sha = event.commit_sha or merge_sha(item)
        out["commit_id"], out["commit_url"] = sha, f"{a}/repos/{fn}/commits/{sha}"
    elif kind == "closed":
        out["state_reason"] = None if isinstance(item, GhPull) else (item.state_reason or "completed")
    elif kind == "reopened":
        out["state_reason"] = None if isinstance(item, GhPull) else "reopened"
    return out


# -- rendering: review comments, commits, a repository's issue events ---------------------------
REVIEW_COMMENT_PATHS = ("src/app.py", "src/service/handlers.py", "tests/test_app.py", "README.md", "config/settings.yaml")


def review_comments(pull: GhPull) -> list[tuple[int, GhEvent, int]]:
    """(comment id, its review, ordinal) of a pull's line comments: a review that asks for changes or comments
    carries one or two (derived from its id, so every client sees the same)."""
    out = []
    for e in pull.events:
        if e.event == "reviewed" and (e.review_state or "COMMENTED").upper() in ("CHANGES_REQUESTED", "COMMENTED"):
            for k in range(1 + e.id % 2):
                out.append((e.id * 4 + k, e, k))
    return out


def render_review_comment(store: Store, pull: GhPull, cid: int, review: GhEvent, k: int, base_url: str) -> dict:
    """pull-request-review-comment: a line comment of `review`, made when the review was submitted."""
    a, h, fn, n = api(base_url), base_url, pull.repo, pull.number
    path = REVIEW_COMMENT_PATHS[(cid // 4) % len(REVIEW_COMMENT_PATHS)]
    line = 3 + (cid * 7 + k) % 120
    sha = review_commit(pull, review)
    url = f"{a}/repos/{fn}/pulls/comments/{cid}"
    html = f"{h}/{fn}/pull/{n}#discussion_r{cid}"
    when = iso(review.created_at)
    return {
        "url": url, "pull_request_review_id": review.id, "id": cid, "node_id": new_node_id("PRRC", cid),
        "diff_hunk": f"@@ -{line},6 +{line},7 @@ def handler(request):\n     value = compute(request)\n+    "
                     "check(value)",
        "path": path, "position": 4, "original_position": 4, "commit_id": sha, "original_commit_id": sha,
        "user": None if review.actor == GHOST else render_user(store, review.actor, base_url),
        "body": ("Could this handle the empty case?", "Please add a test for this branch.")[k % 2],
        "created_at": when, "updated_at": when, "html_url": html, "pull_request_url": f"{a}/repos/{fn}/pulls/{n}",
        "author_association": author_association(store, review.actor),
        "_links": {"self": {"href": url}, "html": {"href": html}, "pull_request": {"href": f"{a}/repos/{fn}/pulls/{n}"}},
        "start_line": None, "original_start_line": None, "start_side": None, "line": line + 3,
        "original_line": line + 3, "side": "RIGHT", "subject_type": "line",
        "reactions": _reactions(f"{url}/reactions"),
    }


def pull_commits(pull: GhPull) -> list[GhEvent]:
    """A pull's commits, oldest first; a pull always has one (its head) even when the events show none."""
    commits = [e for e in pull.events if e.event == "committed"]
    if commits:
        return commits
    return [GhEvent(id=pull.id, event="committed", actor=pull.author, created_at=pull.created_at,
                    commit_sha=head_sha(pull))]


def render_commit(store: Store, pull: GhPull, event: GhEvent, base_url: str) -> dict:
    """commit, as GET /repos/{o}/{r}/pulls/{n}/commits lists it."""
    a, h, fn = api(base_url), base_url, pull.repo
    t = render_timeline_event(store, pull, event, base_url)
    sha = t["sha"]
    user = None if event.actor == GHOST else render_user(store, event.actor, base_url)
    return {
        "sha": sha, "node_id": legacy_node_id("Commit", stable_id(sha)), "url": f"{a}/repos/{fn}/commits/{sha}",
        "html_url": f"{h}/{fn}/commit/{sha}", "comments_url": f"{a}/repos/{fn}/commits/{sha}/comments",
        "commit": {"url": t["url"], "author": t["author"], "committer": t["committer"], "message": t["message"],
                   "comment_count": 0, "tree": t["tree"], "verification": t["verification"]},
        "author": user, "committer": user,
        "parents": [{"sha": p["sha"], "url": f"{a}/repos/{fn}/commits/{p['sha']}", "html_url": p["html_url"]}
                    for p in t["parents"]],
    }


def render_repo_issue_event(store: Store, item: GhPull | GhIssue, event: GhEvent, base_url: str) -> dict:
    """issue-event, as GET /repos/{o}/{r}/issues/events lists it: the /events shape with its issue."""
    return render_timeline_event(store, item, event, base_url, for_events_api=True) | {
        "issue": render_issue(store, item, base_url)}


# -- rate limits ---------------------------------------------------------------------------------
class RateLimits:
    """Per (token, resource) budgets over fixed hourly windows, as GitHub's primary limits."""

    def __init__(self) -> None:
        self.windows: dict[tuple[str, str], list[float]] = {}  # -> [used, reset_epoch]

    def state(self, token: str, resource: str, limit: int) -> tuple[int, int, int]:
        """(used, remaining, reset epoch) of the current window."""
        now = time.time()
        w = self.windows.get((token, resource))
        if w is None or now >= w[1]:
            w = self.windows[(token, resource)] = [0, math.floor(now) + 3600]
        used = int(w[0])
        return used, max(limit - used, 0), int(w[1])

    def charge(self, token: str, resource: str, limit: int, cost: int = 1) -> None:
        self.state(token, resource, limit)
        self.windows[(token, resource)][0] += cost


def limit_for(app: AppView, resource: str) -> int:
    if resource == "graphql":
        return int(getattr(app, "github_graphql_rate_limit", getattr(app, "github_rate_limit", 5000)))
    return int(getattr(app, "github_rate_limit", 5000))


def rate_headers(app: AppView, token: str, resource: str) -> dict[str, str]:
    limit = limit_for(app, resource)
    used, remaining, reset = app.github_rates.state(token, resource, limit)
    return {"x-ratelimit-limit": str(limit), "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-used": str(used), "x-ratelimit-reset": str(reset), "x-ratelimit-resource": resource}


def token_of(req: Request) -> str | None:
    auth = req.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return None


def common_headers() -> dict[str, str]:
    return {"x-github-request-id": uuid.uuid4().hex[:8].upper() + ":" + uuid.uuid4().hex[:12].upper(),
            "x-github-media-type": "github.v3; format=json", "x-github-api-version-selected": "2022-11-28",
            "x-oauth-scopes": "repo, read:org", "x-accepted-oauth-scopes": "repo",
            "Vary": "Accept, Authorization, Cookie, X-GitHub-OTP"}


def bad_credentials(app: AppView, docs: str) -> Response:
    """401 as GitHub sends it; unauthenticated budgets are per client (60 an hour)."""
    r = json_response({"message": "Bad credentials", "documentation_url": docs, "status": "401"}, 401)
    r.headers |= common_headers() | rate_headers_anon(app)
    del r.headers["x-oauth-scopes"]
    return r


def rate_headers_anon(app: AppView) -> dict[str, str]:
    used, remaining, reset = app.github_rates.state("", "core", 60)
    return {"x-ratelimit-limit": "60", "x-ratelimit-remaining": str(remaining), "x-ratelimit-used": str(used),
            "x-ratelimit-reset": str(reset), "x-ratelimit-resource": "core"}


def rate_exceeded_body(store: Store) -> dict:
    uid = user_id(store, store.github_user_login)
    return {"message": f"API rate limit exceeded for user ID {uid}. If you reach out to GitHub Support for "
                       f"help, please include the request ID {uuid.uuid4().hex[:8].upper()} and timestamp "
                       f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}.",
            "documentation_url": f"{RATE_DOCS}#about-the-primary-rate-limit", "status": "403"}


def wrap(app: AppView, handler: Callable[[Request], Response],
         counted: bool = True) -> Callable[[Request], Response]:
    """Authentication, rate limit, ETag/304 and GitHub's headers around a REST handler."""

    def wrapped(req: Request) -> Response:
        token = token_of(req)
        if token != GITHUB_TOKEN:
            return bad_credentials(app, f"{DOCS}/rest")
        limit = limit_for(app, "core")
        _, remaining, _ = app.github_rates.state(token, "core", limit)
        resp = handler(req)
        etag = None
        if req.method == "GET" and resp.status == 200:
            etag = resp.headers.pop("ETag", None) or etag_of(resp.body)
            inm = req.headers.get("if-none-match")
            if inm and etag in [x.strip() for x in inm.split(",")]:
                return Response(304, b"", {"ETag": etag} | common_headers() | rate_headers(app, token, "core"))
        if counted and remaining <= 0:
            resp = json_response(rate_exceeded_body(app.store), 403)
            etag = None
        elif counted:
            app.github_rates.charge(token, "core", limit)
        resp.headers |= common_headers() | rate_headers(app, token, "core")
        if etag:
            resp.headers |= {"ETag": etag, "Cache-Control": "private, max-age=60, s-maxage=60"}
        return resp

    return wrapped


def etag_of(body: bytes) -> str:
    return 'W/"' + hashlib.sha256(body).hexdigest() + '"'


def not_found() -> Response:
    return json_response({"message": "Not Found", "documentation_url": f"{DOCS}/rest", "status": "404"}, 404)


def unprocessable(message: str) -> Response:
    return json_response({"message": message, "documentation_url": f"{DOCS}/rest", "status": "422"}, 422)


# -- paging --------------------------------------------------------------------------------------
class BadParam(ValueError):
    pass


def page_params(req: Request, default: int = 30) -> tuple[int, int]:
    try:
        per_page = int(req.arg("per_page", str(default)) or default)
        page = int(req.arg("page", "1") or 1)
    except ValueError as e:
        raise BadParam("per_page and page must be integers") from e
    return min(max(per_page, 1), 100), max(page, 1)


def paged(req: Request, items: list, link_path: str, render: Callable[[Any], dict],
          default_per_page: int = 30) -> Response:
    """One page of `items` and GitHub's Link header (prev, next, last, first) on `link_path`."""
    per_page, page = page_params(req, default_per_page)
    last = max(math.ceil(len(items) / per_page), 1)
    chunk = items[(page - 1) * per_page: page * per_page]
    body = [render(x) for x in chunk]
    query = {k: v[0] for k, v in req.query.items() if k != "page"}

    def url(p: int) -> str:
        return f"{req.base_url}{link_path}?" + urlencode({**query, "page": p})

    rels = []
    if page > 1:
        rels.append((min(page - 1, last), "prev"))
    if page < last:
        rels += [(page + 1, "next"), (last, "last")]
    if page > 1:
        rels.append((1, "first"))
    headers = {"Link": ", ".join(f'<{url(p)}>; rel="{rel}"' for p, rel in rels)} if rels else {}
    return json_response(body, 200, headers)


# -- handlers ------------------------------------------------------------------------------------
REPO = r"/api/v3/(?:repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)|repositories/(?P<repo_id>\d+))"


def find_repo(store: Store, req: Request) -> GhRepo | None:
    ix = index(store)
    if req.params.get("repo_id"):
        return ix.repos_by_id.get(int(req.params["repo_id"]))
    repo = ix.repos.get(f"{req.params['owner']}/{req.params['repo']}")
    if repo is None:  # GitHub matches owner and name case-insensitively
        want = f"{req.params['owner']}/{req.params['repo']}".lower()
        repo = next((r for r in store.github_repos if r.full_name.lower() == want), None)
    return repo


def find_org(store: Store, name: str) -> str | None:
    """The organisation's login as GitHub has it (matched case-insensitively)."""
    return next((o for o in store.github_orgs if o.lower() == name.lower()), None)


def moved_repo(store: Store, name: str) -> GhRepo | None:
    """The repository a former name (renamed, transferred; any case) now belongs to."""
    current = {k.lower(): v for k, v in store.github_former_names.items()}.get(name.lower())
    return index(store).repos.get(current) if current else None


def moved_permanently(req: Request, repo: GhRepo) -> Response:
    """GitHub's answer to a former repository name: 301 to the same path under /repositories/{id}."""
    prefix = f"/api/v3/repos/{req.params['owner']}/{req.params['repo']}"
    query = urlencode([(k, v) for k, vs in req.query.items() for v in vs])
    url = f"{req.base_url}/api/v3/repositories/{repo.id}{req.path[len(prefix):]}" + (f"?{query}" if query else "")
    return json_response({"message": "Moved Permanently", "url": url,
                          "documentation_url": f"{DOCS}/rest/guides/best-practices-for-using-the-rest-api"
                                               "#follow-redirects"}, 301, {"Location": url})


def register(app: AppView) -> None:
    """Add the GitHub REST and GraphQL routes to the sandbox."""
    app.github_rates = RateLimits()
    if not hasattr(app, "github_rate_limit"):
        app.github_rate_limit = 5000
    if not hasattr(app, "github_graphql_rate_limit"):
        app.github_graphql_rate_limit = 5000
    store_of = lambda: app.store

    def guard(fn: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def inner(req: Request) -> Response:
            try:
                return fn(req)
            except BadParam as e:
                return unprocessable(str(e))
        return inner

    def add(pattern: str, name: str, fn: Callable[[Request], Response], counted: bool = True) -> None:
        app.router.add("GET", pattern, name, wrap(app, guard(fn), counted))

    def repo_link(repo: GhRepo, suffix: str) -> str:
        return f"/api/v3/repositories/{repo.id}{suffix}"

    def with_repo(fn: Callable[[Request, Store, GhRepo], Response]) -> Callable[[Request], Response]:
        def inner(req: Request) -> Response:
            store = store_of()
            repo = find_repo(store, req)
            if repo is not None:
                app.stats.repositories[repo.full_name] = app.stats.repositories.get(repo.full_name, 0) + 1
            if repo is None and req.params.get("owner"):
                moved = moved_repo(store, f"{req.params['owner']}/{req.params['repo']}")
                if moved is not None:
                    return moved_permanently(req, moved)
            if repo is None:
                return not_found()
            key = ("github", fn.__qualname__, req.path, tuple(sorted((k, tuple(v)) for k, v in req.query.items())),
                   req.base_url)
            hit = cache.of(store).response(key, lambda: tagged(fn(req, store, repo)), lambda r: len(r.body) + 200)
            return Response(hit.status, hit.body, dict(hit.headers))
        return inner

    def tagged(resp: Response) -> Response:
        """The answer with its ETag worked out once (`wrap` takes it from there)."""
        if resp.status == 200:
            resp.headers["ETag"] = etag_of(resp.body)
        return resp

    def with_item(fn: Callable[[Request, Store, GhRepo, Any], Response], pulls_only: bool):
        def inner(req: Request, store: Store, repo: GhRepo) -> Response:
            item = index(store).items.get((repo.full_name, int(req.params["number"])))
            if item is None or (pulls_only and not isinstance(item, GhPull)):
                return not_found()
            return fn(req, store, repo, item)
        return with_repo(inner)

    # pulls
    def pulls(req: Request, store: Store, repo: GhRepo) -> Response:
        state = req.arg("state", "open")
        if state not in ("open", "closed", "all"):
            raise BadParam(f"state must be open, closed or all, not {state!r}")
        sort = req.arg("sort", "created")
        if sort not in ("created", "updated", "popularity", "long-running"):
            raise BadParam("sort must be one of created, updated, popularity, long-running")
        direction = req.arg("direction") or ("desc" if sort == "created" else "asc")
        if direction not in ("asc", "desc"):
            raise BadParam("direction must be asc or desc")
        items = [p for p in index(store).pulls.get(repo.full_name, []) if state == "all" or p.state == state]
        if req.arg("base"):
            items = [p for p in items if p.base_ref == req.arg("base")]
        if req.arg("head"):
            items = [p for p in items if f"{repo.org}:{p.head_ref}" == req.arg("head")]
        if sort == "long-running":
            month = store.now - timedelta(days=30)
            items = [p for p in items if p.created_at < month and p.updated_at >= month]
        key = {"created": lambda p: p.created_at, "updated": lambda p: p.updated_at,
               "popularity": lambda p: sum(1 for e in p.events if e.event == "commented"),
               "long-running": lambda p: p.created_at}[sort]
        items.sort(key=lambda p: (key(p), p.number), reverse=direction == "desc")
        return paged(req, items, repo_link(repo, "/pulls"), lambda p: render_pull(store, p, req.base_url, True))

    def pull(req, store, repo, p) -> Response:
        return json_response(render_pull(store, p, req.base_url))

    def reviews(req, store, repo, p) -> Response:
        items = [e for e in p.events if e.event == "reviewed"]
        return paged(req, items, repo_link(repo, f"/pulls/{p.number}/reviews"),
                     lambda e: render_review(store, p, e, req.base_url))

    def review(req, store, repo, p) -> Response:
        rid = int(req.params["review_id"])
        e = next((e for e in p.events if e.event == "reviewed" and e.id == rid), None)
        return not_found() if e is None else json_response(render_review(store, p, e, req.base_url))

    def requested(req, store, repo, p) -> Response:
        users, teams = pending_requests(store, p)
        return json_response({"users": [render_user(store, u, req.base_url) for u in users],
                              "teams": [render_team(store, repo.org, t, req.base_url) for t in teams]})

    def timeline(req, store, repo, item) -> Response:
        return paged(req, item.events, repo_link(repo, f"/issues/{item.number}/timeline"),
                     lambda e: render_timeline_event(store, item, e, req.base_url))

    def events(req, store, repo, item) -> Response:
        items = [e for e in item.events if e.event in ISSUE_EVENTS]
        return paged(req, items, repo_link(repo, f"/issues/{item.number}/events"),
                     lambda e: render_timeline_event(store, item, e, req.base_url, for_events_api=True))

    def issue_comments(req, store, repo, item) -> Response:
        """An issue's or pull request's conversation comments (issue-comment), oldest first; `since` filters."""
        items = [e for e in item.events if e.event == "commented"]
        if req.arg("since"):
            try:
                since = parse_iso(req.arg("since"))
            except ValueError as e:
                raise BadParam("since must be an ISO 8601 timestamp: YYYY-MM-DDTHH:MM:SSZ") from e
            items = [e for e in items if e.created_at >= since]

        def render(e):
            out = dict(render_timeline_event(store, item, e, req.base_url))
            out.pop("event"), out.pop("actor")
            return out
        return paged(req, items, repo_link(repo, f"/issues/{item.number}/comments"), render)

    def issues(req: Request, store: Store, repo: GhRepo) -> Response:
        state = req.arg("state", "open")
        if state not in ("open", "closed", "all"):
            raise BadParam(f"state must be open, closed or all, not {state!r}")
        sort = req.arg("sort", "created")
        if sort not in ("created", "updated", "comments"):
            raise BadParam("sort must be one of created, updated, comments")
        direction = req.arg("direction", "desc")
        if direction not in ("asc", "desc"):
            raise BadParam("direction must be asc or desc")
        ix = index(store)
        items: list = ix.issues.get(repo.full_name, []) + ix.pulls.get(repo.full_name, [])
        items = [i for i in items if state == "all" or i.state == state]
        if req.arg("since"):
            try:
                since = parse_iso(req.arg("since"))
            except ValueError as e:
                raise BadParam("since must be an ISO 8601 timestamp: YYYY-MM-DDTHH:MM:SSZ") from e
            items = [i for i in items if i.updated_at >= since]
        if req.arg("labels"):
            want = {x.strip() for x in req.arg("labels").split(",") if x.strip()}
            items = [i for i in items if want <= set(i.labels)]
        key = {"created": lambda i: i.created_at, "updated": lambda i: i.updated_at,
               "comments": lambda i: sum(1 for e in i.events if e.event == "commented")}[sort]
        items.sort(key=lambda i: (key(i), i.number), reverse=direction == "desc")
        return paged(req, items, repo_link(repo, "/issues"), lambda i: render_issue(store, i, req.base_url))

    def issue(req, store, repo, item) -> Response:
        return json_response(render_issue(store, item, req.base_url))

    def repo_get(req, store, repo) -> Response:
        body = render_repo(store, repo, req.base_url) | {
            "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
            "organization": render_org_user(repo.org, req.base_url), "network_count": 0,
            "subscribers_count": 0}
        return json_response(body)

    # users, orgs, teams
    def public_user(store: Store, login: str, base_url: str) -> dict:
        """public-user: the simple user plus the profile (the sandbox's people show their email publicly)."""
        person = index(store).people.get(login)
        human = person is not None and not person.bot
        first = min((r.created_at for r in store.github_repos), default=store.now)
        return render_user(store, login, base_url) | {
            "name": person.name if human else None, "company": None, "blog": "", "location": None,
            "email": person.email if human else None, "hireable": None, "bio": None,
            "twitter_username": None, "notification_email": None, "public_repos": 0, "public_gists": 0,
            "followers": 0, "following": 0, "created_at": iso(first), "updated_at": iso(store.now)}

    def user(req: Request) -> Response:
        store = store_of()
        login = store.github_user_login
        body = public_user(store, login, req.base_url)
        return json_response(body | {"name": body["name"] or login})

    def user_by_login(req: Request) -> Response:
        store = store_of()
        asked = req.params["login"]
        login = next((u for u in index(store).people if u.lower() == asked.lower()), None)
        if login is None and asked.lower() == GHOST:
            login = GHOST
        if login is None:
            return not_found()
        return json_response(public_user(store, login, req.base_url))

    def user_orgs(req: Request) -> Response:
        store = store_of()
        return paged(req, list(store.github_orgs), "/api/v3/user/orgs", lambda o: render_org(o, req.base_url))

    def org_repos(req: Request) -> Response:
        store = store_of()
        org = req.params["org"]
        if org not in store.github_orgs:
            return not_found()
        kind = req.arg("type", "all")
        if kind not in ("all", "public", "private", "forks", "sources", "member"):
            raise BadParam("type must be one of all, public, private, forks, sources, member")
        items = [r for r in store.github_repos if r.org == org and kind not in ("public", "forks")]
        sort = req.arg("sort", "created")
        if sort not in ("created", "updated", "pushed", "full_name"):
            raise BadParam("sort must be one of created, updated, pushed, full_name")
        direction = req.arg("direction") or ("asc" if sort == "full_name" else "desc")
        key = {"full_name": lambda r: r.full_name, "created": lambda r: r.created_at}.get(
            sort, lambda r: max((p.updated_at for p in index(store).pulls.get(r.full_name, ())),
                                default=r.created_at))
        items.sort(key=lambda r: (key(r), r.id), reverse=direction == "desc")
        return paged(req, items, f"/api/v3/orgs/{org}/repos", lambda r: render_repo(store, r, req.base_url))

    def team_members_of(req: Request) -> Response:
        store = store_of()
        found = team_of(req)
        if found is None:
            return not_found()
        org, slug = found
        role = req.arg("role", "all")
        if role not in ("all", "member", "maintainer"):
            raise BadParam("role must be one of all, member, maintainer")
        maintainers = team_maintainers(store, org, slug)
        logins = [u for u in team_members(store, org, slug)
                  if role == "all" or (u in maintainers) == (role == "maintainer")]
        tid = stable_id(f"team:{org}/{slug}")
        return paged(req, logins, f"/api/v3/organizations/{stable_id('org:' + org)}/team/{tid}/members",
                     lambda u: render_user(store, u, req.base_url))

    def org_get(req: Request) -> Response:
        store = store_of()
        org = find_org(store, req.params["org"])
        return not_found() if org is None else json_response(render_org_full(store, org, req.base_url))

    def org_teams(req: Request) -> Response:
        store = store_of()
        org = find_org(store, req.params["org"])
        if org is None:
            return not_found()
        slugs = sorted(index(store).team_slugs.get(org, set()))
        return paged(req, slugs, f"/api/v3/orgs/{org}/teams", lambda t: render_team(store, org, t, req.base_url))

    def team_of(req: Request) -> tuple[str, str] | None:
        store = store_of()
        if req.params.get("team_id"):
            found = index(store).teams_by_id.get(int(req.params["team_id"]))
            return found if found and stable_id("org:" + found[0]) == int(req.params["org_id"]) else None
        org = find_org(store, req.params["org"])
        slug = req.params["slug"].lower()
        return (org, slug) if org and slug in index(store).team_slugs.get(org, set()) else None

    def team_get(req: Request) -> Response:
        found = team_of(req)
        return not_found() if found is None else json_response(render_team_full(store_of(), *found, req.base_url))

    def org_members(req: Request) -> Response:
        store = store_of()
        org = find_org(store, req.params["org"])
        if org is None:
            return not_found()
        role = req.arg("role", "all")
        if role not in ("all", "admin", "member"):
            raise BadParam("role must be one of all, admin, member")
        logins = sorted({m for k, ms in store.github_team_members.items() if k.split("/")[0] == org for m in ms},
                        key=lambda u: user_id(store, u))
        admins = {store.github_user_login} & set(logins)
        logins = [u for u in logins if role == "all" or (u in admins) == (role == "admin")]
        return paged(req, logins, f"/api/v3/orgs/{org}/members", lambda u: render_user(store, u, req.base_url))

    def review_comments_of(req, store, repo, p) -> Response:
        items = review_comments(p)
        return paged(req, items, repo_link(repo, f"/pulls/{p.number}/comments"),
                     lambda c: render_review_comment(store, p, c[0], c[1], c[2], req.base_url))

    def repo_review_comments(req: Request, store: Store, repo: GhRepo) -> Response:
        sort = req.arg("sort", "created")
        if sort not in ("created", "updated"):
            raise BadParam("sort must be created or updated")
        direction = req.arg("direction", "asc")
        if direction not in ("asc", "desc"):
            raise BadParam("direction must be asc or desc")
        items = [(p, c) for p in index(store).pulls.get(repo.full_name, []) for c in review_comments(p)]
        if req.arg("since"):
            try:
                since = parse_iso(req.arg("since"))
            except ValueError as e:
                raise BadParam("since must be an ISO 8601 timestamp: YYYY-MM-DDTHH:MM:SSZ") from e
            items = [(p, c) for p, c in items if c[1].created_at >= since]
        items.sort(key=lambda pc: (pc[1][1].created_at, pc[1][0]), reverse=direction == "desc")
        return paged(req, items, repo_link(repo, "/pulls/comments"),
                     lambda pc: render_review_comment(store, pc[0], *pc[1], req.base_url))

    def commits(req, store, repo, p) -> Response:
        # GitHub lists at most 250 commits of a pull
        return paged(req, pull_commits(p)[:250], repo_link(repo, f"/pulls/{p.number}/commits"),
                     lambda e: render_commit(store, p, e, req.base_url))

    def repo_issue_events(req: Request, store: Store, repo: GhRepo) -> Response:
        return paged(req, index(store).repo_events(repo.full_name), repo_link(repo, "/issues/events"),
                     lambda ie: render_repo_issue_event(store, ie[0], ie[1], req.base_url))

    def rate_limit(req: Request) -> Response:
        token = token_of(req) or ""
        res = {}
        for name in ("core", "graphql", "search", "code_search", "integration_manifest", "source_import"):
            limit = {"search": 30, "code_search": 10}.get(name, limit_for(app, name))
            used, remaining, reset = app.github_rates.state(token, name, limit)
            res[name] = {"limit": limit, "used": used, "remaining": remaining, "reset": reset}
        return json_response({"resources": res, "rate": res["core"]})

    add(REPO + r"/pulls", "github.pulls", with_repo(pulls))
    add(REPO + r"/pulls/(?P<number>\d+)", "github.pull", with_item(pull, True))
    add(REPO + r"/pulls/(?P<number>\d+)/reviews", "github.reviews", with_item(reviews, True))
    add(REPO + r"/pulls/(?P<number>\d+)/reviews/(?P<review_id>\d+)", "github.review", with_item(review, True))
    add(REPO + r"/pulls/(?P<number>\d+)/requested_reviewers", "github.requested_reviewers",
        with_item(requested, True))
    add(REPO + r"/issues/(?P<number>\d+)/timeline", "github.timeline", with_item(timeline, False))
    add(REPO + r"/issues/(?P<number>\d+)/events", "github.issue_events", with_item(events, False))
    add(REPO + r"/issues/(?P<number>\d+)/comments", "github.issue_comments", with_item(issue_comments, False))
    add(REPO + r"/issues/(?P<number>\d+)", "github.issue", with_item(issue, False))
    add(REPO + r"/issues", "github.issues", with_repo(issues))
    add(REPO, "github.repo", with_repo(repo_get))
    add(r"/api/v3/user", "github.user", user)
    add(r"/api/v3/users/(?P<login>[^/]+)", "github.user_by_login", user_by_login)
    add(r"/api/v3/user/orgs", "github.user_orgs", user_orgs)
    add(r"/api/v3/orgs/(?P<org>[^/]+)/repos", "github.org_repos", org_repos)
    add(REPO + r"/pulls/comments", "github.review_comments", with_repo(repo_review_comments))
    add(REPO + r"/pulls/(?P<number>\d+)/comments", "github.review_comments", with_item(review_comments_of, True))
    add(REPO + r"/pulls/(?P<number>\d+)/commits", "github.pull_commits", with_item(commits, True))
    add(REPO + r"/issues/events", "github.repo_issue_events", with_repo(repo_issue_events))
    add(r"/api/v3/orgs/(?P<org>[^/]+)", "github.org", org_get)
    add(r"/api/v3/orgs/(?P<org>[^/]+)/members", "github.org_members", org_members)
    add(r"/api/v3/orgs/(?P<org>[^/]+)/teams", "github.teams", org_teams)
    add(r"/api/v3/orgs/(?P<org>[^/]+)/teams/(?P<slug>[^/]+)", "github.team", team_get)
    add(r"/api/v3/orgs/(?P<org>[^/]+)/teams/(?P<slug>[^/]+)/members", "github.team_members", team_members_of)
    # where a team's `url` and the members Link header point (GitHub's legacy team paths)
    add(r"/api/v3/organizations/(?P<org_id>\d+)/team/(?P<team_id>\d+)", "github.team", team_get)
    add(r"/api/v3/organizations/(?P<org_id>\d+)/team/(?P<team_id>\d+)/members", "github.team_members",
        team_members_of)
    add(r"/api/v3/rate_limit", "github.rate_limit", rate_limit, counted=False)

    # Anything else under the API: GitHub's 404 with its headers (after every real route).
    app.router.add("GET", r"/api/v3/.*", "github.unknown", wrap(app, lambda req: not_found()))

