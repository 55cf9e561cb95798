"""GitHub GraphQL: the queries the connector sends, and the mapping of their nodes to REST shapes.

The landing streams are REST-shaped (what `GET /repos/{o}/{r}/pulls` and the issue timeline return),
so both API modes load into the same tables. `map_pull`, `map_issue`, `map_timeline_item`, `map_user`
and `map_repository` are that mapping; README_github.md lists the field correspondences.
"""

from __future__ import annotations

import base64
from typing import Any

# The REST timeline event names the warehouse reads (GraphQL asks for exactly these item types).
from landing_format import TIMELINE_EVENTS  # noqa: F401 - re-exported

PR_ITEM_TYPES = ("PULL_REQUEST_REVIEW", "REVIEW_REQUESTED_EVENT", "REVIEW_REQUEST_REMOVED_EVENT",
                 "REVIEW_DISMISSED_EVENT", "READY_FOR_REVIEW_EVENT", "CONVERT_TO_DRAFT_EVENT", "ASSIGNED_EVENT",
                 "UNASSIGNED_EVENT", "LABELED_EVENT", "UNLABELED_EVENT", "MERGED_EVENT", "CLOSED_EVENT",
                 "REOPENED_EVENT")
ISSUE_ITEM_TYPES = ("ASSIGNED_EVENT", "UNASSIGNED_EVENT", "LABELED_EVENT", "UNLABELED_EVENT", "CLOSED_EVENT",
                    "REOPENED_EVENT")
# GitHub's documented timeline event types the warehouse never reads: not landed (comments, commits,
# references are most of a timeline). Any other type, one GitHub adds later included, is landed as it
# came, so that nothing new is dropped unseen (a data-quality check counts the types it does not know).
UNUSED_EVENTS = frozenset({
    "commented", "committed", "mentioned", "subscribed", "unsubscribed", "referenced", "cross-referenced",
    "line-commented", "commit-commented", "comment_deleted", "head_ref_deleted", "head_ref_restored",
    "head_ref_force_pushed", "base_ref_changed", "base_ref_force_pushed", "base_ref_deleted", "renamed",
    "locked", "unlocked", "milestoned", "demilestoned", "pinned", "unpinned", "transferred", "connected",
    "disconnected", "marked_as_duplicate", "unmarked_as_duplicate", "deployed", "deployment_environment_changed",
    "auto_merge_enabled", "auto_merge_disabled", "auto_squash_enabled", "auto_rebase_enabled",
    "automatic_base_change_succeeded", "automatic_base_change_failed", "added_to_merge_queue",
    "removed_from_merge_queue", "added_to_project", "moved_columns_in_project", "removed_from_project",
    "converted_note_to_issue", "added_to_project_v2", "removed_from_project_v2", "project_v2_item_status_changed",
    "converted_to_discussion", "user_blocked", "issue_type_added", "issue_type_changed", "issue_type_removed",
    "sub_issue_added", "sub_issue_removed", "parent_issue_added", "parent_issue_removed",
})

_ACTOR = """
fragment ActorF on Actor {
  __typename login url
  ... on User { id databaseId }
  ... on Bot { id databaseId }
  ... on Mannequin { id databaseId }
  ... on Organization { id databaseId }
}
fragment ReviewerF on RequestedReviewer {
  __typename
  ... on User { id databaseId login url }
  ... on Bot { id databaseId login url }
  ... on Mannequin { id databaseId login url }
  ... on Team { id databaseId slug name url }
}
fragment AssigneeF on Assignee {
  __typename
  ... on User { id databaseId login url }
  ... on Bot { id databaseId login url }
  ... on Mannequin { id databaseId login url }
  ... on Organization { id databaseId login url }
}
"""

