"""GitHub GraphQL emulator (`POST /api/graphql`) over GitHub's real public schema.

The schema is built once per process from sandbox/specs (about 1.5 s) and resolvers are attached to
the fields the sandbox serves; objects are dicts carrying `__typename` plus the model object under
`_obj` for nested connections. Cost and node limits are computed before execution, as GitHub does.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    build_schema,
    execute,
    get_named_type,
    parse,
    validate,
)
from graphql.language import FragmentDefinitionNode, VariableNode
from graphql.utilities import value_from_ast_untyped

from sandbox import github_api as rest
from sandbox.github_api import iso, new_node_id
from sandbox.model import GhEvent, GhIssue, GhPull, GhRepo
from sandbox.web import GITHUB_TOKEN, AppView, Request, Response, json_response

# GitHub's public schema (@octokit/graphql-schema 15.26.1, MIT: specs/github-graphql-schema.LICENSE.md), shipped
# with the sandbox so it runs from any clone.
SCHEMA_PATH = Path(os.environ.get("FLOWLENS_GITHUB_SCHEMA",
                                  Path(__file__).resolve().parent / "specs" / "github-graphql-schema.graphql"))
MAX_NODES = 500_000
_schema: GraphQLSchema | None = None
_schema_lock = threading.Lock()
schema_build_seconds: float | None = None

TIMELINE = {  # REST event name -> (GraphQL type, itemTypes enum value)
    "reviewed": ("PullRequestReview", "PULL_REQUEST_REVIEW"),
    "review_requested": ("ReviewRequestedEvent", "REVIEW_REQUESTED_EVENT"),
    "review_request_removed": ("ReviewRequestRemovedEvent", "REVIEW_REQUEST_REMOVED_EVENT"),
    "review_dismissed": ("ReviewDismissedEvent", "REVIEW_DISMISSED_EVENT"),
    "ready_for_review": ("ReadyForReviewEvent", "READY_FOR_REVIEW_EVENT"),
    "convert_to_draft": ("ConvertToDraftEvent", "CONVERT_TO_DRAFT_EVENT"),
    "assigned": ("AssignedEvent", "ASSIGNED_EVENT"),
    "unassigned": ("UnassignedEvent", "UNASSIGNED_EVENT"),
    "labeled": ("LabeledEvent", "LABELED_EVENT"),
    "unlabeled": ("UnlabeledEvent", "UNLABELED_EVENT"),
    "merged": ("MergedEvent", "MERGED_EVENT"),
    "closed": ("ClosedEvent", "CLOSED_EVENT"),
    "reopened": ("ReopenedEvent", "REOPENED_EVENT"),
    "commented": ("IssueComment", "ISSUE_COMMENT"),
    "committed": ("PullRequestCommit", "PULL_REQUEST_COMMIT"),
}


class NotFound(Exception):
    """Resolves to null with GitHub's NOT_FOUND error."""


def schema() -> GraphQLSchema:
    """GitHub's schema with the sandbox's resolvers (built once per process)."""
    global _schema, schema_build_seconds
    with _schema_lock:
        if _schema is None:
            started = time.perf_counter()
            s = build_schema(SCHEMA_PATH.read_text(encoding="utf-8"), assume_valid_sdl=True)
            _attach(s)
            schema_build_seconds = time.perf_counter() - started
            _schema = s
        return _schema


# -- rendering -----------------------------------------------------------------------------------
INT32_MAX = 2**31 - 1


def db_ids(n: int) -> dict:
    """`databaseId` is a 32-bit Int in GitHub's schema (null beyond it); `fullDatabaseId` is a BigInt."""
    return {"databaseId": n if n <= INT32_MAX else None, "fullDatabaseId": str(n)}


class Ctx:
    lazy = False  # nested objects as resolvers, built only when the query asks (the endpoint sets it)

    def __init__(self, app: AppView, base_url: str, token: str) -> None:
        self.app, self.store, self.base_url, self.token = app, app.store, base_url, token
        self.ix = rest.index(app.store)


def later(ctx: Ctx, build: Callable[[], Any]) -> Any:
    """A nested object: built now, or, executing a query, when a field asks for it (graphql-core calls a
    callable it finds in a dict as the field's resolver)."""
    return (lambda info, **_args: build()) if ctx.lazy else build()


def actor(ctx: Ctx, login: str | None) -> dict | None:
    """A User or Bot (GitHub's GraphQL names bots without the "[bot]" suffix); null for a deleted account."""
    if login is None or login == rest.GHOST:
        return None
    person = ctx.ix.people.get(login)
    uid = rest.user_id(ctx.store, login)
    bot = login.endswith("[bot]") or (person is not None and person.bot)
    name = login.removesuffix("[bot]") if bot else login
    kind = "Bot" if bot else "User"
    return {"__typename": kind, "login": name, "id": rest.legacy_node_id(kind, uid), "databaseId": uid,
            "url": f"{ctx.base_url}/{'apps/' + name if bot else login}", "resourcePath": f"/{login}",
            "avatarUrl": f"{ctx.base_url}/avatars/u/{uid}?v=4",
            "name": person.name if person and not bot else None,
            "email": person.email if person and not bot else "", "_login": login}


