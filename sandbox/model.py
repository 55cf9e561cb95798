"""The sandbox's organisation: what the generator builds, the emulators serve and the truth oracle reads.

Everything is semantic and API-neutral: people are referred to by `pid`, times are aware UTC
datetimes, statuses by id. Rendering to Jira's or GitHub's JSON (accountId vs user key, offsets,
field names) is the emulators' job, so Cloud and Data Center mode serve the same organisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# A Jira account deleted since it acted: its histories keep an author object without accountId, key or name.
DELETED_PID = "~deleted"
GHOST = "ghost"  # GitHub's login for a deleted account (sandbox/github_api.py renders it as GitHub does)
DELETED_PERSON = "deleted:user"  # the one person flowlens makes of every deleted account (docs/metrics-rulings.md)
FLOW_STATES = ("backlog", "active", "queue", "approval", "decision", "blocked", "done")

# Custom field ids as a Jira Cloud site typically has them; the connector must find them by name.
FIELD_TEAM = "customfield_10001"
FIELD_SPRINT = "customfield_10020"
FIELD_FLAGGED = "customfield_10021"
FIELD_EPIC_LINK = "customfield_10014"


@dataclass(slots=True)
class Person:
    pid: str  # internal id, "p0001"
    name: str  # display name
    email: str
    team: str  # Team.key (current team; see TeamMembership for history)
    tz: str  # IANA time zone of the person
    account_id: str  # Jira Cloud accountId
    user_key: str  # Jira Data Center user key, "JIRAUSER10001"
    username: str  # Jira Data Center user name
    login: str  # GitHub login
    bot: bool = False  # a bot account (GitHub login ends in "[bot]")


@dataclass(slots=True)
class TeamMembership:
    pid: str
    team: str
    valid_from: datetime | None  # None: since forever
    valid_to: datetime | None  # None: still a member (exclusive end)


@dataclass(slots=True)
class Calendar:
    tz: str
    workdays: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday=0
    start_hour: int = 9
    end_hour: int = 17
    holidays: tuple[str, ...] = ()  # ISO dates in the calendar's time zone


@dataclass(slots=True)
class Team:
    key: str  # "payments"
    name: str  # "Payments"
    calendar: Calendar
    github_slug: str  # GitHub team slug in the org


@dataclass(slots=True)
class JiraStatus:
    id: str
    name: str
    category: str  # Jira status category key: "new" | "indeterminate" | "done"
    state: str  # the true flow state (FLOW_STATES); a config must map non-English names to it


@dataclass(slots=True)
class JiraProject:
    id: str
    key: str
    name: str
    type: str  # "software" | "service_desk" | "business"
    team: str  # owning Team.key
    lead: str  # pid
    statuses: list[str]  # status ids of its workflow
    service_desk_id: str | None = None


@dataclass(slots=True)
class JiraChangeItem:
    field: str  # "status", "assignee", "Flagged", "Link", "priority", "Sprint", "Fix Version", "resolution", ...
    fieldtype: str  # "jira" | "custom"
    field_id: str | None  # "status", "assignee", FIELD_FLAGGED, ... (Link items have none)
    from_: str | None  # raw value; for user fields a pid (the emulator renders accountId or user key)
    from_string: str | None
    to: str | None
    to_string: str | None


@dataclass(slots=True)
class JiraHistory:
    id: int  # unique across the site, increasing with time
    author: str | None  # pid; None for automation; DELETED_PID for an account deleted since
    created: datetime  # aware, UTC
    items: list[JiraChangeItem]


@dataclass(slots=True)
class JiraLink:
    id: str
    type: str  # link type name: "Blocks" (outward "blocks", inward "is blocked by"), "Relates"
    outward_key: str  # the issue that blocks
    inward_key: str  # the issue that is blocked
    created: datetime


@dataclass(slots=True)
class JsmApproval:
    id: str
    name: str
    created: datetime
    completed: datetime | None
    final_decision: str  # "approved" | "declined" | "pending"
    approvers: list[tuple[str, str]]  # (pid, "approved" | "declined" | "pending")


@dataclass(slots=True)
class JiraRemoteLink:
    """A remote issue link (GET /rest/api/{2,3}/issue/{key}/remotelink): a web link to something outside Jira."""

    id: int
    url: str  # e.g. https://github.com/acme/payments-api/pull/12 (a pull request), or any other page
    title: str
    relationship: str = "mentioned in"


@dataclass(slots=True)
class JiraIssue:
    id: int
    key: str
    project: str  # JiraProject.key
    issuetype: str  # "Story", "Bug", "Task", "Epic", "Service Request"
    summary: str
    created: datetime
    updated: datetime
    reporter: str  # pid
    assignee: str | None  # pid, current
    status: str  # JiraStatus.id, current
    priority: str  # "Highest".."Lowest", current
    resolution: str | None
    resolutiondate: datetime | None
    labels: list[str]
    parent: str | None  # epic key
    team: str | None  # Team.key in the Team field, where the project uses it
    flagged: bool  # current
    sprint: str | None
    fix_versions: list[str]
    links: list[JiraLink]  # current links, on both issues of a link
    histories: list[JiraHistory]  # oldest first, complete (may exceed 100)
    approvals: list[JsmApproval] = field(default_factory=list)  # service desk projects only
    remote_links: list[JiraRemoteLink] = field(default_factory=list)  # current ones, oldest first


@dataclass(slots=True)
class GhRepo:
    id: int
    node_id: str
    org: str
    name: str
    team: str  # owning Team.key
    archived: bool
    created_at: datetime

    @property
    def full_name(self) -> str:
        return f"{self.org}/{self.name}"


@dataclass(slots=True)
class GhEvent:
    """One item of an issue/PR timeline, named as the REST timeline names events."""

    id: int
    event: str  # review_requested, review_request_removed, reviewed, review_dismissed, ready_for_review,
    #             convert_to_draft, assigned, unassigned, labeled, unlabeled, merged, closed, reopened,
    #             commented, committed
    actor: str  # GitHub login
    created_at: datetime
    requested_reviewer: str | None = None  # login (review_requested / review_request_removed)
    requested_team: str | None = None  # team slug (review_requested / review_request_removed)
    review_state: str | None = None  # reviewed: APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED (now)
    review_body: str | None = None
    label: str | None = None
    assignee: str | None = None  # login
    dismissed_review_id: int | None = None  # review_dismissed: the review's event id
    dismissed_state: str | None = None  # review_dismissed: the review's state before it was dismissed
    commit_sha: str | None = None


@dataclass(slots=True)
class GhPull:
    repo: str  # "org/name"
    number: int
    id: int
    node_id: str
    title: str
    author: str  # login
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    merged_at: datetime | None
    merged_by: str | None
    draft: bool  # current
    state: str  # "open" | "closed"
    labels: list[str]  # current
    assignees: list[str]  # current logins
    events: list[GhEvent]  # chronological, complete (may exceed 100)
    head_ref: str = "feature"
    base_ref: str = "main"
    body: str = ""


@dataclass(slots=True)
class GhIssue:
    repo: str
    number: int  # shares the number space of the repo with pulls
    id: int
    node_id: str
    title: str
    author: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    state: str  # "open" | "closed"
    state_reason: str | None  # "completed" | "not_planned" | None
    labels: list[str]
    assignees: list[str]
    events: list[GhEvent]


@dataclass(slots=True)
class Store:
    """The whole generated organisation at the sandbox's clock `now`."""

    seed: int
    scale: str
    now: datetime  # the sandbox's clock: nothing happens after it; advance() moves it
    teams: dict[str, Team]
    people: dict[str, Person]
    memberships: list[TeamMembership]
    jira_statuses: dict[str, JiraStatus]
    jira_projects: dict[str, JiraProject]
    jira_issues: list[JiraIssue]  # ordered by id
    github_orgs: list[str]
    github_repos: list[GhRepo]
    github_team_members: dict[str, list[str]]  # "org/slug" -> logins
    github_pulls: list[GhPull]
    github_issues: list[GhIssue]
    jira_user_pid: str  # the person the sandbox's credentials belong to (/myself)
    github_user_login: str  # the GitHub token's user
    # a repository's former "org/name" (renamed, or transferred from another organisation) -> its full name
    github_former_names: dict[str, str] = field(default_factory=dict)
    # statuses the site deleted (a workflow migration): old changelogs keep their ids and names, /status does
    # not list them; their true flow state is known here only
    jira_deleted_statuses: dict[str, JiraStatus] = field(default_factory=dict)