_PR_ITEM = """
fragment PrItemF on PullRequestTimelineItems {
  __typename
  ... on PullRequestReview {
    id fullDatabaseId author { ...ActorF } body state submittedAt createdAt authorAssociation
    commit { oid }
  }
  ... on ReviewRequestedEvent { id createdAt actor { ...ActorF } requestedReviewer { ...ReviewerF } }
  ... on ReviewRequestRemovedEvent { id createdAt actor { ...ActorF } requestedReviewer { ...ReviewerF } }
  ... on ReviewDismissedEvent {
    id createdAt actor { ...ActorF } previousReviewState dismissalMessage
    review { id fullDatabaseId } pullRequestCommit { commit { oid } }
  }
  ... on ReadyForReviewEvent { id createdAt actor { ...ActorF } }
  ... on ConvertToDraftEvent { id createdAt actor { ...ActorF } }
  ... on AssignedEvent { id createdAt actor { ...ActorF } assignee { ...AssigneeF } }
  ... on UnassignedEvent { id createdAt actor { ...ActorF } assignee { ...AssigneeF } }
  ... on LabeledEvent { id createdAt actor { ...ActorF } label { name color } }
  ... on UnlabeledEvent { id createdAt actor { ...ActorF } label { name color } }
  ... on MergedEvent { id createdAt actor { ...ActorF } commit { oid } }
  ... on ClosedEvent { id createdAt actor { ...ActorF } stateReason }
  ... on ReopenedEvent { id createdAt actor { ...ActorF } }
}
"""

_ISSUE_ITEM = """
fragment IssueItemF on IssueTimelineItems {
  __typename
  ... on AssignedEvent { id createdAt actor { ...ActorF } assignee { ...AssigneeF } }
  ... on UnassignedEvent { id createdAt actor { ...ActorF } assignee { ...AssigneeF } }
  ... on LabeledEvent { id createdAt actor { ...ActorF } label { name color } }
  ... on UnlabeledEvent { id createdAt actor { ...ActorF } label { name color } }
  ... on ClosedEvent { id createdAt actor { ...ActorF } stateReason }
  ... on ReopenedEvent { id createdAt actor { ...ActorF } }
}
"""

_PR_TYPES = ", ".join(PR_ITEM_TYPES)
_ISSUE_TYPES = ", ".join(ISSUE_ITEM_TYPES)

_ITEMS = """
fragment PullF on PullRequest {
  id fullDatabaseId number title url state isDraft locked merged
  createdAt updatedAt closedAt mergedAt headRefName baseRefName body
  author { ...ActorF }
  mergedBy { ...ActorF }
  assignees(first: 20) { nodes { id databaseId login url } }
  labels(first: 30) { nodes { name color } }
  reviewRequests(first: 20) { nodes { requestedReviewer { ...ReviewerF } } }
  timelineItems(first: $tlFirst, itemTypes: [PR_TYPES]) {
    pageInfo { hasNextPage endCursor }
    nodes { ...PrItemF }
  }
}
fragment IssueF on Issue {
  id fullDatabaseId number title url state stateReason locked createdAt updatedAt closedAt
  author { ...ActorF }
  assignees(first: 20) { nodes { id databaseId login url } }
  labels(first: 30) { nodes { name color } }
  timelineItems(first: $tlFirst, itemTypes: [ISSUE_TYPES]) {
    pageInfo { hasNextPage endCursor }
    nodes { ...IssueItemF }
  }
}
""".replace("PR_TYPES", _PR_TYPES).replace("ISSUE_TYPES", _ISSUE_TYPES)
# In a search, PullRequest and Issue share one selection: fields of the same name must agree in type and
# arguments, so the issue's `state` and `timelineItems` are aliased (unaliased by `unalias_issue`).
_SEARCH_ISSUE = _ITEMS.split("fragment IssueF on Issue")[1].replace(" state ", " issueState: state ", 1).replace(
    "timelineItems(", "issueTimeline: timelineItems(", 1)
_SEARCH_ITEMS = _ITEMS.split("fragment IssueF on Issue")[0] + "fragment SearchIssueF on Issue" + _SEARCH_ISSUE