def org_node(ctx: Ctx, org: str) -> dict:
    oid = rest.stable_id("org:" + org)
    return {"__typename": "Organization", "login": org, "id": rest.legacy_node_id("Organization", oid),
            "databaseId": oid, "name": org, "url": f"{ctx.base_url}/{org}", "resourcePath": f"/{org}",
            "avatarUrl": f"{ctx.base_url}/avatars/u/{oid}?v=4", "_org": org}


def team_node(ctx: Ctx, org: str, slug: str) -> dict:
    tid = rest.stable_id(f"team:{org}/{slug}")
    url, path = f"{ctx.base_url}/orgs/{org}/teams/{slug}", f"/orgs/{org}/teams/{slug}"
    created = iso(rest.org_created(ctx.store, org) + timedelta(days=30))
    return {"__typename": "Team", "id": rest.legacy_node_id("Team", tid), "databaseId": tid, "slug": slug,
            "combinedSlug": f"{org}/{slug}", "name": ctx.ix.team_names.get(slug, slug), "description": None,
            "privacy": "VISIBLE", "notificationSetting": "NOTIFICATIONS_ENABLED", "url": url, "resourcePath": path,
            "membersUrl": f"{url}/members", "membersResourcePath": f"{path}/members",
            "repositoriesUrl": f"{url}/repositories", "repositoriesResourcePath": f"{path}/repositories",
            "createdAt": created, "updatedAt": created, "viewerCanAdminister": False, "viewerCanSubscribe": True,
            "organization": org_node(ctx, org), "_org": org, "_slug": slug}


def repo_node(ctx: Ctx, repo: GhRepo) -> dict:
    pulls = ctx.ix.pulls.get(repo.full_name, ())
    updated = max((p.updated_at for p in pulls), default=repo.created_at)
    return {"__typename": "Repository", "id": repo.node_id, "databaseId": repo.id, "name": repo.name,
            "nameWithOwner": repo.full_name, "isArchived": repo.archived, "isPrivate": True,
            "isFork": False, "isDisabled": False, "isLocked": False, "visibility": "PRIVATE",
            "createdAt": iso(repo.created_at), "updatedAt": iso(updated), "pushedAt": iso(updated),
            "url": f"{ctx.base_url}/{repo.full_name}", "owner": org_node(ctx, repo.org),
            "_obj": repo}


def label_node(ctx: Ctx, repo_full: str, name: str) -> dict:
    lab = rest.render_label(repo_full, name, ctx.base_url)
    return {"__typename": "Label", "id": lab["node_id"], "name": name, "color": lab["color"],
            "description": None, "isDefault": False, "url": f"{ctx.base_url}/{repo_full}/labels/{name}"}


def item_node(ctx: Ctx, item: GhPull | GhIssue) -> dict:
    is_pull = isinstance(item, GhPull)
    url = f"{ctx.base_url}/{item.repo}/{'pull' if is_pull else 'issues'}/{item.number}"
    out = {"id": item.node_id, **db_ids(item.id), "number": item.number, "title": item.title,
           "url": url, "resourcePath": url.removeprefix(ctx.base_url), "createdAt": iso(item.created_at),
           "updatedAt": iso(item.updated_at), "closedAt": iso(item.closed_at), "closed": item.state == "closed",
           "author": actor(ctx, item.author), "body": "", "locked": False, "_obj": item}
    if is_pull:
        state = "MERGED" if item.merged_at else item.state.upper()
        return out | {"__typename": "PullRequest", "state": state, "isDraft": item.draft,
                      "mergedAt": iso(item.merged_at), "merged": item.merged_at is not None,
                      "mergedBy": actor(ctx, item.merged_by), "baseRefName": item.base_ref,
                      "headRefName": item.head_ref, "additions": 10 + item.id % 300,
                      "deletions": item.id % 120, "changedFiles": 1 + item.id % 12,
                      "permalink": url, "body": item.body}
    return out | {"__typename": "Issue", "state": item.state.upper(),
                  "stateReason": (item.state_reason or "").upper() or None}


def review_node(ctx: Ctx, pull: GhPull, e: GhEvent) -> dict:
    return {"__typename": "PullRequestReview", "id": new_node_id("PRR", e.id), **db_ids(e.id),
            "state": (e.review_state or "COMMENTED").upper(), "author": actor(ctx, e.actor),
            "body": e.review_body or "", "submittedAt": iso(e.created_at), "createdAt": iso(e.created_at),
            "publishedAt": iso(e.created_at), "updatedAt": iso(e.created_at),
            "url": f"{ctx.base_url}/{pull.repo}/pull/{pull.number}#pullrequestreview-{e.id}",
            "authorAssociation": rest.author_association(ctx.store, e.actor),
            "commit": later(ctx, lambda: commit_obj(ctx, pull, rest.review_commit(pull, e), e)), "_obj": pull}