_REPO = """
fragment RepoF on Repository {
  id databaseId name nameWithOwner url isArchived isPrivate isFork createdAt updatedAt pushedAt
  owner { __typename login id url }
  defaultBranchRef { name }
}
"""

REPO_PAGE = """
query RepoPage($owner: String!, $name: String!, $withPulls: Boolean!, $prFirst: Int!, $prAfter: String,
               $withIssues: Boolean!, $issueFirst: Int!, $issueAfter: String, $since: DateTime,
               $tlFirst: Int!) {
  rateLimit { cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    ...RepoF
    pullRequests(first: $prFirst, after: $prAfter, orderBy: {field: UPDATED_AT, direction: DESC})
        @include(if: $withPulls) {
      pageInfo { hasNextPage endCursor }
      nodes {
        ...PullF
      }
    }
    issues(first: $issueFirst, after: $issueAfter, orderBy: {field: UPDATED_AT, direction: DESC},
           filterBy: {since: $since}) @include(if: $withIssues) {
      pageInfo { hasNextPage endCursor }
      nodes {
        ...IssueF
      }
    }
  }
}
""" + _ITEMS + _REPO + _ACTOR + _PR_ITEM + _ISSUE_ITEM

SEARCH_MAX_RESULTS = 1000  # GitHub's search serves at most this many results per query
SEARCH_MAX_CHARS = 256  # and refuses longer query strings


def search_query(n_repos: int = 0, with_search: bool = True) -> str:
    """Pull requests and issues of many repositories in one `search(type: ISSUE)` page, with their
    timelines; plus the repository objects of `n_repos` repositories (aliases r0..r{n-1})."""
    params = ["$tlFirst: Int!"] if with_search else []
    if with_search:
        params += ["$q: String!", "$first: Int!", "$after: String"]
    params += [f"$o{i}: String!, $n{i}: String!" for i in range(n_repos)]
    repos = "\n".join(f"  r{i}: repository(owner: $o{i}, name: $n{i}) {{ ...RepoF }}" for i in range(n_repos))
    search = """
  search(type: ISSUE, query: $q, first: $first, after: $after) {
    issueCount
    pageInfo { hasNextPage endCursor }
    nodes {
      __typename
      ... on PullRequest { ...PullF repository { nameWithOwner } }
      ... on Issue { ...SearchIssueF repository { nameWithOwner } }
    }
  }""" if with_search else ""
    frags = (_SEARCH_ITEMS + _ACTOR + _PR_ITEM + _ISSUE_ITEM) if with_search else ""
    return (f"query SearchPage({', '.join(params)}) {{\n  rateLimit {{ cost remaining resetAt }}{search}\n{repos}\n}}\n"
            + frags + (_REPO if n_repos else ""))

VIEWER_ORGS = """
query ViewerOrgs($after: String) {
  rateLimit { cost remaining resetAt }
  viewer {
    login
    organizations(first: 100, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {
        login
        repositories(first: 100) {
          pageInfo { hasNextPage endCursor }
          nodes { nameWithOwner isArchived }
        }
      }
    }
  }
}
"""

ORG_REPOS = """
query OrgRepos($login: String!, $after: String) {
  rateLimit { cost remaining resetAt }
  organization(login: $login) {
    login
    repositories(first: 100, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { nameWithOwner isArchived }
    }
  }
}
"""

# An organisation's teams with their first members (name and email: what an identity join reads), then a
# team's further members.
ORG_TEAMS = """
query OrgTeams($login: String!, $after: String) {
  rateLimit { cost remaining resetAt }
  organization(login: $login) {
    teams(first: 50, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {
        slug name
        members(first: 100) { pageInfo { hasNextPage endCursor } nodes { login name email } }
      }
    }
  }
}
"""

TEAM_MEMBERS = """
query TeamMembers($login: String!, $slug: String!, $after: String) {
  rateLimit { cost remaining resetAt }
  organization(login: $login) {
    team(slug: $slug) {
      members(first: 100, after: $after) { pageInfo { hasNextPage endCursor } nodes { login name email } }
    }
  }
}
"""


def timelines_query(n: int) -> str:
    """A query completing the timelines of `n` pull requests or issues (aliases t0..t{n-1})."""
    params = ", ".join(f"$id{i}: ID!, $after{i}: String" for i in range(n))
    parts = []
    for i in range(n):
        parts.append(
            f"  t{i}: node(id: $id{i}) {{\n"
            f"    ... on PullRequest {{ timelineItems(first: $first, after: $after{i}, itemTypes: [{_PR_TYPES}]) "
            f"{{ pageInfo {{ hasNextPage endCursor }} nodes {{ ...PrItemF }} }} }}\n"
            f"    ... on Issue {{ issueTimeline: timelineItems(first: $first, after: $after{i}, "
            f"itemTypes: [{_ISSUE_TYPES}]) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ ...IssueItemF }} }} }}\n"
            f"  }}")
    body = "\n".join(parts)
    return (f"query Timelines($first: Int!, {params}) {{\n  rateLimit {{ cost remaining resetAt }}\n{body}\n}}\n"
            + _ACTOR + _PR_ITEM + _ISSUE_ITEM)


def unalias_issue(node: dict[str, Any]) -> dict[str, Any]:
    """A search result Issue with the field names of REPO_PAGE's issues."""
    out = dict(node)
    if "issueState" in out:
        out["state"] = out.pop("issueState")
    if "issueTimeline" in out:
        out["timelineItems"] = out.pop("issueTimeline")
    return out


# -- mapping GraphQL nodes to REST shapes -------------------------------------------------------------

def decode_database_id(node_id: str | None) -> int | None:
    """The REST id inside a GraphQL node id: new ids ("RRE_lAD...") end their msgpack array with it;
    legacy ids are base64 of "04:User1596871". GraphQL has no databaseId on most timeline events, and
    Int databaseIds overflow for reviews and events, so this is where their REST ids come from."""
    if not node_id:
        return None
    try:
        if "_" in node_id:
            raw = node_id.split("_", 1)[1]
            if len(raw) % 4 == 1:
                return None
            return _msgpack_last_int(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        text = base64.b64decode(node_id + "=" * (-len(node_id) % 4)).decode("ascii")
        digits = text[len(text.rstrip("0123456789")):]
        return int(digits) if digits and ":" in text else None
    except (ValueError, UnicodeDecodeError):
        return None


def _msgpack_last_int(data: bytes) -> int | None:
    if not data or not 0x90 <= data[0] <= 0x9F:
        return None
    pos, last = 1, None
    for _ in range(data[0] & 0x0F):
        b = data[pos]
        if b <= 0x7F:
            last, pos = b, pos + 1
        elif b in (0xCC, 0xCD, 0xCE, 0xCF):
            size = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}[b]
            last, pos = int.from_bytes(data[pos + 1:pos + 1 + size], "big"), pos + 1 + size
        elif b in (0xD0, 0xD1, 0xD2, 0xD3):
            size = {0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}[b]
            last, pos = int.from_bytes(data[pos + 1:pos + 1 + size], "big", signed=True), pos + 1 + size
        else:
            return None
    return last if pos == len(data) else None


def _db_id(node: dict[str, Any]) -> int | None:
    full = node.get("fullDatabaseId")
    if full not in (None, ""):
        return int(full)
    if node.get("databaseId") is not None:
        return int(node["databaseId"])
    return decode_database_id(node.get("id"))