def commit_obj(ctx: Ctx, item: GhPull | GhIssue, sha: str | None, e: GhEvent) -> dict | None:
    if sha is None:
        return None
    person = ctx.ix.people.get(e.actor)
    who = {"name": person.name if person else e.actor, "email": person.email if person else "",
           "date": iso(e.created_at), "user": actor(ctx, e.actor)}
    return {"__typename": "Commit", "id": new_node_id("C", int(sha[:12], 16)), "oid": sha,
            "abbreviatedOid": sha[:7], "message": f"Commit {sha[:7]}", "messageHeadline": f"Commit {sha[:7]}",
            "committedDate": iso(e.created_at), "authoredDate": iso(e.created_at), "author": who,
            "committer": who, "url": f"{ctx.base_url}/{item.repo}/commit/{sha}"}


def timeline_node(ctx: Ctx, item: GhPull | GhIssue, e: GhEvent) -> dict:
    typename, _ = TIMELINE.get(e.event, ("Unknown", ""))
    if e.event == "reviewed":
        return review_node(ctx, item, e)
    base = {"__typename": typename, "id": new_node_id(rest.EVENT_PREFIX.get(e.event, "E"), e.id),
            "createdAt": iso(e.created_at), "actor": actor(ctx, e.actor), **db_ids(e.id)}
    org = item.repo.split("/")[0]
    if e.event in ("review_requested", "review_request_removed"):
        reviewer = team_node(ctx, org, e.requested_team) if e.requested_team else actor(ctx, e.requested_reviewer)
        return base | {"requestedReviewer": reviewer, "pullRequest": later(ctx, lambda: item_node(ctx, item))}
    if e.event == "review_dismissed":
        review = next((x for x in item.events if x.event == "reviewed" and x.id == e.dismissed_review_id), None)
        return base | {"review": review_node(ctx, item, review) if review else None,
                       "previousReviewState": (e.dismissed_state or "APPROVED").upper(),
                       "dismissalMessage": None, "pullRequest": later(ctx, lambda: item_node(ctx, item))}
    if e.event in ("assigned", "unassigned"):
        return base | {"assignee": actor(ctx, e.assignee), "assignable": later(ctx, lambda: item_node(ctx, item))}
    if e.event in ("labeled", "unlabeled"):
        return base | {"label": label_node(ctx, item.repo, e.label or ""), "labelable": later(ctx, lambda: item_node(ctx, item))}
    if e.event == "merged":
        sha = e.commit_sha or rest.merge_sha(item)
        return base | {"commit": commit_obj(ctx, item, sha, e), "mergeRefName": item.base_ref,
                       "url": f"{ctx.base_url}/{item.repo}/pull/{item.number}#event-{e.id}",
                       "pullRequest": later(ctx, lambda: item_node(ctx, item))}
    if e.event in ("closed", "reopened"):
        reason = None if isinstance(item, GhPull) else ("COMPLETED" if e.event == "closed" else "REOPENED")
        if e.event == "closed" and isinstance(item, GhIssue) and item.state_reason:
            reason = item.state_reason.upper()
        return base | {"stateReason": reason, "closable": later(ctx, lambda: item_node(ctx, item)),
                       "url": f"{ctx.base_url}/{item.repo}/issues/{item.number}#event-{e.id}"}
    if e.event == "commented":
        return base | {"author": actor(ctx, e.actor), "body": e.review_body or "",
                       "updatedAt": iso(e.created_at), "publishedAt": iso(e.created_at),
                       "url": f"{ctx.base_url}/{item.repo}/pull/{item.number}#issuecomment-{e.id}",
                       "authorAssociation": rest.author_association(ctx.store, e.actor)}
    if e.event == "committed":
        sha = e.commit_sha or rest.fake_sha(item.repo, item.number, e.id)
        return {"__typename": "PullRequestCommit", "id": new_node_id("PURC", e.id),
                "commit": commit_obj(ctx, item, sha, e), "pullRequest": later(ctx, lambda: item_node(ctx, item)),
                "url": f"{ctx.base_url}/{item.repo}/pull/{item.number}/commits/{sha}",
                "resourcePath": f"/{item.repo}/pull/{item.number}/commits/{sha}"}
    return base | {"pullRequest": later(ctx, lambda: item_node(ctx, item)),
                   "url": f"{ctx.base_url}/{item.repo}/pull/{item.number}#event-{e.id}"}


# -- connections ---------------------------------------------------------------------------------
def cursor(key: Any) -> str:
    return base64.b64encode(("cursor:v2:" + json.dumps(key, separators=(",", ":"))).encode()).decode()


def uncursor(c: str, what: str) -> Any:
    try:
        raw = base64.b64decode(c.encode(), validate=True).decode()
        if not raw.startswith("cursor:v2:"):
            raise ValueError
        return json.loads(raw.removeprefix("cursor:v2:"))
    except ValueError as e:
        raise GraphQLError(f"`{c}` does not appear to be a valid cursor.") from e


def connection(items: list, key: Callable[[Any], list], render: Callable[[Any], dict], args: dict,
               descending: bool = False) -> dict:
    """A GitHub connection over `items` (already in order); keyset cursors survive inserts."""
    keys = [key(x) for x in items]
    start, end = 0, len(items)
    before_after = lambda k, ck: (k < ck) if descending else (k > ck)
    if args.get("after"):
        ck = uncursor(args["after"], "after")
        start = next((i for i, k in enumerate(keys) if before_after(k, ck)), len(items))
    if args.get("before"):
        ck = uncursor(args["before"], "before")
        end = next((i for i, k in enumerate(keys) if k == ck or before_after(k, ck)), len(items))
    start = min(start + int(args.get("skip") or 0), end)
    first, last = args.get("first"), args.get("last")
    lo, hi = start, end
    if first is not None:
        hi = min(hi, lo + first)
    if last is not None:
        lo = max(lo, hi - last)
    chunk = list(range(lo, hi))
    nodes = [render(items[i]) for i in chunk]
    edges = [{"cursor": cursor(keys[i]), "node": n} for i, n in zip(chunk, nodes)]
    return {"totalCount": len(items), "nodes": nodes, "edges": edges,
            "pageInfo": {"hasNextPage": hi < end, "hasPreviousPage": lo > start,
                         "startCursor": edges[0]["cursor"] if edges else None,
                         "endCursor": edges[-1]["cursor"] if edges else None}}


def ordered(items: list, order: dict | None, default_field: str = "CREATED_AT") -> tuple[list, Callable, bool]:
    field = (order or {}).get("field") or default_field
    desc = ((order or {}).get("direction") or "ASC") == "DESC"
    attr = {"CREATED_AT": "created_at", "UPDATED_AT": "updated_at", "COMMENTS": None}.get(field, "created_at")

    def key(x: Any) -> list:
        if attr is None:
            return [sum(1 for e in x.events if e.event == "commented"), x.number]
        return [iso(getattr(x, attr)), x.number]

    return sorted(items, key=key, reverse=desc), key, desc