def map_user(actor: dict[str, Any] | None) -> dict[str, Any] | None:
    """A GraphQL Actor/User/Bot as a REST user. GraphQL names bots without "[bot]"; REST with it."""
    if not actor:
        return None
    typename = actor.get("__typename") or "User"
    login = actor.get("login")
    kind = typename if typename in ("Bot", "Organization", "Mannequin") else "User"
    if kind == "Bot" and login and not login.endswith("[bot]"):
        login += "[bot]"
    return {"login": login, "id": _db_id(actor), "node_id": actor.get("id"), "type": kind,
            "html_url": actor.get("url")}


def map_team(team: dict[str, Any]) -> dict[str, Any]:
    return {"id": _db_id(team), "node_id": team.get("id"), "slug": team.get("slug"), "name": team.get("name"),
            "html_url": team.get("url")}


def _labels(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": lb["name"], "color": lb.get("color")} for lb in (node.get("labels") or {}).get("nodes") or []]


def _assignees(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [map_user({"__typename": "User", **a}) for a in (node.get("assignees") or {}).get("nodes") or []]


def map_pull(node: dict[str, Any], repo: str, api_url: str = "https://api.github.com") -> dict[str, Any]:
    """A GraphQL PullRequest as the REST pull object."""
    requested_users, requested_teams = [], []
    for rr in (node.get("reviewRequests") or {}).get("nodes") or []:
        reviewer = (rr or {}).get("requestedReviewer")
        if not reviewer:
            continue
        if reviewer.get("__typename") == "Team":
            requested_teams.append(map_team(reviewer))
        else:
            requested_users.append(map_user(reviewer))
    assignees = _assignees(node)
    state = (node.get("state") or "").lower()
    return {
        "url": f"{api_url}/repos/{repo}/pulls/{node['number']}", "id": _db_id(node), "node_id": node.get("id"),
        "html_url": node.get("url"), "number": node["number"], "state": "open" if state == "open" else "closed",
        "locked": node.get("locked"), "title": node.get("title"), "user": map_user(node.get("author")),
        "created_at": node.get("createdAt"), "updated_at": node.get("updatedAt"),
        "closed_at": node.get("closedAt"), "merged_at": node.get("mergedAt"),
        "assignee": assignees[0] if assignees else None, "assignees": assignees,
        "requested_reviewers": requested_users, "requested_teams": requested_teams, "labels": _labels(node),
        "draft": node.get("isDraft"), "head": {"ref": node.get("headRefName")}, "body": node.get("body") or None,
        "base": {"ref": node.get("baseRefName"), "repo": {"full_name": repo}},
        "merged": bool(node.get("merged")), "merged_by": map_user(node.get("mergedBy")),
    }


def map_issue(node: dict[str, Any], repo: str, api_url: str = "https://api.github.com") -> dict[str, Any]:
    """A GraphQL Issue as the REST issue object."""
    assignees = _assignees(node)
    return {
        "url": f"{api_url}/repos/{repo}/issues/{node['number']}", "id": _db_id(node), "node_id": node.get("id"),
        "html_url": node.get("url"), "number": node["number"], "title": node.get("title"),
        "user": map_user(node.get("author")), "state": (node.get("state") or "").lower(),
        "state_reason": (node.get("stateReason") or "").lower() or None, "locked": node.get("locked"),
        "labels": _labels(node), "assignee": assignees[0] if assignees else None, "assignees": assignees,
        "created_at": node.get("createdAt"), "updated_at": node.get("updatedAt"),
        "closed_at": node.get("closedAt"),
    }


_EVENT_NAMES = {
    "ReviewRequestedEvent": "review_requested", "ReviewRequestRemovedEvent": "review_request_removed",
    "ReviewDismissedEvent": "review_dismissed", "ReadyForReviewEvent": "ready_for_review",
    "ConvertToDraftEvent": "convert_to_draft", "AssignedEvent": "assigned", "UnassignedEvent": "unassigned",
    "LabeledEvent": "labeled", "UnlabeledEvent": "unlabeled", "MergedEvent": "merged", "ClosedEvent": "closed",
    "ReopenedEvent": "reopened",
}


# The GraphQL names of the unused types (REST "commented" is GraphQL's IssueComment, and so on).
_UNUSED_TYPENAMES = frozenset({"IssueComment", "PullRequestCommit", "PullRequestReviewThread",
                               "PullRequestCommitCommentThread"} | {
    "".join(w.title() for w in e.replace("-", "_").split("_")) + "Event" for e in UNUSED_EVENTS})


def _snake(typename: str) -> str:
    """"SomeNewEvent" -> "some_new" (how REST names GraphQL's event types)."""
    name = typename.removesuffix("Event")
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))