# -- resolvers -----------------------------------------------------------------------------------
def _attach(s: GraphQLSchema) -> None:
    def field(type_name: str, name: str, fn: Callable) -> None:
        s.get_type(type_name).fields[name].resolve = fn

    def q_repository(_, info, owner: str, name: str, followRenames: bool = True):
        ctx: Ctx = info.context
        repo = ctx.ix.repos.get(f"{owner}/{name}") or next(
            (r for r in ctx.store.github_repos if r.full_name.lower() == f"{owner}/{name}".lower()), None)
        if repo is None and followRenames:  # a former name (renamed, transferred) resolves to the repository
            repo = rest.moved_repo(ctx.store, f"{owner}/{name}")
        if repo is None:
            raise NotFound(f"Could not resolve to a Repository with the name '{owner}/{name}'.")
        return repo_node(ctx, repo)

    def q_organization(_, info, login: str):
        ctx: Ctx = info.context
        if login not in ctx.store.github_orgs:
            raise NotFound(f"Could not resolve to an Organization with the login of '{login}'.")
        return org_node(ctx, login)

    def q_user(_, info, login: str):
        ctx: Ctx = info.context
        if login not in ctx.ix.people:
            raise NotFound(f"Could not resolve to a User with the login of '{login}'.")
        return actor(ctx, login)

    def q_viewer(_, info):
        return actor(info.context, info.context.store.github_user_login)

    def resolve_node(ctx: Ctx, node_id: str) -> dict | None:
        obj = ctx.ix.nodes.get(node_id)
        if isinstance(obj, GhRepo):
            return repo_node(ctx, obj)
        if obj is not None:
            return item_node(ctx, obj)
        return None

    def q_node(_, info, id: str):
        found = resolve_node(info.context, id)
        if found is None:
            raise NotFound(f"Could not resolve to a node with the global id of '{id}'")
        return found

    def q_nodes(_, info, ids: list[str]):
        return [resolve_node(info.context, i) for i in ids]

    def q_rate_limit(_, info, dryRun: bool = False):
        ctx: Ctx = info.context
        limit = rest.limit_for(ctx.app, "graphql")
        used, remaining, reset = ctx.app.github_rates.state(ctx.token, "graphql", limit)
        return {"cost": info.context.cost, "limit": limit, "remaining": remaining, "used": used,
                "resetAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reset)),
                "nodeCount": info.context.node_count}

    def q_search(_, info, query: str, type: str, **args):
        ctx: Ctx = info.context
        if type != "ISSUE":
            raise GraphQLError(f"The sandbox searches type ISSUE only, not {type}.")
        items, key, desc, count = search_issues(ctx, query)
        conn = connection(items, key, lambda x: item_node(ctx, x), args, desc)
        return conn | {"issueCount": count, "codeCount": 0, "discussionCount": 0, "repositoryCount": 0,
                       "userCount": 0, "wikiCount": 0}

    field("Query", "search", q_search)
    field("Query", "repository", q_repository)
    field("Query", "organization", q_organization)
    field("Query", "user", q_user)
    field("Query", "viewer", q_viewer)
    field("Query", "node", q_node)
    field("Query", "nodes", q_nodes)
    field("Query", "rateLimit", q_rate_limit)

    def user_organizations(obj, info, **args):
        ctx: Ctx = info.context
        orgs = list(ctx.store.github_orgs) if obj.get("_login") == ctx.store.github_user_login else []
        return connection(orgs, lambda o: [o], lambda o: org_node(ctx, o), args)

    def org_repositories(obj, info, **args):
        ctx: Ctx = info.context
        repos = [r for r in ctx.store.github_repos if r.org == obj["_org"]]
        if args.get("isArchived") is not None:
            repos = [r for r in repos if r.archived == args["isArchived"]]
        order = args.get("orderBy") or {}
        fld, desc = order.get("field", "CREATED_AT"), order.get("direction", "ASC") == "DESC"
        key = (lambda r: [r.name.lower(), r.id]) if fld == "NAME" else (lambda r: [iso(r.created_at), r.id])
        repos.sort(key=key, reverse=desc)
        return connection(repos, key, lambda r: repo_node(ctx, r), args, desc)

    def org_teams(obj, info, **args):
        ctx: Ctx = info.context
        org = obj["_org"]
        slugs = sorted(ctx.ix.team_slugs.get(org, set()))
        if args.get("query"):
            q = args["query"].lower()
            slugs = [t for t in slugs if q in t or q in ctx.ix.team_names.get(t, t).lower()]
        if args.get("userLogins"):
            want = set(args["userLogins"])
            slugs = [t for t in slugs if want & set(rest.team_members(ctx.store, org, t))]
        order = args.get("orderBy") or {}
        desc = order.get("direction") == "DESC"
        key = lambda t: [ctx.ix.team_names.get(t, t).lower(), t]
        slugs.sort(key=key, reverse=desc)
        return connection(slugs, key, lambda t: team_node(ctx, org, t), args, desc)

    def org_team(obj, info, slug: str):
        ctx: Ctx = info.context
        return team_node(ctx, obj["_org"], slug) if slug in ctx.ix.team_slugs.get(obj["_org"], set()) else None

    def team_members(obj, info, **args):
        ctx: Ctx = info.context
        org, slug = obj["_org"], obj["_slug"]
        maintainers = rest.team_maintainers(ctx.store, org, slug)
        logins = rest.team_members(ctx.store, org, slug)
        if args.get("role"):
            logins = [u for u in logins if (u in maintainers) == (args["role"] == "MAINTAINER")]
        if args.get("query"):
            q = args["query"].lower()
            logins = [u for u in logins if q in u or q in (ctx.ix.people[u].name.lower() if u in ctx.ix.people else "")]
        conn = connection(logins, lambda u: [u], lambda u: actor(ctx, u), args)
        for edge in conn["edges"]:
            login = edge["node"]["_login"]
            edge |= {"role": "MAINTAINER" if login in maintainers else "MEMBER",
                     "memberAccessUrl": f"{obj['url']}/members", "memberAccessResourcePath": f"{obj['resourcePath']}/members"}
        return conn

    field("User", "organizations", user_organizations)
    field("Organization", "teams", org_teams)
    field("Organization", "team", org_team)
    field("Team", "members", team_members)
    field("Organization", "repositories", org_repositories)

    def repo_pulls(obj, info, **args):
        ctx: Ctx = info.context
        items = ctx.ix.pulls.get(obj["_obj"].full_name, [])
        if args.get("states"):
            want = set(args["states"])
            items = [p for p in items if ("MERGED" if p.merged_at else p.state.upper()) in want]
        if args.get("labels"):
            items = [p for p in items if set(p.labels) & set(args["labels"])]
        if args.get("baseRefName"):
            items = [p for p in items if p.base_ref == args["baseRefName"]]
        if args.get("headRefName"):
            items = [p for p in items if p.head_ref == args["headRefName"]]
        items, key, desc = ordered(items, args.get("orderBy"))
        return connection(items, key, lambda p: item_node(ctx, p), args, desc)

    def repo_issues(obj, info, **args):
        ctx: Ctx = info.context
        items = ctx.ix.issues.get(obj["_obj"].full_name, [])
        fb = args.get("filterBy") or {}
        states = args.get("states") or fb.get("states")
        if states:
            items = [i for i in items if i.state.upper() in set(states)]
        labels = args.get("labels") or fb.get("labels")
        if labels:
            items = [i for i in items if set(i.labels) & set(labels)]
        if fb.get("since"):
            since = rest.parse_iso(fb["since"])
            items = [i for i in items if i.updated_at >= since]
        items, key, desc = ordered(items, args.get("orderBy"))
        return connection(items, key, lambda i: item_node(ctx, i), args, desc)

    def repo_item(kind: type) -> Callable:
        def resolve(obj, info, number: int):
            ctx: Ctx = info.context
            item = ctx.ix.items.get((obj["_obj"].full_name, number))
            if not isinstance(item, kind):
                raise NotFound(f"Could not resolve to a {kind.__name__.removeprefix('Gh')} with the number "
                               f"of {number}.")
            return item_node(ctx, item)
        return resolve

    field("Repository", "pullRequests", repo_pulls)
    field("Repository", "issues", repo_issues)
    field("Repository", "pullRequest", repo_item(GhPull))
    field("Repository", "issue", repo_item(GhIssue))

    def timeline_items(obj, info, **args):
        ctx: Ctx = info.context
        item = obj["_obj"]
        indexed = list(enumerate(item.events))
        indexed = [(i, e) for i, e in indexed if e.event in TIMELINE]
        if args.get("itemTypes"):
            want = set(args["itemTypes"])
            indexed = [(i, e) for i, e in indexed if TIMELINE[e.event][1] in want]
        if args.get("since"):
            since = rest.parse_iso(args["since"])
            indexed = [(i, e) for i, e in indexed if e.created_at >= since]
        conn = connection(indexed, lambda t: [t[0]], lambda t: timeline_node(ctx, item, t[1]), args)
        conn["filteredCount"] = conn["totalCount"]
        conn["pageCount"] = len(conn["nodes"])
        conn["updatedAt"] = iso(item.updated_at)
        return conn

    def labels(obj, info, **args):
        ctx: Ctx = info.context
        item = obj["_obj"]
        return connection(list(item.labels), lambda n: [n], lambda n: label_node(ctx, item.repo, n), args)

    def assignees(obj, info, **args):
        ctx: Ctx = info.context
        return connection(list(obj["_obj"].assignees), lambda n: [n], lambda n: actor(ctx, n), args)

    def review_requests(obj, info, **args):
        ctx: Ctx = info.context
        pull = obj["_obj"]
        users, teams = rest.pending_requests(ctx.store, pull)
        org = pull.repo.split("/")[0]
        reqs = [("u", u) for u in users] + [("t", t) for t in teams]

        def render(r: tuple[str, str]) -> dict:
            reviewer = actor(ctx, r[1]) if r[0] == "u" else team_node(ctx, org, r[1])
            return {"__typename": "ReviewRequest", "id": new_node_id("RR", rest.stable_id(f"{pull.id}:{r}")),
                    "requestedReviewer": reviewer, "asCodeOwner": False, "pullRequest": item_node(ctx, pull)}
        return connection(reqs, lambda r: list(r), render, args)

    def reviews(obj, info, **args):
        ctx: Ctx = info.context
        pull = obj["_obj"]
        items = [e for e in pull.events if e.event == "reviewed"]
        if args.get("states"):
            items = [e for e in items if (e.review_state or "COMMENTED").upper() in set(args["states"])]
        if args.get("author"):
            items = [e for e in items if e.actor == args["author"]]
        return connection(items, lambda e: [e.id], lambda e: review_node(ctx, pull, e), args)

    def item_repository(obj, info):
        ctx: Ctx = info.context
        return repo_node(ctx, ctx.ix.repos[obj["_obj"].repo])

    for t in ("PullRequest", "Issue"):
        field(t, "timelineItems", timeline_items)
        field(t, "labels", labels)
        field(t, "assignees", assignees)
        field(t, "repository", item_repository)
    field("PullRequest", "reviewRequests", review_requests)
    field("PullRequest", "reviews", reviews)
    field("PullRequestReview", "pullRequest", lambda obj, info: item_node(info.context, obj["_obj"]))


# -- search ------------------------------------------------------------------------------------
SEARCH_MAX_RESULTS = 1000
SEARCH_MAX_CHARS = 256
_SORTS = {"updated": "updated_at", "created": "created_at"}


def search_issues(ctx: Ctx, query: str) -> tuple[list, Callable, bool, int]:
    """GitHub's issue search over the store: `repo:`, `org:`, `is:pr`/`is:issue`, `updated:`/`created:`
    with >=, >, <=, < (ISO date or instant), `sort:updated-desc` etc.; other words must be in the title.
    Without sort: newest created first (GitHub's best match has no sandbox meaning). At most 1,000 results
    are served; `issueCount` counts them all."""
    if len(query) > SEARCH_MAX_CHARS:
        raise GraphQLError(f"The search is longer than {SEARCH_MAX_CHARS} characters.")
    repos: set[str] = set()
    orgs: set[str] = set()
    kinds: set[str] = set()
    bounds: list[tuple[str, str, Any]] = []
    words: list[str] = []
    sort, desc = "created_at", True
    for token in query.split():
        name, sep, value = token.partition(":")
        name = name.lower()
        if not sep or not value:
            words.append(token.lower())
        elif name == "repo":
            repos.add(value.lower())
        elif name in ("org", "user"):
            orgs.add(value.lower())
        elif name == "is" and value.lower() in ("pr", "issue"):
            kinds.add(value.lower())
        elif name in _SORTS or name == "sort":
            if name == "sort":
                fld, _, direction = value.lower().partition("-")
                if fld not in _SORTS or direction not in ("", "asc", "desc"):
                    raise GraphQLError(f"The sandbox cannot sort by {value!r}.")
                sort, desc = _SORTS[fld], direction != "asc"
                continue
            op = next((o for o in (">=", "<=", ">", "<") if value.startswith(o)), "=")
            raw = value[len(op):] if op != "=" else value
            try:
                when = rest.parse_iso(raw if "T" in raw else raw + "T00:00:00Z")
                when = when if when.tzinfo else when.replace(tzinfo=UTC)
            except ValueError:
                raise GraphQLError(f"The sandbox cannot read the date in {token!r}.") from None
            bounds.append((_SORTS[name], op, when))
        else:
            raise GraphQLError(f"The sandbox does not support the search qualifier {name}:.")
    known = {r.lower() for r in ctx.ix.repos}
    missing = sorted(r for r in repos if r not in known)
    if missing or any(o not in {x.lower() for x in ctx.store.github_orgs} for o in orgs):
        raise GraphQLError("The listed users and repositories cannot be searched either because the resources "
                           "do not exist or you do not have permission to view them.")
    pool: list = []
    if "issue" not in kinds or "pr" in kinds:
        pool += ctx.store.github_pulls
    if "pr" not in kinds or "issue" in kinds:
        pool += ctx.store.github_issues
    ops = {">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b}

    def keep(x: Any) -> bool:
        if (repos or orgs) and x.repo.lower() not in repos and x.repo.split("/")[0].lower() not in orgs:
            return False
        for attr, op, when in bounds:
            value = getattr(x, attr)
            if op == "=" and value.date() != when.date() or op != "=" and not ops[op](value, when):
                return False
        return all(w in x.title.lower() for w in words)

    found = [x for x in pool if keep(x)]
    key = lambda x: [iso(getattr(x, sort)), x.id]
    found.sort(key=key, reverse=desc)
    return found[:SEARCH_MAX_RESULTS], key, desc, len(found)


# -- cost ----------------------------------------------------------------------------------------
class CostError(Exception):
    def __init__(self, kind: str, message: str, node: Any, path: list[str]) -> None:
        super().__init__(message)
        self.kind, self.message, self.node, self.path = kind, message, node, path


def query_cost(s: GraphQLSchema, doc: Any, op: OperationDefinitionNode, variables: dict) -> tuple[int, int]:
    """(cost, node count) as GitHub computes them: connections need first/last (1..100); every
    connection costs one request per possible parent; the sum over 100, rounded, at least 1."""
    fragments = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}
    totals = {"requests": 0, "nodes": 0}

    def arg_value(node: Any) -> Any:
        if isinstance(node, VariableNode):
            return variables.get(node.name.value)
        return value_from_ast_untyped(node, variables)

    def walk(selection_set: Any, parent: Any, mult: int, path: list[str], seen: tuple) -> None:
        for sel in selection_set.selections if selection_set else ():
            if isinstance(sel, FragmentSpreadNode):
                frag = fragments.get(sel.name.value)
                if frag and sel.name.value not in seen:
                    walk(frag.selection_set, s.get_type(frag.type_condition.name.value), mult, path,
                         seen + (sel.name.value,))
                continue
            if isinstance(sel, InlineFragmentNode):
                cond = s.get_type(sel.type_condition.name.value) if sel.type_condition else parent
                walk(sel.selection_set, cond, mult, path, seen)
                continue
            if not isinstance(sel, FieldNode) or sel.name.value.startswith("__"):
                continue
            fields = getattr(parent, "fields", {}) if parent is not None else {}
            fdef = fields.get(sel.name.value)
            if fdef is None:
                continue
            named = get_named_type(fdef.type)
            here = path + [sel.alias.value if sel.alias else sel.name.value]
            child_mult = mult
            if named.name.endswith("Connection"):
                args = {a.name.value: arg_value(a.value) for a in sel.arguments or ()}
                size = args.get("first") if args.get("first") is not None else args.get("last")
                if size is None:
                    raise CostError("MISSING_PAGINATION_BOUNDARIES", "You must provide a `first` or `last` value "
                                    f"to properly paginate the `{sel.name.value}` connection.", sel, here)
                which = "first" if args.get("first") is not None else "last"
                if size > 100 or size < 0:
                    raise CostError("EXCESSIVE_PAGINATION", f"Requesting {size} records on the "
                                    f"`{sel.name.value}` connection exceeds the `{which}` limit of 100 records.",
                                    sel, here)
                totals["requests"] += mult
                child_mult = mult * max(size, 1)
                totals["nodes"] += child_mult
            walk(sel.selection_set, named, child_mult, here, seen)

    walk(op.selection_set, s.query_type if op.operation.value == "query" else s.mutation_type, 1,
         [op.operation.value], ())
    return max(1, round(totals["requests"] / 100)), totals["nodes"]