def map_timeline_item(item: dict[str, Any] | None) -> dict[str, Any] | None:
    """A GraphQL timeline item as the REST issue-timeline event; None for the unused types. A type this
    mapping does not know is passed on as `{"event": <its name in REST style>, "__typename", "node_id", "actor", "created_at"}`."""
    if not isinstance(item, dict):
        return None
    typename = item.get("__typename")
    if typename == "PullRequestReview":
        return {"id": _db_id(item), "node_id": item.get("id"), "event": "reviewed",
                "user": map_user(item.get("author")), "body": item.get("body") or "",
                "state": str(item["state"]).lower() if item.get("state") else None,
                "submitted_at": item.get("submittedAt"),
                "commit_id": (item.get("commit") or {}).get("oid"),
                "author_association": item.get("authorAssociation")}
    name = _EVENT_NAMES.get(typename or "")
    if name is None and typename in _UNUSED_TYPENAMES:
        return None
    if name is None:
        return {"id": _db_id(item), "node_id": item.get("id"), "event": _snake(str(typename or "Unknown")),
                "__typename": typename, "actor": map_user(item.get("actor")), "created_at": item.get("createdAt")}
    actor = map_user(item.get("actor"))
    event: dict[str, Any] = {"id": _db_id(item), "node_id": item.get("id"), "event": name, "actor": actor,
                             "created_at": item.get("createdAt")}
    if name in ("review_requested", "review_request_removed"):
        event["review_requester"] = actor
        reviewer = item.get("requestedReviewer")
        if reviewer and reviewer.get("__typename") == "Team":
            event["requested_team"] = map_team(reviewer)
        else:
            event["requested_reviewer"] = map_user(reviewer)
    elif name == "review_dismissed":
        review = item.get("review") or {}
        event["dismissed_review"] = {"state": (item.get("previousReviewState") or "").lower(),
                                     "review_id": _db_id(review) if review else None,
                                     "dismissal_message": item.get("dismissalMessage"),
                                     "dismissal_commit_id": ((item.get("pullRequestCommit") or {}).get("commit")
                                                             or {}).get("oid")}
    elif name in ("assigned", "unassigned"):
        event["assignee"] = map_user(item.get("assignee"))
    elif name in ("labeled", "unlabeled"):
        label = item.get("label") or {}
        event["label"] = {"name": label.get("name"), "color": label.get("color")}
    elif name == "merged":
        event["commit_id"] = (item.get("commit") or {}).get("oid")
    elif name == "closed":
        event["state_reason"] = (item.get("stateReason") or "").lower() or None
    return event


def map_repository(node: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL Repository as the REST repository object."""
    owner = node.get("owner") or {}
    return {
        "id": _db_id(node), "node_id": node.get("id"), "name": node.get("name"),
        "full_name": node.get("nameWithOwner"), "private": node.get("isPrivate"), "fork": node.get("isFork"),
        "archived": node.get("isArchived"), "html_url": node.get("url"),
        "owner": {"login": owner.get("login"), "node_id": owner.get("id"),
                  "type": "Organization" if owner.get("__typename") == "Organization" else "User"},
        "default_branch": (node.get("defaultBranchRef") or {}).get("name"),
        "created_at": node.get("createdAt"), "updated_at": node.get("updatedAt"), "pushed_at": node.get("pushedAt"),
    }