# -- the endpoint --------------------------------------------------------------------------------
_FIELD_MISSING = "Cannot query field '"


def github_error(err: GraphQLError) -> dict:
    """graphql-core's error in GitHub's words where the two differ."""
    out: dict[str, Any] = {}
    msg = err.message
    if msg.startswith(_FIELD_MISSING) and " on type '" in msg:
        name = msg[len(_FIELD_MISSING):].split("'", 1)[0]
        type_name = msg.split(" on type '", 1)[1].split("'", 1)[0]
        msg = f"Field '{name}' doesn't exist on type '{type_name}'"
        out["extensions"] = {"code": "undefinedField", "typeName": type_name, "fieldName": name}
    if isinstance(err.original_error, NotFound):
        out["type"] = "NOT_FOUND"
    if err.path:
        out["path"] = list(err.path)
    if err.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in err.locations]
    out["message"] = msg
    return out


def register(app: AppView) -> None:
    """Add `POST /api/graphql`; the schema is built in the background now, so the first query is fast."""
    threading.Thread(target=schema, name="github-graphql-schema", daemon=True).start()

    def endpoint(req: Request) -> Response:
        token = rest.token_of(req)
        if token != GITHUB_TOKEN:
            r = json_response({"message": "Bad credentials", "documentation_url": f"{rest.DOCS}/graphql",
                               "status": "401"}, 401)
            r.headers |= rest.common_headers() | rest.rate_headers_anon(app)
            return r
        limit = rest.limit_for(app, "graphql")

        def reply(obj: dict, status: int = 200) -> Response:
            r = json_response(obj, status)
            r.headers |= rest.common_headers() | rest.rate_headers(app, token, "graphql")
            return r

        try:
            body = req.json()
        except ValueError:
            return reply({"message": "Problems parsing JSON", "documentation_url": f"{rest.DOCS}/graphql"}, 400)
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return reply({"errors": [{"message": "A query attribute must be specified and must be a string."}]})
        variables = body.get("variables") or {}
        s = schema()
        try:
            doc = parse(body["query"])
        except GraphQLError as e:
            return reply({"errors": [github_error(e)]})
        errors = validate(s, doc)
        if errors:
            return reply({"errors": [github_error(e) for e in errors]})
        ops = [d for d in doc.definitions if isinstance(d, OperationDefinitionNode)]
        name = body.get("operationName")
        op = next((o for o in ops if o.name and o.name.value == name), None) if name else (
            ops[0] if len(ops) == 1 else None)
        if op is None:
            return reply({"errors": [{"message": "An operation name is required" if not name
                                      else f'No operation named "{name}"'}]})
        if op.operation.value != "query":
            return reply({"errors": [{"message": "The sandbox serves queries only; mutations are not supported."}]})
        try:
            cost, nodes = query_cost(s, doc, op, variables)
        except CostError as e:
            return reply({"errors": [{"type": e.kind, "path": e.path, "locations": [
                {"line": e.node.loc.source.get_location(e.node.loc.start).line,
                 "column": e.node.loc.source.get_location(e.node.loc.start).column}] if e.node.loc else [],
                "message": e.message}]})
        if nodes > MAX_NODES:
            return reply({"errors": [{"type": "MAX_NODE_LIMIT_EXCEEDED", "path": [op.operation.value],
                                      "message": f"This query requests up to {nodes:,} possible nodes which "
                                                 f"exceeds the maximum allowed of {MAX_NODES:,}."}]})
        _, remaining, _ = app.github_rates.state(token, "graphql", limit)
        if remaining < cost:
            uid = rest.user_id(app.store, app.store.github_user_login)
            return reply({"errors": [{"type": "RATE_LIMITED",
                                      "message": f"API rate limit exceeded for user ID {uid}."}]})
        app.github_rates.charge(token, "graphql", limit, cost)
        ctx = Ctx(app, req.base_url, token)
        ctx.cost, ctx.node_count, ctx.lazy = cost, nodes, True
        result = execute(s, doc, operation_name=name, variable_values=variables, context_value=ctx)
        out: dict[str, Any] = {}
        if result.errors:
            out["errors"] = [github_error(e) for e in result.errors]
        out["data"] = result.data
        return reply(out)

    app.router.add("POST", r"/api/graphql", "github.graphql", endpoint)
