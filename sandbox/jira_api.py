"""Jira Cloud / Data Center REST emulator over `sandbox.model.Store`.

Cloud: `/rest/api/{2,3}`, Basic email:token, accountIds, `search/jql` with page tokens (old `search`
answers 410). Data Center: `/rest/api/2` (and `latest`), Bearer PAT, user keys and names, `search`
with startAt/total. Times render in the credentials' user's time zone, as Jira does.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import hashlib
import json
import re
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sandbox import cache, jira_oauth
from sandbox.model import (
    DELETED_PID,
    FIELD_EPIC_LINK,
    FIELD_FLAGGED,
    FIELD_SPRINT,
    FIELD_TEAM,
    JiraHistory,
    JiraIssue,
    JiraRemoteLink,
    JsmApproval,
    Person,
    Store,
)
from sandbox.web import JIRA_API_TOKEN, JIRA_PAT, AppView, Request, Response, json_response

DEFAULT_BASE = "https://sandbox.atlassian.net"
EMBEDDED_CHANGELOG_CAP = 100  # Cloud embeds at most this many (newest) histories per issue in search/issue
SEARCH_JQL_DEFAULT, SEARCH_JQL_MAX, SEARCH_JQL_MAX_IDS = 50, 100, 5000
DC_SEARCH_DEFAULT, DC_SEARCH_MAX = 50, 100  # real DC caps at 1000 (jira.search.views.default.max); we are stricter
CHANGELOG_MAX = 100
BULK_DEFAULT, BULK_MAX, BULK_MAX_ISSUES = 1000, 10000, 1000
AUTOMATION_ACCOUNT = "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077"

GONE = ("The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration "
        "guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046")
NOT_AUTHENTICATED = "You are not authenticated. Authentication required to perform this operation."
NO_ISSUE = "Issue does not exist or you do not have permission to see it."

CATEGORIES = {  # key -> (id, name, colorName, statuses/search enum)
    "undefined": (1, "No Category", "medium-gray", "UNDEFINED"),
    "new": (2, "To Do", "blue-gray", "TODO"),
    "done": (3, "Done", "green", "DONE"),
    "indeterminate": (4, "In Progress", "yellow", "IN_PROGRESS"),
}
PRIORITIES = {"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}
RESOLUTIONS = {"Done": "10000", "Won't Do": "10001", "Duplicate": "10002", "Cannot Reproduce": "10003",
               "Declined": "10004"}
ISSUETYPES = {"Epic": ("10000", 1), "Story": ("10001", 0), "Bug": ("10002", 0), "Task": ("10003", 0),
              "Service Request": ("10004", 0), "Sub-task": ("10005", -1)}
LINK_TYPES = {"Blocks": ("10000", "is blocked by", "blocks"), "Cloners": ("10001", "is cloned by", "clones"),
              "Duplicate": ("10002", "is duplicated by", "duplicates"), "Relates": ("10003", "relates to", "relates to")}
USER_FIELDS = ("assignee", "reporter")

# id, name, schema, navigable/orderable, clause names
SYSTEM_FIELDS: list[tuple[str, str, dict[str, Any] | None, list[str]]] = [
    ("issuekey", "Key", None, ["id", "issue", "issuekey", "key"]),
    ("summary", "Summary", {"type": "string", "system": "summary"}, ["summary"]),
    ("description", "Description", {"type": "string", "system": "description"}, ["description"]),
    ("status", "Status", {"type": "status", "system": "status"}, ["status"]),
    ("statusCategory", "Status Category", {"type": "statusCategory", "system": "statusCategory"},
     ["statusCategory"]),
    ("issuetype", "Issue Type", {"type": "issuetype", "system": "issuetype"}, ["issuetype", "type"]),
    ("project", "Project", {"type": "project", "system": "project"}, ["project"]),
    ("created", "Created", {"type": "datetime", "system": "created"}, ["created", "createdDate"]),
    ("updated", "Updated", {"type": "datetime", "system": "updated"}, ["updated", "updatedDate"]),
    ("reporter", "Reporter", {"type": "user", "system": "reporter"}, ["reporter"]),
    ("assignee", "Assignee", {"type": "user", "system": "assignee"}, ["assignee"]),
    ("priority", "Priority", {"type": "priority", "system": "priority"}, ["priority"]),
    ("resolution", "Resolution", {"type": "resolution", "system": "resolution"}, ["resolution"]),
    ("resolutiondate", "Resolved", {"type": "datetime", "system": "resolutiondate"},
     ["resolutiondate", "resolved"]),
    ("labels", "Labels", {"type": "array", "items": "string", "system": "labels"}, ["labels"]),
    ("parent", "Parent", None, ["parent"]),
    ("fixVersions", "Fix versions", {"type": "array", "items": "version", "system": "fixVersions"},
     ["fixVersion"]),
    ("issuelinks", "Linked Issues", {"type": "array", "items": "issuelinks", "system": "issuelinks"},
     ["issueLink"]),
]
# What `*all` adds on a real site (navigable unless NOT_NAVIGABLE); values derived in `_part_value`.
SYSTEM_FIELDS += [
    ("statuscategorychangedate", "Status Category Changed",
     {"type": "datetime", "system": "statuscategorychangedate"}, ["statusCategoryChangedDate"]),
    ("creator", "Creator", {"type": "user", "system": "creator"}, ["creator"]),
    ("components", "Components", {"type": "array", "items": "component", "system": "components"}, ["component"]),
    ("versions", "Affects versions", {"type": "array", "items": "version", "system": "versions"},
     ["affectedVersion"]),
    ("environment", "Environment", {"type": "string", "system": "environment"}, ["environment"]),
    ("duedate", "Due date", {"type": "date", "system": "duedate"}, ["due", "duedate"]),
    ("timeoriginalestimate", "Original estimate", {"type": "number", "system": "timeoriginalestimate"},
     ["originalEstimate", "timeoriginalestimate"]),
    ("timeestimate", "Remaining Estimate", {"type": "number", "system": "timeestimate"},
     ["remainingEstimate", "timeestimate"]),
    ("timespent", "Time Spent", {"type": "number", "system": "timespent"}, ["timespent"]),
    ("aggregatetimeoriginalestimate", "\u03a3 Original Estimate",
     {"type": "number", "system": "aggregatetimeoriginalestimate"}, []),
    ("aggregatetimeestimate", "\u03a3 Remaining Estimate", {"type": "number", "system": "aggregatetimeestimate"}, []),
    ("aggregatetimespent", "\u03a3 Time Spent", {"type": "number", "system": "aggregatetimespent"}, []),
    ("workratio", "Work Ratio", {"type": "number", "system": "workratio"}, ["workratio"]),
    ("progress", "Progress", {"type": "progress", "system": "progress"}, ["progress"]),
    ("aggregateprogress", "\u03a3 Progress", {"type": "progress", "system": "aggregateprogress"}, []),
    ("timetracking", "Time tracking", {"type": "timetracking", "system": "timetracking"}, []),
    ("subtasks", "Sub-tasks", {"type": "array", "items": "issuelinks", "system": "subtasks"}, ["subtasks"]),
    ("security", "Security Level", {"type": "securitylevel", "system": "security"}, ["level"]),
    ("watches", "Watchers", {"type": "watches", "system": "watches"}, ["watchers"]),
    ("votes", "Votes", {"type": "votes", "system": "votes"}, ["votes"]),
    ("lastViewed", "Last Viewed", {"type": "datetime", "system": "lastViewed"}, ["lastViewed"]),
    ("attachment", "Attachment", {"type": "array", "items": "attachment", "system": "attachment"}, ["attachments"]),
    ("comment", "Comment", {"type": "comments-page", "system": "comment"}, ["comment"]),
    ("worklog", "Log Work", {"type": "array", "items": "worklog", "system": "worklog"},
     ["worklogAuthor", "worklogComment", "worklogDate"]),
]
NOT_NAVIGABLE = frozenset({"attachment", "comment", "timetracking", "worklog"})  # left out of `*navigable`
CUSTOM_FIELDS: list[tuple[str, str, dict[str, Any]]] = [
    (FIELD_TEAM, "Team", {"type": "team", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:atlassian-team"}),
    (FIELD_SPRINT, "Sprint", {"type": "array", "items": "json", "custom": "com.pyxis.greenhopper.jira:gh-sprint"}),
    (FIELD_FLAGGED, "Flagged", {"type": "array", "items": "option",
                                "custom": "com.atlassian.jira.plugin.system.customfieldtypes:multicheckboxes"}),
    (FIELD_EPIC_LINK, "Epic Link", {"type": "any", "custom": "com.pyxis.greenhopper.jira:gh-epic-link"}),
]
# JSM's system field: listed and rendered only on sites with a service-desk project (see `site_fields`).
FIELD_APPROVALS = "customfield_10019"
APPROVALS_FIELD = (FIELD_APPROVALS, "Approvals",
                   {"type": "sd-approvals", "custom": "com.atlassian.servicedesk.approvals-plugin:sd-approvals"})
FIELD_NAMES = {f[0]: f[1] for f in SYSTEM_FIELDS} | {f[0]: f[1] for f in CUSTOM_FIELDS} | {FIELD_APPROVALS: "Approvals"}
ALL_FIELDS = [f for f in FIELD_NAMES if f not in ("issuekey", FIELD_APPROVALS)]
OPTIONAL_FIELDS = (FIELD_APPROVALS,)


class JiraError(Exception):
    """An error Jira answers with `{"errorMessages": [...], "errors": {}}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _err(status: int, *messages: str) -> Response:
    return json_response({"errorMessages": list(messages), "errors": {}}, status)


# -- rendering ---------------------------------------------------------------------------------------

def _store(app_or_store: AppView | Store) -> Store:
    return app_or_store if isinstance(app_or_store, Store) else app_or_store.store


def user_tz(store: Store) -> ZoneInfo:
    return ZoneInfo(store.people[store.jira_user_pid].tz)


def jira_time(dt: datetime | None, tz: ZoneInfo) -> str | None:
    """`2024-03-01T09:15:02.123+0300`, in `tz`."""
    return None if dt is None else _jira_time(dt, tz)


@functools.lru_cache(maxsize=500_000)
def _jira_time(dt: datetime, tz: ZoneInfo) -> str:
    local = dt.astimezone(tz)
    off = int(local.utcoffset().total_seconds()) // 60  # type: ignore[union-attr]
    sign = "-" if off < 0 else "+"
    return (f"{local.year:04d}-{local.month:02d}-{local.day:02d}T{local.hour:02d}:{local.minute:02d}:"
            f"{local.second:02d}.{local.microsecond // 1000:03d}{sign}{abs(off) // 60:02d}{abs(off) % 60:02d}")


def _avatars(seed: str) -> dict[str, str]:
    h = hashlib.md5(seed.encode()).hexdigest()
    return {f"{n}x{n}": f"https://secure.gravatar.com/avatar/{h}?d=mm&s={n}" for n in (48, 24, 16, 32)}


_USER_CACHE: dict[tuple, dict[str, Any]] = {}


def render_user(person: Person | None, deployment: str, base: str, api: int = 2) -> dict[str, Any] | None:
    """A user as Jira embeds it (one cached object per user: do not mutate the result)."""
    if person is None:
        return None
    ck = (person.pid, person.name, person.email, person.tz, person.bot, deployment, base, api)
    hit = _USER_CACHE.get(ck)
    if hit is None:
        if len(_USER_CACHE) > 50_000:
            _USER_CACHE.clear()
        hit = _USER_CACHE[ck] = _render_user(person, deployment, base, api)
    return hit


def _render_user(person: Person, deployment: str, base: str, api: int) -> dict[str, Any]:
    if deployment == "cloud":
        return {"self": f"{base}/rest/api/{api}/user?accountId={person.account_id}", "accountId": person.account_id,
                "emailAddress": person.email, "avatarUrls": _avatars(person.account_id),
                "displayName": person.name, "active": True, "timeZone": person.tz,
                "accountType": "app" if person.bot else "atlassian"}
    return {"self": f"{base}/rest/api/2/user?username={person.username}", "name": person.username,
            "key": person.user_key, "emailAddress": person.email, "avatarUrls": _avatars(person.user_key),
            "displayName": person.name, "active": True, "timeZone": person.tz}


def _user_ref(store: Store, pid: str | None, deployment: str) -> str | None:
    person = store.people.get(pid) if pid else None
    if person is None:
        return pid
    return person.account_id if deployment == "cloud" else person.user_key


def render_status(store: Store, status_id: str, base: str, api: int = 2) -> dict[str, Any]:
    st = store.jira_statuses[status_id]
    cid, cname, color, _ = CATEGORIES.get(st.category, CATEGORIES["undefined"])
    return {"self": f"{base}/rest/api/{api}/status/{st.id}", "description": "",
            "iconUrl": f"{base}/images/icons/statuses/generic.png", "name": st.name, "untranslatedName": st.name,
            "id": st.id, "statusCategory": {"self": f"{base}/rest/api/{api}/statuscategory/{cid}", "id": cid,
                                            "key": st.category, "colorName": color, "name": cname}}


def _project_ref(store: Store, key: str, base: str, api: int) -> dict[str, Any]:
    p = store.jira_projects[key]
    return {"self": f"{base}/rest/api/{api}/project/{p.id}", "id": p.id, "key": p.key, "name": p.name,
            "projectTypeKey": p.type, "simplified": False, "avatarUrls": _avatars(p.key)}


def _issuetype(name: str, base: str, api: int) -> dict[str, Any]:
    tid, level = ISSUETYPES.get(name, (str(10100 + zlib.crc32(name.encode()) % 900), 0))
    return {"self": f"{base}/rest/api/{api}/issuetype/{tid}", "id": tid, "description": "", "name": name,
            "iconUrl": f"{base}/images/icons/issuetypes/{name.lower().replace(' ', '')}.svg",
            "subtask": level < 0, "avatarId": 10300 + int(tid) % 100, "hierarchyLevel": level}


def _named(kind: str, name: str | None, ids: dict[str, str], base: str, api: int) -> dict[str, Any] | None:
    if name is None:
        return None
    rid = ids.get(name) or str(10100 + zlib.crc32(name.encode()) % 900)
    return {"self": f"{base}/rest/api/{api}/{kind}/{rid}", "id": rid, "name": name,
            "iconUrl": f"{base}/images/icons/{kind}/{name.lower()}.svg", "description": ""}


def _adf(text: str) -> dict[str, Any]:
    return {"type": "doc", "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}]}


def _sprint(name: str, deployment: str) -> Any:
    sid = 1 + zlib.crc32(name.encode()) % 5000
    if deployment == "cloud":
        return {"id": sid, "name": name, "state": "active", "boardId": 1 + sid % 50, "goal": ""}
    # Data Center's REST still renders sprints as the greenhopper toString
    return (f"com.atlassian.greenhopper.service.sprint.Sprint@{sid:x}[id={sid},rapidViewId={1 + sid % 50},"
            f"state=ACTIVE,name={name},startDate=<null>,endDate=<null>,completeDate=<null>,activatedDate=<null>,"
            f"sequence={sid},goal=,autoStartStop=false,synced=false]")


class _Index:
    """Issues by key and id, rebuilt when the store's issue list grows or is replaced."""

    _cache: ClassVar[dict[int, tuple[int, int, dict[str, JiraIssue], dict[str, JiraIssue]]]] = {}

    @classmethod
    def of(cls, store: Store) -> tuple[dict[str, JiraIssue], dict[str, JiraIssue]]:
        issues = store.jira_issues
        hit = cls._cache.get(id(store))
        if hit and hit[0] == id(issues) and hit[1] == len(issues):
            return hit[2], hit[3]
        by_key = {i.key: i for i in issues}
        by_id = {str(i.id): i for i in issues}
        cls._cache[id(store)] = (id(issues), len(issues), by_key, by_id)
        return by_key, by_id


def _linked(store: Store, key: str, base: str, api: int) -> dict[str, Any]:
    other = _Index.of(store)[0].get(key)
    if other is None:
        return {"key": key}
    return {"id": str(other.id), "key": other.key, "self": f"{base}/rest/api/{api}/issue/{other.id}",
            "fields": {"summary": other.summary, "status": render_status(store, other.status, base, api),
                       "priority": _named("priority", other.priority, PRIORITIES, base, api),
                       "issuetype": _issuetype(other.issuetype, base, api)}}


def _field_value(store: Store, issue: JiraIssue, fid: str, deployment: str, api: int, base: str,
                 tz: ZoneInfo) -> Any:
    people = store.people
    if fid == "summary":
        return issue.summary
    if fid == "description":
        text = f"{issue.summary}. Generated by the flowlens sandbox."
        return _adf(text) if api == 3 else text
    if fid == "status":
        return render_status(store, issue.status, base, api)
    if fid == "statusCategory":
        return render_status(store, issue.status, base, api)["statusCategory"]
    if fid == "issuetype":
        return _issuetype(issue.issuetype, base, api)
    if fid == "project":
        return _project_ref(store, issue.project, base, api)
    if fid in ("created", "updated", "resolutiondate"):
        return jira_time(getattr(issue, fid), tz)
    if fid in ("reporter", "assignee"):
        pid = getattr(issue, fid)
        return render_user(people.get(pid) if pid else None, deployment, base, api)
    if fid == "priority":
        return _named("priority", issue.priority, PRIORITIES, base, api)
    if fid == "resolution":
        return _named("resolution", issue.resolution, RESOLUTIONS, base, api)
    if fid == "labels":
        return list(issue.labels)
    if fid == "parent":
        return _linked(store, issue.parent, base, api) if issue.parent else None
    if fid == "fixVersions":
        return [{"self": f"{base}/rest/api/{api}/version/{10000 + zlib.crc32(v.encode()) % 9000}",
                 "id": str(10000 + zlib.crc32(v.encode()) % 9000), "name": v, "archived": False,
                 "released": False} for v in issue.fix_versions]
    if fid == "issuelinks":
        out = []
        for link in issue.links:
            tid, inward, outward = LINK_TYPES.get(link.type, ("10099", link.type.lower(), link.type.lower()))
            item = {"id": link.id, "self": f"{base}/rest/api/{api}/issueLink/{link.id}",
                    "type": {"id": tid, "name": link.type, "inward": inward, "outward": outward,
                             "self": f"{base}/rest/api/{api}/issueLinkType/{tid}"}}
            if link.outward_key == issue.key:  # this issue blocks the other one
                item["outwardIssue"] = _linked(store, link.inward_key, base, api)
            else:
                item["inwardIssue"] = _linked(store, link.outward_key, base, api)
            out.append(item)
        return out
    if fid == FIELD_TEAM:
        team = store.teams.get(issue.team) if issue.team else None
        if team is None:
            return None
        tid = str(__import__("uuid").uuid5(__import__("uuid").NAMESPACE_DNS, team.key))
        return {"id": tid, "name": team.name, "title": team.name, "isVisible": True, "isVerified": False,
                "isShared": True}
    if fid == FIELD_SPRINT:
        return [_sprint(issue.sprint, deployment)] if issue.sprint else None
    if fid == FIELD_FLAGGED:
        return [{"self": f"{base}/rest/api/{api}/customFieldOption/10019", "value": "Impediment",
                 "id": "10019"}] if issue.flagged else None
    if fid == FIELD_EPIC_LINK:
        return issue.parent
    if fid == FIELD_APPROVALS:
        if store.jira_projects[issue.project].type != "service_desk":
            return None
        return [render_approval(store, issue, a, deployment, base, tz) for a in issue.approvals]
    if fid in PART_FIELDS:
        return _part_value(store, issue, fid, deployment, api, base, tz)
    return None


@dataclass(frozen=True)
class JiraSite:
    """What an admin set on this site that a client must live with (`app.jira_site`; else the store's
    `jira_site`, so a generator trait can make one; else the defaults). `flowlens sandbox --jira-no-issue-linking
    --jira-deny-jsm`."""

    issue_linking: bool = True  # off: GET issueLinkType answers 404, as Jira does when an admin disabled linking
    jsm: str = "on"  # "denied": servicedeskapi answers 403; "absent": not installed (404); both hide Approvals
    field_listing: bool = True  # off: GET field answers 403 (a site restricting it, e.g. behind a proxy rule)
    # GET issue/{key}/remotelink: "on"; "denied" answers 403 (a proxy rule or an app restricting it); "absent"
    # answers 404 as a server without the resource does
    remote_links: str = "on"


JSM_MODES = ("on", "denied", "absent")
LINKING_DISABLED = "Issue linking is currently disabled."  # Jira's rest.issue.linking.disabled text
JSM_DENIED = ("You do not have permission to access Jira Service Management on this site.",
              "sd.permission.error.no.access")


def site_options(app_or_store: AppView | Store) -> JiraSite:
    site = getattr(app_or_store, "jira_site", None) or getattr(_store(app_or_store), "jira_site", None)
    return site if isinstance(site, JiraSite) else JiraSite()


def site_fields(app_or_store: AppView | Store) -> frozenset[str]:
    """Optional field ids this site has: Approvals with a service-desk project and JSM, minus
    `app.jira_hide_fields`."""
    store = _store(app_or_store)
    jsm = site_options(app_or_store).jsm == "on"
    out = {FIELD_APPROVALS} if jsm and any(p.type == "service_desk" for p in store.jira_projects.values()) else set()
    hidden = getattr(app_or_store, "jira_hide_fields", None) or set()
    return frozenset(f for f in out if f not in hidden and FIELD_NAMES[f] not in hidden)


def _select_fields(fields: list[str] | None, default: str, site: frozenset[str] = frozenset()) -> list[str]:
    """Jira's `fields` semantics: `*all`, `*navigable`, ids, `-id` exclusions; unknown ids are dropped.

    `site`: the optional fields (OPTIONAL_FIELDS) this site has; the others count as unknown."""
    wanted = [f.strip() for f in (fields if fields is not None else [default]) if f and f.strip()]
    if not wanted:
        wanted = [default]
    chosen: list[str] = []
    for f in wanted:
        if f in ("*all", "*navigable"):
            chosen.extend(x for x in ALL_FIELDS if f == "*all" or x not in NOT_NAVIGABLE)
            chosen.extend(o for o in OPTIONAL_FIELDS if o in site)
        elif f.startswith("-") or f in ("id", "key", "issuekey"):
            continue
        elif f in FIELD_NAMES and (f not in OPTIONAL_FIELDS or f in site):
            chosen.append(f)
    excluded = {f[1:] for f in wanted if f.startswith("-")}
    return [f for f in dict.fromkeys(chosen) if f not in excluded]


def render_history(app_or_store: AppView | Store, history: JiraHistory, deployment: str, api_version: int = 2,
                   base_url: str = DEFAULT_BASE, tz: ZoneInfo | None = None,
                   field_ids: set[str] | None = None) -> dict[str, Any]:
    """One changelog history as Jira renders it (Cloud items carry `fieldId`; DC's do not). Shared, cached while
    the store stays as it is: do not mutate the result."""
    store = _store(app_or_store)
    tz = tz or user_tz(store)
    if field_ids is None:
        return cache.of(store).fragment(("history", history.id, deployment, api_version, base_url, tz.key),
                                        lambda: _render_history(store, history, deployment, api_version, base_url, tz))
    return _render_history(store, history, deployment, api_version, base_url, tz, field_ids)


def _render_history(store: Store, history: JiraHistory, deployment: str, api_version: int, base_url: str,
                    tz: ZoneInfo, field_ids: set[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(history.id)}
    author = store.people.get(history.author) if history.author else None
    if author is not None:
        out["author"] = render_user(author, deployment, base_url, api_version)
    elif history.author == DELETED_PID:  # a deleted account: an author object that names nobody
        out["author"] = {"avatarUrls": _avatars("former-user"), "displayName": "Former user", "active": False}
    elif deployment == "cloud":
        out["author"] = {"self": f"{base_url}/rest/api/{api_version}/user?accountId={AUTOMATION_ACCOUNT}",
                         "accountId": AUTOMATION_ACCOUNT, "avatarUrls": _avatars(AUTOMATION_ACCOUNT),
                         "displayName": "Automation for Jira", "active": True, "timeZone": "UTC",
                         "accountType": "app"}
    out["created"] = jira_time(history.created, tz)
    items = []
    for it in history.items:
        if field_ids is not None and (it.field_id or it.field) not in field_ids:
            continue
        item: dict[str, Any] = {"field": it.field, "fieldtype": it.fieldtype}
        if deployment == "cloud" and it.field_id:
            item["fieldId"] = it.field_id
        frm, to = it.from_, it.to
        if (it.field_id or it.field) in USER_FIELDS:
            frm, to = _user_ref(store, frm, deployment), _user_ref(store, to, deployment)
        item |= {"from": frm, "fromString": it.from_string, "to": to, "toString": it.to_string}
        items.append(item)
    out["items"] = items
    return out


def render_issue(app_or_store: AppView | Store, issue: JiraIssue, fields: list[str] | None, deployment: str,
                 api_version: int = 2, *, base_url: str = DEFAULT_BASE, expand: str | list[str] | None = None,
                 tz: ZoneInfo | None = None, default_fields: str = "*all",
                 site: frozenset[str] = frozenset()) -> dict[str, Any]:
    """An IssueBean. `fields=None` means `default_fields`; `expand` may hold `changelog`, `names`.

    `site`: the optional fields (Approvals) to offer, `site_fields(app)` in the handlers; none by default."""
    store = _store(app_or_store)
    tz = tz or user_tz(store)
    expands = _split(expand)
    wanted = [f.strip() for f in (fields if fields is not None else [default_fields]) if f and f.strip()]
    chosen = _select_fields(fields, default_fields, site)
    if wanted == ["id"] and "changelog" not in expands:
        return {"id": str(issue.id)}
    out: dict[str, Any] = {"expand": "renderedFields,names,schema,operations,editmeta,changelog,"
                                     "versionedRepresentations", "id": str(issue.id),
                           "self": f"{base_url}/rest/api/{api_version}/issue/{issue.id}", "key": issue.key}
    if chosen:
        out["fields"] = {f: _field_value(store, issue, f, deployment, api_version, base_url, tz) for f in chosen}
    if "names" in expands:
        out["names"] = {f: FIELD_NAMES[f] for f in chosen}
    if "transitions" in expands:
        out["transitions"] = issue_transitions(store, issue, base_url, api_version,
                                               with_fields="transitions.fields" in expands)
    if "changelog" in expands:
        hs = issue.histories
        total = len(hs)
        if deployment == "cloud":
            hs = list(reversed(hs[-EMBEDDED_CHANGELOG_CAP:]))  # the newest, newest first
        out["changelog"] = {"startAt": 0, "maxResults": len(hs), "total": total,
                            "histories": [render_history(store, h, deployment, api_version, base_url, tz)
                                          for h in hs]}
    return out


def _date_obj(dt: datetime, tz: ZoneInfo) -> dict[str, Any]:
    local = dt.astimezone(tz)
    return {"epochMillis": int(dt.timestamp() * 1000), "friendly": local.strftime("%d/%b/%y %I:%M %p"),
            "iso8601": local.strftime("%Y-%m-%dT%H:%M:%S%z"), "jira": jira_time(dt, tz)}


def render_approval(app_or_store: AppView | Store, issue: JiraIssue, approval: JsmApproval, deployment: str,
                    base_url: str = DEFAULT_BASE, tz: ZoneInfo | None = None) -> dict[str, Any]:
    """One JSM approval (ApprovalDTO) of a service desk request."""
    store = _store(app_or_store)
    tz = tz or user_tz(store)
    approvers = []
    for pid, decision in approval.approvers:
        if pid == DELETED_PID:  # an approver whose account was deleted since: an object that names nobody
            approvers.append({"approver": {"displayName": "Former user", "active": False, "_links": {}},
                              "approverDecision": decision})
            continue
        person = store.people[pid]
        u = render_user(person, deployment, base_url, 2) or {}
        approver = {k: u[k] for k in ("accountId", "name", "key", "emailAddress", "displayName", "active",
                                      "timeZone") if k in u}
        approver["_links"] = {"self": u["self"]}
        approvers.append({"approver": approver, "approverDecision": decision})
    out: dict[str, Any] = {"id": approval.id, "name": approval.name, "finalDecision": approval.final_decision,
                           "canAnswerApproval": False, "approvers": approvers,
                           "createdDate": _date_obj(approval.created, tz)}
    if approval.completed is not None:
        out["completedDate"] = _date_obj(approval.completed, tz)
    out["_links"] = {"self": f"{base_url}/rest/servicedeskapi/request/{issue.id}/approval/{approval.id}"}
    return out


def _split(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    parts = value if isinstance(value, list) else [value]
    return [p.strip() for part in parts for p in str(part).split(",") if p.strip()]


# -- JQL ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op>!=|>=|<=|!~|=|>|<|~)
                        |(?P<punct>[(),])|(?P<word>[^\s"'(),=!<>~]+))""", re.VERBOSE)
_KEYWORDS = {"and", "or", "not", "in", "order", "by", "asc", "desc", "is", "empty", "null", "was", "changed"}
_OPERATORS = "'=', '!=', '~', '<', '>', '<=', '>=', 'is', 'is not', 'in', 'not in'"
_DATE_FORMATS = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")
_PERIOD = re.compile(r"([+-]?)\s*((?:\d+\s*[wdhm]\s*)+)\Z")
_FIELD_ALIASES = {"key": "key", "issuekey": "key", "id": "key", "issue": "key", "project": "project",
                  "updated": "updated", "updateddate": "updated", "created": "created", "createddate": "created",
                  "status": "status", "statuscategory": "statusCategory", "issuetype": "issuetype",
                  "type": "issuetype", "resolved": "resolutiondate", "resolutiondate": "resolutiondate"}
_FIELD_ALIASES |= {"assignee": "assignee", "reporter": "reporter", "creator": "reporter", "resolution": "resolution",
                   "labels": "labels", "label": "labels", "fixversion": "fixVersion", "parent": "parent",
                   "sprint": "sprint", "duedate": "duedate", "due": "duedate"}
_ORDERABLE = {"key", "updated", "created", "resolutiondate"}
# What a clause of each field compares: the issue's value (None or [] when empty) and how a query value names it.
_VALUE_OF: dict[str, Callable[[JiraIssue], Any]] = {
    "assignee": lambda i: i.assignee, "reporter": lambda i: i.reporter, "resolution": lambda i: i.resolution,
    "resolutiondate": lambda i: i.resolutiondate, "labels": lambda i: i.labels, "fixVersion": lambda i: i.fix_versions,
    "parent": lambda i: i.parent, "sprint": lambda i: i.sprint, "duedate": lambda i: None,
    "updated": lambda i: i.updated, "created": lambda i: i.created}


@dataclass
class _Tok:
    kind: str  # str | op | punct | word | end
    text: str
    pos: int

    @property
    def value(self) -> str:
        if self.kind == "str":
            return re.sub(r"\\(.)", r"\1", self.text[1:-1])
        return self.text


def _tokenize(jql: str) -> list[_Tok]:
    toks, pos = [], 0
    while pos < len(jql):
        if jql[pos:].strip() == "":
            break
        m = _TOKEN.match(jql, pos)
        if not m or m.end() == pos:
            raise JiraError(400, f"Error in the JQL Query: The character '{jql[pos:].lstrip()[:1]}' is a "
                                 f"reserved JQL character. (line 1, character {pos + 1})")
        kind = m.lastgroup or "word"
        toks.append(_Tok(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    toks.append(_Tok("end", "", len(jql)))
    return toks


@dataclass
class Query:
    where: Callable[[JiraIssue], bool] | None
    order: list[tuple[str, bool]]  # (field, descending)


class _Parser:
    """Recursive descent over Jira's JQL subset: clauses, AND/OR/NOT, parentheses, ORDER BY."""

    def __init__(self, store: Store, jql: str) -> None:
        self.store, self.toks, self.i = store, _tokenize(jql), 0
        self.tz = user_tz(store)

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def is_kw(self, word: str) -> bool:
        t = self.peek()
        return t.kind == "word" and t.text.lower() == word

    def fail(self, expected: str, t: _Tok | None = None) -> JiraError:
        t = t or self.peek()
        got = "end of query" if t.kind == "end" else f"'{t.text}'"
        return JiraError(400, f"Error in the JQL Query: Expecting {expected} but got {got}. "
                              f"(line 1, character {t.pos + 1})")

    def parse(self) -> Query:
        where = None
        if not self.is_kw("order") and self.peek().kind != "end":
            where = self.or_expr()
        order: list[tuple[str, bool]] = []
        if self.is_kw("order"):
            self.take()
            if not self.is_kw("by"):
                raise self.fail("'by'")
            self.take()
            while True:
                t = self.take()
                if t.kind not in ("word", "str"):
                    raise self.fail("a field name", t)
                name = _FIELD_ALIASES.get(t.value.lower())
                if name is None or name not in _ORDERABLE:
                    if name is None and t.value.lower() not in {n.lower() for n in FIELD_NAMES.values()}:
                        raise JiraError(400, f"Field '{t.value}' does not exist or you do not have permission "
                                             "to view it.")
                    raise JiraError(400, f"Not able to sort using field '{t.value}'.")
                desc = False
                if self.is_kw("asc") or self.is_kw("desc"):
                    desc = self.take().text.lower() == "desc"
                order.append((name, desc))
                if self.peek().kind == "punct" and self.peek().text == ",":
                    self.take()
                    continue
                break
        if self.peek().kind != "end":
            raise self.fail("either 'OR' or 'AND'" if where else "a field name")
        return Query(where, order)

    def or_expr(self) -> Callable[[JiraIssue], bool]:
        parts = [self.and_expr()]
        while self.is_kw("or"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda i: any(p(i) for p in parts))

    def and_expr(self) -> Callable[[JiraIssue], bool]:
        parts = [self.not_expr()]
        while self.is_kw("and"):
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else (lambda i: all(p(i) for p in parts))

    def not_expr(self) -> Callable[[JiraIssue], bool]:
        if self.is_kw("not"):
            self.take()
            inner = self.not_expr()
            return lambda i: not inner(i)
        t = self.peek()
        if t.kind == "punct" and t.text == "(":
            self.take()
            inner = self.or_expr()
            if not (self.peek().kind == "punct" and self.peek().text == ")"):
                raise self.fail("')'")
            self.take()
            return inner
        return self.clause()

    def value(self) -> _Tok:
        t = self.take()
        if t.kind == "str" or (t.kind == "word" and t.text.lower() not in _KEYWORDS):
            return t
        raise self.fail("either a value, list or function", t)

    def clause(self) -> Callable[[JiraIssue], bool]:
        t = self.take()
        if t.kind not in ("word", "str") or (t.kind == "word" and t.text.lower() in _KEYWORDS):
            raise self.fail("a field name", t)
        name = _FIELD_ALIASES.get(t.value.lower())
        if name is None:
            raise JiraError(400, f"Field '{t.value}' does not exist or you do not have permission to view it.")
        op_tok = self.take()
        if op_tok.kind == "op":
            op = op_tok.text
        elif op_tok.kind == "word" and op_tok.text.lower() == "in":
            op = "in"
        elif op_tok.kind == "word" and op_tok.text.lower() == "not" and self.is_kw("in"):
            self.take()
            op = "not in"
        elif op_tok.kind == "word" and op_tok.text.lower() == "is":
            op = "is"
            if self.is_kw("not"):
                self.take()
                op = "is not"
            empty = self.take()
            if not (empty.kind == "word" and empty.text.lower() in ("empty", "null")):
                raise self.fail("'EMPTY' or 'NULL'", empty)
            return self.emptiness(t.value, name, op == "is")
        else:
            got = "end of query" if op_tok.kind == "end" else f"'{op_tok.text}'"
            raise JiraError(400, f"Error in the JQL Query: Expecting operator but got {got}. The valid operators "
                                 f"are {_OPERATORS}. (line 1, character {op_tok.pos + 1})")
        if op in ("in", "not in"):
            if not (self.peek().kind == "punct" and self.peek().text == "("):
                raise self.fail("'('")
            self.take()
            values = [self.value()]
            while self.peek().kind == "punct" and self.peek().text == ",":
                self.take()
                values.append(self.value())
            if not (self.peek().kind == "punct" and self.peek().text == ")"):
                raise self.fail("')'")
            self.take()
        elif op in ("=", "!=") and self.peek().kind == "word" and self.peek().text.lower() in ("empty", "null"):
            self.take()
            return self.emptiness(t.value, name, op == "=")
        else:
            values = [self.value()]
        return self.predicate(t.value, name, op, values)

    def emptiness(self, shown: str, name: str, empty: bool) -> Callable[[JiraIssue], bool]:
        """`field is EMPTY` (or `= EMPTY`, `is null`) and `is not EMPTY`."""
        get = _VALUE_OF.get(name)
        if get is None:  # key, project, status, ...: never empty
            return lambda i: not empty
        return lambda i: (get(i) in (None, [], "")) == empty

    def predicate(self, shown: str, name: str, op: str, toks: list[_Tok]) -> Callable[[JiraIssue], bool]:
        if name in ("updated", "created", "resolutiondate"):
            if op not in ("=", "!=", ">", ">=", "<", "<="):
                raise JiraError(400, f"The operator '{op}' is not supported by the '{shown}' field.")
            at = self.date(shown, toks[0].value)
            cmp = {"=": lambda a: a == at, "!=": lambda a: a != at, ">": lambda a: a > at,
                   ">=": lambda a: a >= at, "<": lambda a: a < at, "<=": lambda a: a <= at}[op]
            return lambda i: getattr(i, name) is not None and cmp(getattr(i, name))
        if op not in ("=", "!=", "in", "not in"):
            raise JiraError(400, f"The operator '{op}' is not supported by the '{shown}' field.")
        if name in _VALUE_OF:
            return self.optional_value(shown, name, op, toks)
        if name == "project":
            keys = {self.project(shown, t.value) for t in toks}
            get: Callable[[JiraIssue], str] = lambda i: i.project
        elif name == "key":
            keys = {self.issue_key(shown, t.value) for t in toks}
            get = lambda i: i.key
        elif name == "status":
            keys = set().union(*(self.status(shown, t.value) for t in toks))
            get = lambda i: i.status
        elif name == "statusCategory":
            cats = {v: k for k, (cid, cname, _, _) in CATEGORIES.items() for v in (k, cname.lower(), str(cid))}
            keys = set()
            for t in toks:
                if t.value.lower() not in cats:
                    raise JiraError(400, f"The value '{t.value}' does not exist for the field '{shown}'.")
                keys.add(cats[t.value.lower()])
            statuses = self.store.jira_statuses
            get = lambda i: statuses[i.status].category
        else:  # issuetype
            keys = {t.value.lower() for t in toks}
            get = lambda i: i.issuetype.lower()
        negate = op in ("!=", "not in")
        return lambda i: (get(i) in keys) != negate

    def optional_value(self, shown: str, name: str, op: str, toks: list[_Tok]) -> Callable[[JiraIssue], bool]:
        """A field that may be empty: `=`/`in` match its value (any of a list's), `!=`/`not in` match issues that
        have a value and not that one (Jira never matches an empty field with a negation)."""
        get = _VALUE_OF[name]
        if name in ("assignee", "reporter"):
            wanted = set()
            for t in toks:
                v = t.value.lower()
                found = {p.pid for p in self.store.people.values() if v in (
                    p.account_id.lower(), p.user_key.lower(), p.username.lower(), p.email.lower(), p.name.lower())}
                if not found:
                    raise JiraError(400, f"The value '{t.value}' does not exist for the field '{shown}'.")
                wanted |= found
        elif name == "fixVersion":
            wanted = {t.value for t in toks} | {n for t in toks for i in self.store.jira_issues
                                                for n in i.fix_versions if _version_id(n) == t.value}
        elif name == "resolution":
            wanted = {n for t in toks for n, rid in RESOLUTIONS.items() if t.value.lower() in (n.lower(), rid)}
        elif name == "parent":
            wanted = {self.issue_key(shown, t.value) for t in toks}
        else:
            wanted = {t.value for t in toks}
        negate = op in ("!=", "not in")

        def match(i: JiraIssue) -> bool:
            v = get(i)
            if v in (None, [], ""):
                return False
            hit = bool(set(v) & wanted) if isinstance(v, list) else v in wanted
            return hit != negate
        return match

    def project(self, shown: str, value: str) -> str:
        for p in self.store.jira_projects.values():
            if value.upper() == p.key.upper() or value == p.id or value.lower() == p.name.lower():
                return p.key
        raise JiraError(400, f"The value '{value}' does not exist for the field '{shown}'.")

    def issue_key(self, shown: str, value: str) -> str:
        by_key, by_id = _Index.of(self.store)
        issue = by_key.get(value.upper()) or by_id.get(value)
        if issue is None:
            if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*-\d+|\d+", value):
                raise JiraError(400, f"An issue with key '{value}' does not exist for field '{shown}'.")
            raise JiraError(400, f"The issue key '{value}' for field '{shown}' is invalid.")
        return issue.key

    def status(self, shown: str, value: str) -> set[str]:
        found = {s.id for s in self.store.jira_statuses.values() if value == s.id or value.lower() == s.name.lower()}
        if not found:
            raise JiraError(400, f"The value '{value}' does not exist for the field '{shown}'.")
        return found

    def date(self, shown: str, value: str) -> datetime:
        for fmt in _DATE_FORMATS:
            try:
                return datetime.strptime(value.strip(), fmt).replace(tzinfo=self.tz)
            except ValueError:
                pass
        m = _PERIOD.match(value.strip())
        if m:
            delta = timedelta()
            for n, unit in re.findall(r"(\d+)\s*([wdhm])", m.group(2)):
                delta += timedelta(**{{"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}[unit]: int(n)})
            return self.store.now - delta if m.group(1) == "-" else self.store.now + delta
        raise JiraError(400, f"Date value '{value}' for field '{shown}' is invalid. Valid formats include: "
                             "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period "
                             "format e.g. '-5d', '4w 2d'.")


def parse_jql(store: Store, jql: str) -> Query:
    return _Parser(store, jql or "").parse()


class _Rev:
    """Inverts ordering for DESC sort keys."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: _Rev) -> bool:
        return other.v < self.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Rev) and self.v == other.v


def _raw_sort_value(issue: JiraIssue, name: str) -> Any:
    if name == "key":
        proj, _, num = issue.key.rpartition("-")
        return [proj, int(num)]
    if name == "id":
        return issue.id
    dt = getattr(issue, name)
    return int(dt.timestamp() * 1_000_000) if dt is not None else -(2 ** 62)


def _sort_key(raw: list[Any], order: list[tuple[str, bool]]) -> tuple:
    out = []
    for v, (_, desc) in zip(raw, order):
        if isinstance(v, list):
            out.append(_Rev(tuple(v)) if desc else tuple(v))
        else:
            out.append(-v if desc else v)
    return tuple(out)


def run_query(store: Store, jql: str) -> tuple[list[JiraIssue], list[tuple[str, bool]]]:
    """Matching issues in the query's order (default `created DESC`), with the id as the last tiebreaker (kept
    while the store stays as it is: do not mutate the list)."""
    return cache.of(store).fragment(("jql", jql), lambda: _run_query(store, jql))


def _run_query(store: Store, jql: str) -> tuple[list[JiraIssue], list[tuple[str, bool]]]:
    q = parse_jql(store, jql)
    order = (q.order or [("created", True)])
    order = order + [("id", order[-1][1])]
    hits = [i for i in store.jira_issues if q.where is None or q.where(i)]
    hits.sort(key=lambda i: _sort_key([_raw_sort_value(i, n) for n, _ in order], order))
    return hits, order


# -- auth and request helpers ------------------------------------------------------------------------

def _authorized(app: AppView, req: Request) -> bool | str:
    """True for good credentials; an OAuth problem name (Jira's `oauth_problem`) for a refused OAuth signature."""
    auth = req.headers.get("authorization", "")
    scheme, _, cred = auth.partition(" ")
    if app.jira_deployment == "datacenter":
        if scheme.lower() == "oauth" and getattr(app, "jira_oauth", False):
            url = req.base_url + req.path
            return jira_oauth.problem(req.method, url, req.query, auth) or True
        return scheme.lower() == "bearer" and cred.strip() == JIRA_PAT
    if scheme.lower() != "basic":
        return False
    try:
        email, _, token = base64.b64decode(cred.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    me = app.store.people[app.store.jira_user_pid]
    return email.lower() == me.email.lower() and token == JIRA_API_TOKEN


def _unauthorized(app: AppView, oauth_problem: str | None = None) -> Response:
    resp = _err(401, NOT_AUTHENTICATED)
    resp.headers["WWW-Authenticate"] = ('Basic realm="protected-area"' if app.jira_deployment == "cloud"
                                        else 'OAuth realm="Jira"')
    if oauth_problem:  # what Jira's OAuth filter answers for a signed request it refuses
        resp.headers["WWW-Authenticate"] = f'OAuth realm="Jira", oauth_problem="{oauth_problem}"'
    return resp


def _int(value: Any, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise JiraError(400, f"The '{name}' parameter must be a number, got '{value}'.") from None


def _params(req: Request) -> dict[str, Any]:
    """Query parameters (repeated ones as lists) merged with a JSON body for POST."""
    out: dict[str, Any] = {k: (v if len(v) > 1 or k in ("fields", "expand") else v[0]) for k, v in req.query.items()}
    if req.method == "POST" and req.body:
        try:
            body = req.json()
        except ValueError:
            raise JiraError(400, "Unexpected character in the request body: not valid JSON.") from None
        if not isinstance(body, dict):
            raise JiraError(400, "The request body must be a JSON object.")
        out |= body
    return out


def _fields_param(value: Any) -> list[str] | None:
    if value is None:
        return None
    return _split(value)


@dataclass
class _Ctx:
    app: AppView
    req: Request
    api: int
    base: str

    @property
    def store(self) -> Store:
        return self.app.store

    @property
    def dep(self) -> str:
        return self.app.jira_deployment

    @property
    def tz(self) -> ZoneInfo:
        return user_tz(self.app.store)

    @property
    def site(self) -> frozenset[str]:
        return site_fields(self.app)


def _issue_or_404(store: Store, key_or_id: str) -> JiraIssue:
    by_key, by_id = _Index.of(store)
    issue = by_key.get(key_or_id.upper()) or by_id.get(key_or_id)
    if issue is None:
        raise JiraError(404, NO_ISSUE)
    return issue


def _encode_token(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_token(token: str) -> dict[str, Any]:
    try:
        out = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if isinstance(out, dict):
            return out
    except (ValueError, binascii.Error):
        pass
    raise JiraError(400, "The provided next page token is invalid or expired.")


def _jql_hash(jql: str) -> str:
    return hashlib.sha1((jql or "").encode()).hexdigest()[:10]


# -- handlers ----------------------------------------------------------------------------------------

def _search_jql(c: _Ctx) -> Response:
    p = _params(c.req)
    jql = p.get("jql") or ""
    q = parse_jql(c.store, jql)
    if q.where is None:
        raise JiraError(400, "Unbounded JQL queries are not allowed here. Please add a search restriction to "
                             "your query.")
    fields = _fields_param(p.get("fields"))
    expand = _split(p.get("expand"))
    id_only = set(fields or ["id"]) <= {"id", "key"} and "changelog" not in expand
    cap = SEARCH_JQL_MAX_IDS if id_only else SEARCH_JQL_MAX
    size = max(0, min(_int(p.get("maxResults"), SEARCH_JQL_DEFAULT, "maxResults"), cap))
    hits, order = run_query(c.store, jql)
    start = 0
    token = p.get("nextPageToken")
    if token:
        t = _decode_token(token)
        if t.get("q") != _jql_hash(jql) or not isinstance(t.get("after"), list):
            raise JiraError(400, "The provided next page token is invalid or expired.")
        if len(t["after"]) != len(order):
            raise JiraError(400, "The provided next page token is invalid or expired.")
        cursor = _sort_key(t["after"], order)
        start = bisect.bisect_right(hits, cursor, key=lambda i: _sort_key([_raw_sort_value(i, n) for n, _ in order],
                                                                          order))
    page = hits[start:start + size]
    site, tz = c.site, c.tz
    out: dict[str, Any] = {"issues": [render_issue(c.store, i, fields, c.dep, c.api, base_url=c.base, expand=expand,
                                                   tz=tz, default_fields="id", site=site) for i in page]}
    if "names" in expand:
        out["names"] = {f: FIELD_NAMES[f] for f in _select_fields(fields, "id", site)}
    more = start + len(page) < len(hits) and size > 0
    if more:
        last = page[-1]
        out["nextPageToken"] = _encode_token({"q": _jql_hash(jql),
                                              "after": [_raw_sort_value(last, n) for n, _ in order]})
    out["isLast"] = not more
    return json_response(out)


def _approximate_count(c: _Ctx) -> Response:
    p = _params(c.req)
    hits, _ = run_query(c.store, p.get("jql") or "")
    return json_response({"count": len(hits)})


def _search_legacy(c: _Ctx) -> Response:
    if c.dep == "cloud":
        return _err(410, GONE)
    p = _params(c.req)
    jql = p.get("jql") or ""
    fields = _fields_param(p.get("fields"))
    expand = _split(p.get("expand"))
    start = max(0, _int(p.get("startAt"), 0, "startAt"))
    size = max(0, min(_int(p.get("maxResults"), DC_SEARCH_DEFAULT, "maxResults"), DC_SEARCH_MAX))
    hits, _ = run_query(c.store, jql)
    page = hits[start:start + size]
    out: dict[str, Any] = {"expand": "schema,names", "startAt": start, "maxResults": size, "total": len(hits),
                           "issues": [render_issue(c.store, i, fields, c.dep, c.api, base_url=c.base, expand=expand,
                                                   tz=c.tz, default_fields="*navigable", site=c.site)
                                      for i in page]}
    if "names" in expand:
        out["names"] = {f: FIELD_NAMES[f] for f in _select_fields(fields, "*navigable", c.site)}
    return json_response(out)


def _issue(c: _Ctx) -> Response:
    issue = _issue_or_404(c.store, c.req.params["key"])
    p = _params(c.req)
    return json_response(render_issue(c.store, issue, _fields_param(p.get("fields")), c.dep, c.api,
                                      base_url=c.base, expand=_split(p.get("expand")), tz=c.tz, site=c.site))


def _changelog(c: _Ctx) -> Response:
    issue = _issue_or_404(c.store, c.req.params["key"])
    start = max(0, _int(c.req.arg("startAt"), 0, "startAt"))
    size = max(1, min(_int(c.req.arg("maxResults"), CHANGELOG_MAX, "maxResults"), CHANGELOG_MAX))
    hs = issue.histories
    page = hs[start:start + size]
    self_url = f"{c.base}/rest/api/{c.api}/issue/{issue.key}/changelog"
    out: dict[str, Any] = {"self": f"{self_url}?{urlencode({'startAt': start, 'maxResults': size})}",
                           "maxResults": size, "startAt": start, "total": len(hs),
                           "isLast": start + len(page) >= len(hs),
                           "values": [render_history(c.store, h, c.dep, c.api, c.base, c.tz) for h in page]}
    if not out["isLast"]:
        out["nextPage"] = f"{self_url}?{urlencode({'startAt': start + size, 'maxResults': size})}"
    return json_response(out)


def _bulkfetch(c: _Ctx) -> Response:
    p = _params(c.req)
    ids = p.get("issueIdsOrKeys")
    if not isinstance(ids, list) or not ids:
        raise JiraError(400, "issueIdsOrKeys must contain between 1 and 1000 issue ids or keys.")
    if len(ids) > BULK_MAX_ISSUES:
        raise JiraError(400, f"issueIdsOrKeys must contain between 1 and {BULK_MAX_ISSUES} issue ids or keys.")
    field_ids = p.get("fieldIds")
    if field_ids is not None and (not isinstance(field_ids, list) or len(field_ids) > 10):
        raise JiraError(400, "fieldIds must contain at most 10 field ids.")
    wanted = set(field_ids) if field_ids else None
    size = _int(p.get("maxResults"), BULK_DEFAULT, "maxResults")
    if not 1 <= size <= BULK_MAX:
        raise JiraError(400, f"maxResults must be between 1 and {BULK_MAX}.")
    by_key, by_id = _Index.of(c.store)
    issues = list({i.id: i for i in (by_key.get(str(x).upper()) or by_id.get(str(x)) for x in ids) if i}.values())
    pos_issue, pos_hist = 0, 0
    token = p.get("nextPageToken")
    if token:
        t = _decode_token(token)
        if t.get("b") != [i.id for i in issues][:1] + [len(issues)]:
            raise JiraError(400, "The provided next page token is invalid or expired.")
        pos_issue, pos_hist = int(t["i"]), int(t["h"])
    out_logs: list[dict[str, Any]] = []
    count = 0
    while pos_issue < len(issues) and count < size:
        issue = issues[pos_issue]
        rendered = []
        while pos_hist < len(issue.histories) and count < size:
            h = issue.histories[pos_hist]
            pos_hist += 1
            if wanted is not None and not any((it.field_id or it.field) in wanted for it in h.items):
                continue
            rendered.append(render_history(c.store, h, c.dep, c.api, c.base, c.tz, wanted))
            count += 1
        if rendered:
            out_logs.append({"issueId": str(issue.id), "changeHistories": rendered})
        if pos_hist >= len(issue.histories):
            pos_issue, pos_hist = pos_issue + 1, 0
    # skip trailing issues with nothing left to return, so the last page carries no token
    while pos_issue < len(issues) and wanted is not None and not any(
            (it.field_id or it.field) in wanted for h in issues[pos_issue].histories[pos_hist:] for it in h.items):
        pos_issue, pos_hist = pos_issue + 1, 0
    while pos_issue < len(issues) and not issues[pos_issue].histories[pos_hist:]:
        pos_issue, pos_hist = pos_issue + 1, 0
    out: dict[str, Any] = {"issueChangeLogs": out_logs}
    if pos_issue < len(issues):
        out["nextPageToken"] = _encode_token({"b": [i.id for i in issues][:1] + [len(issues)],
                                              "i": pos_issue, "h": pos_hist})
    return json_response(out)


def _statuses(c: _Ctx) -> Response:
    return json_response([render_status(c.store, s, c.base, c.api) for s in c.store.jira_statuses])


def _status_one(c: _Ctx) -> Response:
    ref = c.req.params["ref"]
    for s in c.store.jira_statuses.values():
        if ref == s.id or ref.lower() == s.name.lower():
            return json_response(render_status(c.store, s.id, c.base, c.api))
    return _err(404, f"The status with id '{ref}' does not exist")


def _statuses_search(c: _Ctx) -> Response:
    r = c.req
    start = max(0, _int(r.arg("startAt"), 0, "startAt"))
    size = max(1, min(_int(r.arg("maxResults"), 200, "maxResults"), 200))
    project_id = r.arg("projectId")
    ids = list(c.store.jira_statuses)
    if project_id:
        proj = next((p for p in c.store.jira_projects.values() if p.id == project_id), None)
        ids = [s for s in ids if proj and s in proj.statuses]
    search = (r.arg("searchString") or "").lower()
    ids = [s for s in ids if search in c.store.jira_statuses[s].name.lower()]
    cat = r.arg("statusCategory")
    if cat:
        ids = [s for s in ids if CATEGORIES[c.store.jira_statuses[s].category][3] == cat]
    page = ids[start:start + size]
    values = []
    for sid in page:
        s = c.store.jira_statuses[sid]
        values.append({"id": s.id, "name": s.name, "description": "",
                       "statusCategory": CATEGORIES.get(s.category, CATEGORIES["new"])[3], "scope": {"type": "GLOBAL"}})
    url = f"{c.base}/rest/api/{c.api}/statuses/search"
    out: dict[str, Any] = {"self": f"{url}?startAt={start}&maxResults={size}", "maxResults": size, "startAt": start,
                           "total": len(ids), "isLast": start + len(page) >= len(ids), "values": values}
    if not out["isLast"]:
        out["nextPage"] = f"{url}?startAt={start + size}&maxResults={size}"
    return json_response(out)


def _status_categories(c: _Ctx) -> Response:
    return json_response([{"self": f"{c.base}/rest/api/{c.api}/statuscategory/{cid}", "id": cid, "key": key,
                           "colorName": color, "name": name}
                          for key, (cid, name, color, _) in sorted(CATEGORIES.items(), key=lambda kv: kv[1][0])])


def _fields(c: _Ctx) -> Response:
    if not site_options(c.app).field_listing:
        return _err(403, "You do not have permission to view the field configuration of this site.")
    out = []
    for fid, name, schema, clauses in SYSTEM_FIELDS:
        f: dict[str, Any] = {"id": fid, "key": fid, "name": name, "custom": False, "orderable": fid != "issuekey",
                             "navigable": fid not in NOT_NAVIGABLE, "searchable": True, "clauseNames": clauses}
        if schema:
            f["schema"] = schema
        out.append(f)
    site = c.site
    for fid, name, schema in CUSTOM_FIELDS + [f for f in [APPROVALS_FIELD] if f[0] in site]:
        num = int(fid.rsplit("_", 1)[1])
        out.append({"id": fid, "key": fid, "name": name, "untranslatedName": name, "custom": True,
                    "orderable": True, "navigable": True, "searchable": True,
                    "clauseNames": [f"cf[{num}]", name], "schema": {**schema, "customId": num}})
    if c.dep == "cloud":
        for f in out:
            f.pop("untranslatedName", None)
    return json_response(out)


def _myself(c: _Ctx) -> Response:
    me = c.store.people[c.store.jira_user_pid]
    u = {**(render_user(me, c.dep, c.base, c.api) or {}), "locale": "en_US", "groups": {"size": 1, "items": []},
         "applicationRoles": {"size": 1, "items": []}, "expand": "groups,applicationRoles"}
    return json_response(u)


def _server_info(c: _Ctx) -> Response:
    now = jira_time(c.store.now, c.tz)
    if c.dep == "cloud":
        return json_response({"baseUrl": c.base, "displayUrl": c.base, "version": "1001.0.0-SNAPSHOT",
                              "versionNumbers": [1001, 0, 0], "deploymentType": "Cloud", "buildNumber": 100289,
                              "buildDate": "2025-06-02T00:00:00.000+0000", "serverTime": now,
                              "scmInfo": "0a8d2c1f5e6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d", "serverTitle": "Jira",
                              "serverTimeZone": "Etc/UTC"})
    return json_response({"baseUrl": c.base, "version": "9.12.15", "versionNumbers": [9, 12, 15],
                          "deploymentType": "Server", "buildNumber": 9120015,
                          "buildDate": "2024-10-01T00:00:00.000+0000", "databaseBuildNumber": 9120015,
                          "serverTime": now, "scmInfo": "5d3b5c0b3b7e2a6e1f2c9d8a7b6c5d4e3f2a1b0c",
                          "serverTitle": "Jira"})


def _render_project(c: _Ctx, key: str) -> dict[str, Any]:
    p = c.store.jira_projects[key]
    out = _project_ref(c.store, key, c.base, c.api)
    lead = render_user(c.store.people.get(p.lead), c.dep, c.base, c.api)
    return out | {"expand": "description,lead,issueTypes,url,projectKeys,permissions,insight", "lead": lead,
                  "description": "", "style": "classic", "isPrivate": False, "properties": {}}


def _projects(c: _Ctx) -> Response:
    return json_response([_render_project(c, k) for k in c.store.jira_projects])


def _project_one(c: _Ctx) -> Response:
    ref = c.req.params["ref"]
    for p in c.store.jira_projects.values():
        if ref.upper() == p.key.upper() or ref == p.id:
            return json_response(_render_project(c, p.key))
    return _err(404, f"No project could be found with key '{ref}'.")


def _project_search(c: _Ctx) -> Response:
    r = c.req
    start = max(0, _int(r.arg("startAt"), 0, "startAt"))
    size = max(1, min(_int(r.arg("maxResults"), 50, "maxResults"), 100))
    wanted = {k.strip().upper() for v in r.query.get("keys", []) for k in v.split(",") if k.strip()}
    query = (r.arg("query") or "").lower()
    keys = [k for k, p in c.store.jira_projects.items()
            if (not wanted or k.upper() in wanted) and (query in p.key.lower() or query in p.name.lower())]
    page = keys[start:start + size]
    url = f"{c.base}/rest/api/{c.api}/project/search"
    out: dict[str, Any] = {"self": f"{url}?startAt={start}&maxResults={size}", "maxResults": size, "startAt": start,
                           "total": len(keys), "isLast": start + len(page) >= len(keys),
                           "values": [_render_project(c, k) for k in page]}
    if not out["isLast"]:
        out["nextPage"] = f"{url}?startAt={start + size}&maxResults={size}"
    return json_response(out)


def _link_types(c: _Ctx) -> Response:
    if not site_options(c.app).issue_linking:
        return _err(404, LINKING_DISABLED)
    return json_response({"issueLinkTypes": [
        {"id": tid, "name": name, "inward": inward, "outward": outward,
         "self": f"{c.base}/rest/api/{c.api}/issueLinkType/{tid}"}
        for name, (tid, inward, outward) in LINK_TYPES.items()]})


def render_remote_link(issue: JiraIssue, link: JiraRemoteLink, base: str, api: int) -> dict[str, Any]:
    """A RemoteIssueLink as Jira answers it (Cloud and Data Center alike)."""
    return {"id": link.id, "self": f"{base}/rest/api/{api}/issue/{issue.key}/remotelink/{link.id}",
            "application": {}, "relationship": link.relationship,
            "object": {"url": link.url, "title": link.title,
                       "icon": {"url16x16": "https://github.githubassets.com/favicon.ico", "title": "link"},
                       "status": {"resolved": False, "icon": {}}}}


def _remote_links(c: _Ctx) -> Response:
    mode = site_options(c.app).remote_links
    if mode == "absent":
        return _err(404, "null for uri: " + c.req.base_url + c.req.path)
    if mode == "denied":
        return _err(403, "You do not have the permission to see the specified issue's links.")
    issue = _issue_or_404(c.store, c.req.params["key"])
    return json_response([render_remote_link(issue, x, c.base, c.api) for x in issue.remote_links])


def _priorities(c: _Ctx) -> Response:
    return json_response([{**(_named("priority", n, PRIORITIES, c.base, c.api) or {}), "statusColor": "#cccccc"}
                          for n in PRIORITIES])


def _resolutions(c: _Ctx) -> Response:
    # Cloud's resolutions carry no icon (Data Center's still do)
    return json_response([{k: v for k, v in (_named("resolution", n, RESOLUTIONS, c.base, c.api) or {}).items()
                           if k != "iconUrl" or c.dep != "cloud"} for n in RESOLUTIONS])


def _issuetypes(c: _Ctx) -> Response:
    return json_response([_issuetype(n, c.base, c.api) for n in ISSUETYPES])


def _approvals(c: _Ctx) -> Response:
    jsm = site_options(c.app).jsm
    if jsm == "absent":  # no Service Management on the site: the servicedeskapi resource does not exist
        return _err(404, "null for uri: " + c.req.base_url + c.req.path)
    if jsm == "denied":
        message, key = JSM_DENIED
        return json_response({"errorMessage": message, "i18nErrorMessage": {"i18nKey": key, "parameters": []}}, 403)
    store = c.store
    by_key, by_id = _Index.of(store)
    ref = c.req.params["key"]
    issue = by_key.get(ref.upper()) or by_id.get(ref)
    if issue is None or store.jira_projects[issue.project].type != "service_desk":
        return json_response({"errorMessage": "The request could not be found or you do not have permission to "
                                              "view it.", "i18nErrorMessage": {
                                  "i18nKey": "sd.request.error.not.found", "parameters": []}}, 404)
    start = max(0, _int(c.req.arg("start"), 0, "start"))
    limit = max(1, min(_int(c.req.arg("limit"), 50, "limit"), 50))
    page = issue.approvals[start:start + limit]
    base = f"{c.base}/rest/servicedeskapi"
    links: dict[str, str] = {"base": base, "context": "", "self": f"{base}/request/{issue.id}/approval"
                                                                  f"?start={start}&limit={limit}"}
    last = start + len(page) >= len(issue.approvals)
    if not last:
        links["next"] = f"{base}/request/{issue.id}/approval?start={start + limit}&limit={limit}"
    if start > 0:
        links["prev"] = f"{base}/request/{issue.id}/approval?start={max(0, start - limit)}&limit={limit}"
    return json_response({"_expands": [], "size": len(page), "start": start, "limit": limit, "isLastPage": last,
                          "_links": links,
                          "values": [render_approval(store, issue, a, c.dep, c.base, c.tz) for a in page]})


# -- an issue's parts and the site's catalogues ----------------------------------------------------------
# Comments, worklogs, attachments, components and transitions are derived from the issue (its people, times and
# project), so every client sees the same: the model holds none of them and no metric reads them.
PART_FIELDS = frozenset(f[0] for f in SYSTEM_FIELDS[SYSTEM_FIELDS.index(next(
    f for f in SYSTEM_FIELDS if f[0] == "statuscategorychangedate")):])
LOGGED_FIELDS = frozenset({"timespent", "aggregatetimespent", "progress", "aggregateprogress", "timetracking"})
EMBEDDED_WORKLOGS = 20  # an issue embeds at most this many worklogs; GET issue/{key}/worklog pages them all
COMMENT_TEXTS = ("Picked this up; first pass is in review.", "Can we confirm the expected behaviour with support?",
                 "Blocked on the upstream change, see the linked issue.", "Deployed to staging, looks good.",
                 "Moving this to the next sprint.", "Added details from the customer call.")
COMPONENTS = ("Backend", "Frontend", "Infrastructure")
PROJECT_TYPES = {  # key -> (formatted, color); what Cloud and Data Center list
    "business": ("Business", "#FFAB00"), "service_desk": ("Service Desk", "#00B8D9"), "software": ("Software", "#0065FF")}
GROUPS = ("jira-administrators", "jira-software-users", "jira-servicemanagement-users")


def _salt(issue: JiraIssue, what: str) -> int:
    return zlib.crc32(f"{issue.key}:{what}".encode())


def _version_id(name: str) -> str:
    return str(10000 + zlib.crc32(name.encode()) % 9000)  # as fixVersions render it


def _between(issue: JiraIssue, k: int, n: int) -> datetime:
    """The k-th of n instants spread between the issue's creation and its last update."""
    return (issue.created + (issue.updated - issue.created) * (k + 1) / (n + 1)).replace(microsecond=0)


def _participants(store: Store, issue: JiraIssue) -> list[str]:
    pids = [issue.reporter, issue.assignee, *(h.author for h in issue.histories)]
    return list(dict.fromkeys(p for p in pids if p and p in store.people)) or [store.jira_user_pid]


def issue_comments(store: Store, issue: JiraIssue) -> list[tuple[str, str, datetime, str]]:
    """(id, author pid, created, text), oldest first: none to three per issue."""
    n, people = _salt(issue, "comment") % 4, _participants(store, issue)
    return [(str(issue.id * 8 + k), people[(_salt(issue, "by") + k) % len(people)], _between(issue, k, n),
             COMMENT_TEXTS[(_salt(issue, "text") + k) % len(COMMENT_TEXTS)]) for k in range(n)]


def issue_worklogs(store: Store, issue: JiraIssue) -> list[tuple[str, str, datetime, int]]:
    """(id, author pid, started, seconds), oldest first: work logged on issues that moved past the backlog."""
    if not issue.histories:
        return []
    n, people = _salt(issue, "worklog") % 3, _participants(store, issue)
    who = issue.assignee if issue.assignee in store.people else people[0]
    return [(str(issue.id * 8 + k), who, _between(issue, k, n), 3600 * (1 + (_salt(issue, "h") + k) % 6))
            for k in range(n)]


def _body(text: str, api: int) -> Any:
    return _adf(text) if api == 3 else text


def render_comment(store: Store, issue: JiraIssue, c: tuple[str, str, datetime, str], deployment: str, api: int,
                   base: str, tz: ZoneInfo) -> dict[str, Any]:
    cid, pid, when, text = c
    user = render_user(store.people[pid], deployment, base, api)
    out = {"self": f"{base}/rest/api/{api}/issue/{issue.id}/comment/{cid}", "id": cid, "author": user,
           "body": _body(text, api), "updateAuthor": user, "created": jira_time(when, tz), "updated": jira_time(when, tz)}
    if deployment == "cloud":
        out["jsdPublic"] = True
    return out


def render_worklog(store: Store, issue: JiraIssue, w: tuple[str, str, datetime, int], deployment: str, api: int,
                   base: str, tz: ZoneInfo) -> dict[str, Any]:
    wid, pid, started, seconds = w
    user = render_user(store.people[pid], deployment, base, api)
    return {"self": f"{base}/rest/api/{api}/issue/{issue.id}/worklog/{wid}", "author": user, "updateAuthor": user,
            "comment": _body("Worked on it.", api), "created": jira_time(started, tz), "updated": jira_time(started, tz),
            "started": jira_time(started, tz), "timeSpent": _duration(seconds), "timeSpentSeconds": seconds,
            "id": wid, "issueId": str(issue.id)}


def _duration(seconds: int) -> str:
    """Jira's `1d 2h 30m` (8-hour days, 5-day weeks)."""
    out, rest = [], seconds // 60
    for unit, minutes in (("w", 2400), ("d", 480), ("h", 60), ("m", 1)):
        if rest >= minutes:
            out.append(f"{rest // minutes}{unit}")
            rest %= minutes
    return " ".join(out) or "0m"


def project_components(store: Store, key: str, deployment: str, base: str, api: int) -> list[dict[str, Any]]:
    p = store.jira_projects[key]
    index = list(store.jira_projects).index(key)
    lead = render_user(store.people.get(p.lead), deployment, base, api)
    out = []
    for k, name in enumerate(COMPONENTS):
        cid = str(10000 + index * 10 + k)
        c = {"self": f"{base}/rest/api/{api}/component/{cid}", "id": cid, "name": name,
             "description": f"{name} of {p.name}", "lead": lead, "assigneeType": "PROJECT_DEFAULT",
             "assignee": lead, "realAssigneeType": "PROJECT_DEFAULT", "realAssignee": lead,
             "isAssigneeTypeValid": True, "project": p.key, "projectId": int(p.id)}
        if deployment == "cloud" and p.lead in store.people:
            c["leadAccountId"] = store.people[p.lead].account_id
        out.append(c)
    return out


def issue_component(issue: JiraIssue) -> int | None:
    """The index in COMPONENTS of the issue's component; two issues in three have one."""
    k = _salt(issue, "component") % 3
    return None if k == 2 else (_salt(issue, "which") % len(COMPONENTS))


def project_versions(store: Store, key: str, base: str, api: int, tz: ZoneInfo) -> list[dict[str, Any]]:
    """The project's versions: every fix version its issues carry, released once all of their issues are resolved."""
    p = store.jira_projects[key]
    issues: dict[str, list[JiraIssue]] = {}
    for i in store.jira_issues:
        if i.project == key:
            for v in i.fix_versions:
                issues.setdefault(v, []).append(i)
    out = []
    for name in sorted(issues, key=lambda n: [int(x) if x.isdigit() else x for x in n.split(".")]):
        done = [i.resolutiondate for i in issues[name] if i.resolutiondate is not None]
        released = len(done) == len(issues[name])
        v: dict[str, Any] = {"self": f"{base}/rest/api/{api}/version/{_version_id(name)}", "id": _version_id(name),
                             "description": "", "name": name, "archived": False, "released": released}
        if released:
            day = max(done).astimezone(tz).date()
            v |= {"releaseDate": day.isoformat(), "userReleaseDate": day.strftime("%d/%b/%y").lstrip("0")}
        v |= {"overdue": False, "projectId": int(p.id)}
        out.append(v)
    return out


def issue_transitions(store: Store, issue: JiraIssue, base: str, api: int, with_fields: bool = False,
                      only: str | None = None) -> list[dict[str, Any]]:
    """The transitions open from the issue's status: one to each other status of its project's workflow."""
    statuses = store.jira_projects[issue.project].statuses
    out = []
    for idx, sid in enumerate(statuses):
        tid = str(11 + 10 * idx)
        if sid == issue.status or (only is not None and only != tid):
            continue
        to = render_status(store, sid, base, api)
        t: dict[str, Any] = {"id": tid, "name": to["name"], "to": to, "hasScreen": False, "isGlobal": True,
                             "isInitial": False, "isAvailable": True, "isConditional": False, "isLooped": False}
        if with_fields:
            t["fields"] = {}
        out.append(t)
    return out


def _part_value(store: Store, issue: JiraIssue, fid: str, deployment: str, api: int, base: str,
                tz: ZoneInfo) -> Any:
    """The value of a field `*all` adds (PART_FIELDS)."""
    logged = sum(w[3] for w in issue_worklogs(store, issue)) if fid in LOGGED_FIELDS else 0
    if fid == "statuscategorychangedate":
        moved = [h.created for h in issue.histories if any(it.field == "status" for it in h.items)]
        return jira_time(moved[-1] if moved else issue.created, tz)
    if fid == "creator":
        return render_user(store.people.get(issue.reporter), deployment, base, api)
    if fid == "components":
        k = issue_component(issue)
        if k is None:
            return []
        c = project_components(store, issue.project, deployment, base, api)[k]
        return [{"self": c["self"], "id": c["id"], "name": c["name"], "description": c["description"]}]
    if fid in ("versions", "subtasks"):
        return []
    if fid in ("environment", "duedate", "security", "lastViewed", "timeoriginalestimate", "timeestimate",
               "aggregatetimeoriginalestimate", "aggregatetimeestimate"):
        return None
    if fid in ("timespent", "aggregatetimespent"):
        return logged or None
    if fid == "workratio":
        return -1  # no original estimate
    if fid in ("progress", "aggregateprogress"):
        return {"progress": logged, "total": logged} | ({"percent": 100} if logged else {})
    if fid == "timetracking":
        return {"timeSpent": _duration(logged), "timeSpentSeconds": logged} if logged else {}
    if fid == "watches":
        return {"self": f"{base}/rest/api/{api}/issue/{issue.key}/watchers", "watchCount": 1 + _salt(issue, "w") % 3,
                "isWatching": False}
    if fid == "votes":
        return {"self": f"{base}/rest/api/{api}/issue/{issue.key}/votes", "votes": 0, "hasVoted": False}
    if fid == "attachment":
        if _salt(issue, "attachment") % 4:
            return []
        aid, who = str(issue.id * 4), store.people.get(issue.reporter)
        name = f"screenshot-{issue.key.lower()}.png"
        content = (f"{base}/rest/api/3/attachment/content/{aid}" if deployment == "cloud"
                   else f"{base}/secure/attachment/{aid}/{name}")
        return [{"self": f"{base}/rest/api/{api}/attachment/{aid}", "id": aid, "filename": name,
                 "author": render_user(who, deployment, base, api), "created": jira_time(issue.created, tz),
                 "size": 20_000 + _salt(issue, "size") % 200_000, "mimeType": "image/png", "content": content,
                 "thumbnail": content.replace("/content/", "/thumbnail/") if deployment == "cloud" else
                 f"{base}/secure/thumbnail/{aid}/_thumb_{aid}.png"}]
    if fid == "comment":
        cs = issue_comments(store, issue)
        return {"comments": [render_comment(store, issue, c, deployment, api, base, tz) for c in cs],
                "self": f"{base}/rest/api/{api}/issue/{issue.id}/comment", "maxResults": len(cs), "total": len(cs),
                "startAt": 0}
    if fid == "worklog":
        ws = issue_worklogs(store, issue)
        return {"startAt": 0, "maxResults": EMBEDDED_WORKLOGS, "total": len(ws),
                "worklogs": [render_worklog(store, issue, w, deployment, api, base, tz)
                             for w in ws[:EMBEDDED_WORKLOGS]]}
    return None


def _page(c: _Ctx, path: str, items: list, default: int, cap: int, render: Callable[[Any], Any],
          extra: dict[str, str] | None = None) -> dict[str, Any]:
    """Jira's PageBean: startAt/maxResults/total/isLast/values with `self` and `nextPage` links."""
    start = max(0, _int(c.req.arg("startAt"), 0, "startAt"))
    size = max(1, min(_int(c.req.arg("maxResults"), default, "maxResults"), cap))
    page = items[start:start + size]
    url = f"{c.base}/rest/api/{c.api}/{path}"
    q = {k: v for k, v in (extra or {}).items() if v}
    out: dict[str, Any] = {"self": f"{url}?{urlencode({**q, 'startAt': start, 'maxResults': size})}",
                           "maxResults": size, "startAt": start, "total": len(items),
                           "isLast": start + len(page) >= len(items), "values": [render(x) for x in page]}
    if not out["isLast"]:
        out["nextPage"] = f"{url}?{urlencode({**q, 'startAt': start + size, 'maxResults': size})}"
    return out


def _project_or_404(c: _Ctx) -> str:
    ref = c.req.params["ref"]
    for p in c.store.jira_projects.values():
        if ref.upper() == p.key.upper() or ref == p.id:
            return p.key
    raise JiraError(404, f"No project could be found with key '{ref}'.")


def _comments(c: _Ctx) -> Response:
    issue = _issue_or_404(c.store, c.req.params["key"])
    cs = issue_comments(c.store, issue)
    order = c.req.arg("orderBy") or "created"
    if order not in ("created", "+created", "-created"):
        raise JiraError(400, f"The value '{order}' is not valid for orderBy; use created, +created or -created.")
    if order == "-created":
        cs = cs[::-1]
    start = max(0, _int(c.req.arg("startAt"), 0, "startAt"))
    default = 100 if c.dep == "cloud" else 5000  # Cloud's documented default; Data Center answers all of them
    size = max(0, min(_int(c.req.arg("maxResults"), default, "maxResults"), 5000))
    page = cs[start:start + size]
    return json_response({"startAt": start, "maxResults": size, "total": len(cs),
                          "comments": [render_comment(c.store, issue, x, c.dep, c.api, c.base, c.tz) for x in page]})


def _worklogs(c: _Ctx) -> Response:
    issue = _issue_or_404(c.store, c.req.params["key"])
    ws = issue_worklogs(c.store, issue)
    after, before = c.req.arg("startedAfter"), c.req.arg("startedBefore")
    if after:
        ws = [w for w in ws if w[2].timestamp() * 1000 >= _int(after, 0, "startedAfter")]
    if before:
        ws = [w for w in ws if w[2].timestamp() * 1000 < _int(before, 0, "startedBefore")]
    start = max(0, _int(c.req.arg("startAt"), 0, "startAt"))
    size = max(1, min(_int(c.req.arg("maxResults"), 5000, "maxResults"), 5000))
    page = ws[start:start + size]
    return json_response({"startAt": start, "maxResults": size, "total": len(ws),
                          "worklogs": [render_worklog(c.store, issue, w, c.dep, c.api, c.base, c.tz) for w in page]})


def _transitions(c: _Ctx) -> Response:
    issue = _issue_or_404(c.store, c.req.params["key"])
    with_fields = "transitions.fields" in _split(c.req.arg("expand"))
    return json_response({"expand": "transitions", "transitions": issue_transitions(
        c.store, issue, c.base, c.api, with_fields, c.req.arg("transitionId"))})


def _versions_page(c: _Ctx) -> Response:
    key = _project_or_404(c)
    vs = project_versions(c.store, key, c.base, c.api, c.tz)
    query = (c.req.arg("query") or "").lower()
    vs = [v for v in vs if query in v["name"].lower() or query in v["description"].lower()]
    status = {s.strip() for s in (c.req.arg("status") or "").split(",") if s.strip()}
    if status:
        vs = [v for v in vs if ("released" if v["released"] else "unreleased") in status
              or ("archived" in status and v["archived"])]
    order = c.req.arg("orderBy") or ""
    if order.lstrip("+-") in ("name", "sequence", "releaseDate", "description"):
        field_name = {"sequence": "id"}.get(order.lstrip("+-"), order.lstrip("+-"))
        vs = sorted(vs, key=lambda v: str(v.get(field_name) or ""), reverse=order.startswith("-"))
    extra = {"orderBy": order, "query": c.req.arg("query") or "", "status": c.req.arg("status") or ""}
    return json_response(_page(c, f"project/{key}/version", vs, 50, 50, lambda v: v, extra))


def _versions(c: _Ctx) -> Response:
    return json_response(project_versions(c.store, _project_or_404(c), c.base, c.api, c.tz))


def _components_page(c: _Ctx) -> Response:
    key = _project_or_404(c)
    counts = [0] * len(COMPONENTS)
    for i in c.store.jira_issues:
        k = issue_component(i) if i.project == key else None
        if k is not None:
            counts[k] += 1
    comps = [x | {"issueCount": n} for x, n in zip(project_components(c.store, key, c.dep, c.base, c.api), counts)]
    for x in comps:
        x.pop("leadAccountId", None)  # ComponentWithIssueCount has no such key
    query = (c.req.arg("query") or "").lower()
    comps = [x for x in comps if query in x["name"].lower() or query in x["description"].lower()]
    return json_response(_page(c, f"project/{key}/component", comps, 50, 50, lambda x: x,
                               {"query": c.req.arg("query") or ""}))


def _components(c: _Ctx) -> Response:
    return json_response(project_components(c.store, _project_or_404(c), c.dep, c.base, c.api))


def _project_types(c: _Ctx) -> Response:
    return json_response([{"key": key, "formattedKey": name, "descriptionI18nKey": f"jira.project.type.{key}.description",
                           "icon": base64.b64encode(f"<svg><title>{name}</title></svg>".encode()).decode(),
                           "color": color} for key, (name, color) in PROJECT_TYPES.items()])


def _priority_search(c: _Ctx) -> Response:
    ids = {x for v in c.req.query.get("id", []) for x in v.split(",") if x}
    name = (c.req.arg("priorityName") or "").lower()
    only_default = (c.req.arg("onlyDefault") or "").lower() == "true"
    names = [n for n, pid in PRIORITIES.items() if (not ids or pid in ids) and name in n.lower()
             and (not only_default or n == "Medium")]
    return json_response(_page(c, "priority/search", names, 50, 50, lambda n: {
        **(_named("priority", n, PRIORITIES, c.base, c.api) or {}), "statusColor": "#cccccc", "isDefault": n == "Medium"}))


def _resolution_search(c: _Ctx) -> Response:
    ids = {x for v in c.req.query.get("id", []) for x in v.split(",") if x}
    only_default = (c.req.arg("onlyDefault") or "").lower() == "true"
    names = [n for n, rid in RESOLUTIONS.items() if (not ids or rid in ids) and not only_default]
    return json_response(_page(c, "resolution/search", names, 50, 50, lambda n: {
        k: v for k, v in {**(_named("resolution", n, RESOLUTIONS, c.base, c.api) or {}), "default": False}.items()
        if k != "iconUrl"}))


def _people(store: Store) -> list[Person]:
    return sorted(store.people.values(), key=lambda p: p.pid)


def _users_search(c: _Ctx) -> Response:
    start = max(0, _int(c.req.arg("startAt"), 0, "startAt"))
    size = max(1, min(_int(c.req.arg("maxResults"), 50, "maxResults"), 1000))
    return json_response([render_user(p, c.dep, c.base, c.api) for p in _people(c.store)[start:start + size]])


def _user_search(c: _Ctx) -> Response:
    """Cloud: `query` (or `accountId`); Data Center: `username`, matched on name, display name and email."""
    q = (c.req.arg("query") or c.req.arg("username") or "").lower()
    account = c.req.arg("accountId")
    if not q and not account:
        raise JiraError(400, "The query parameter 'query' is required." if c.dep == "cloud"
                        else "The username query parameter was not provided")
    found = [p for p in _people(c.store) if (account and p.account_id == account) or (q and (
        p.name.lower().startswith(q) or p.email.lower().startswith(q) or p.username.lower().startswith(q)
        or any(w.startswith(q) for w in p.name.lower().split())))]
    start = max(0, _int(c.req.arg("startAt"), 0, "startAt"))
    size = max(1, min(_int(c.req.arg("maxResults"), 50, "maxResults"), 1000))
    return json_response([render_user(p, c.dep, c.base, c.api) for p in found[start:start + size]])


def _user(c: _Ctx) -> Response:
    r = c.req
    account, username, key = r.arg("accountId"), r.arg("username"), r.arg("key")
    person = next((p for p in _people(c.store) if (account and p.account_id == account) or (
        username and p.username == username) or (key and p.user_key == key)), None)
    if person is None:
        if c.dep == "cloud":
            raise JiraError(404, "Specified user does not exist or you do not have required permissions")
        raise JiraError(404, f"The user named '{username or key}' does not exist")
    return json_response(render_user(person, c.dep, c.base, c.api))


def _group_members_of(store: Store, group: str) -> list[Person] | None:
    people = [p for p in _people(store) if not p.bot]
    if group == "jira-administrators":
        return [store.people[store.jira_user_pid]]
    if group == "jira-software-users":
        return people
    if group == "jira-servicemanagement-users" and any(p.type == "service_desk" for p in store.jira_projects.values()):
        teams = {p.team for p in store.jira_projects.values() if p.type == "service_desk"}
        return [p for p in people if p.team in teams]
    return None


def _group_member(c: _Ctx) -> Response:
    name = c.req.arg("groupname") or ""
    gid = c.req.arg("groupId")
    if gid:
        name = next((g for g in GROUPS if str(uuid.uuid5(uuid.NAMESPACE_DNS, g)) == gid), gid)
    if not name:
        raise JiraError(400, "You must specify a group name or a group ID.")
    members = _group_members_of(c.store, name)
    if members is None:
        raise JiraError(404, f"Group with name '{name}' does not exist.")

    def detail(p: Person) -> dict[str, Any]:
        u = render_user(p, c.dep, c.base, c.api) or {}
        return {k: v for k, v in u.items() if k != "accountType" or c.dep == "cloud"}
    return json_response(_page(c, "group/member", members, 50, 50, detail, {"groupname": name}))


def _group(c: _Ctx) -> Response:
    """GET group (deprecated on Cloud, still served; the `jira` package reads members with it):
    `expand=users` or `users[start:end]` (inclusive, at most 50) lists members."""
    name = c.req.arg("groupname") or ""
    gid = c.req.arg("groupId")
    if gid:
        name = next((g for g in GROUPS if str(uuid.uuid5(uuid.NAMESPACE_DNS, g)) == gid), gid)
    if not name:
        raise JiraError(400, "You must specify a group name or a group ID.")
    members = _group_members_of(c.store, name)
    if members is None:
        raise JiraError(404, f"Group with name '{name}' does not exist.")
    m = re.fullmatch(r"users(?:\[(\d+):(\d+)\])?", c.req.arg("expand") or "")
    start, end = (int(m.group(1)), int(m.group(2))) if m and m.group(1) else (0, 49)
    end = min(end, start + 49, len(members) - 1)
    items = [render_user(p, c.dep, c.base, c.api) for p in members[start:end + 1]] if m else []
    gid = str(uuid.uuid5(uuid.NAMESPACE_DNS, name))
    return json_response({"name": name, "groupId": gid, "self": f"{c.base}/rest/api/{c.api}/group?groupId={gid}",
                          "users": {"size": len(members), "items": items, "max-results": 50,
                                    "start-index": start if items else 0, "end-index": end if items else 0},
                          "expand": "users"})


def _labels(c: _Ctx) -> Response:
    labels = sorted({lab for i in c.store.jira_issues for lab in i.labels})
    return json_response(_page(c, "label", labels, 1000, 1000, lambda x: x))


# -- registration ------------------------------------------------------------------------------------

def _wrap(app: AppView, fn: Callable[[_Ctx], Response], cloud_only: bool = False,
          v3_only: bool = False) -> Callable:
    def handler(req: Request) -> Response:
        version = req.params.get("v", "2")
        api = 3 if version == "3" else 2
        if app.jira_deployment == "datacenter" and (version == "3" or cloud_only):
            return _err(404, "null for uri: " + req.base_url + req.path)  # what DC answers for unknown resources
        if v3_only and api != 3:
            return _err(404, "null for uri: " + req.base_url + req.path)
        ok = _authorized(app, req)
        if ok is not True:
            return _unauthorized(app, ok or None)
        try:
            ctx = _Ctx(app, req, api, req.base_url)
            key = ("jira", fn.__name__, app.jira_deployment, api, req.base_url, req.method, req.path,
                   tuple(sorted((k, tuple(v)) for k, v in req.query.items())), req.body, _site_key(app))
            hit = cache.of(app.store).response(key, lambda: fn(ctx), lambda r: len(r.body) + 200)
            return Response(hit.status, hit.body, dict(hit.headers))
        except JiraError as e:
            return _err(e.status, str(e))
    return handler


def _site_key(app: AppView) -> tuple:
    """What, besides the store and the request, a handler's answer depends on: the site's options."""
    return (site_fields(app), site_options(app))


def register(app: AppView) -> None:
    if not hasattr(app, "jira_oauth"):
        app.jira_oauth = False  # Data Center: also accept OAuth 1.0a RSA-SHA1 (sandbox/jira_oauth.py)
    if not hasattr(app, "jira_hide_fields"):
        # Field names or ids this site does not offer (not in /field, never rendered), e.g. {"Approvals"}.
        app.jira_hide_fields = set()
    r = app.router
    v = r"/rest/api/(?P<v>2|3|latest)"
    routes: list[tuple[str, str, str, Callable[[_Ctx], Response], dict[str, bool]]] = [
        ("GET", "/search/jql", "jira.search_jql", _search_jql, {"cloud_only": True}),
        ("POST", "/search/jql", "jira.search_jql", _search_jql, {"cloud_only": True}),
        ("POST", "/search/approximate-count", "jira.approximate_count", _approximate_count, {"cloud_only": True}),
        ("GET", "/search", "jira.search", _search_legacy, {}),
        ("POST", "/search", "jira.search", _search_legacy, {}),
        ("GET", r"/issue/(?P<key>[^/]+)/changelog", "jira.changelog", _changelog, {"cloud_only": True}),
        ("GET", r"/issue/(?P<key>[^/]+)/remotelink", "jira.remotelink", _remote_links, {}),
        ("POST", "/changelog/bulkfetch", "jira.bulkfetch", _bulkfetch, {"cloud_only": True}),
        ("GET", r"/issue/(?P<key>[^/]+)", "jira.issue", _issue, {}),
        ("GET", "/status", "jira.status", _statuses, {}),
        ("GET", r"/status/(?P<ref>[^/]+)", "jira.status", _status_one, {}),
        ("GET", "/statuses/search", "jira.statuses_search", _statuses_search, {"cloud_only": True}),
        ("GET", "/statuscategory", "jira.statuscategory", _status_categories, {}),
        ("GET", "/field", "jira.field", _fields, {}),
        ("GET", "/myself", "jira.myself", _myself, {}),
        ("GET", "/serverInfo", "jira.serverInfo", _server_info, {}),
        ("GET", "/project", "jira.project", _projects, {}),
        ("GET", "/project/search", "jira.project_search", _project_search, {"cloud_only": True}),
        ("GET", r"/project/(?P<ref>[^/]+)", "jira.project", _project_one, {}),
        ("GET", "/issueLinkType", "jira.issueLinkType", _link_types, {}),
        ("GET", "/priority", "jira.priority", _priorities, {}),
        ("GET", "/resolution", "jira.resolution", _resolutions, {}),
        ("GET", "/issuetype", "jira.issuetype", _issuetypes, {}),
    ]
    # what third-party clients call beyond flowlens (Data Center lacks the */search ones and label); first, so that
    # `project/type` is not read as `project/{ref}`
    routes = [
        ("GET", r"/issue/(?P<key>[^/]+)/comment", "jira.comments", _comments, {}),
        ("GET", r"/issue/(?P<key>[^/]+)/worklog", "jira.worklogs", _worklogs, {}),
        ("GET", r"/issue/(?P<key>[^/]+)/transitions", "jira.transitions", _transitions, {}),
        ("GET", r"/project/type", "jira.project_type", _project_types, {}),
        ("GET", r"/project/(?P<ref>[^/]+)/version", "jira.project_version", _versions_page, {}),
        ("GET", r"/project/(?P<ref>[^/]+)/versions", "jira.project_versions", _versions, {}),
        ("GET", r"/project/(?P<ref>[^/]+)/component", "jira.project_component", _components_page,
         {"cloud_only": True}),
        ("GET", r"/project/(?P<ref>[^/]+)/components", "jira.project_components", _components, {}),
        ("GET", "/priority/search", "jira.priority_search", _priority_search, {"cloud_only": True}),
        ("GET", "/resolution/search", "jira.resolution_search", _resolution_search, {"cloud_only": True}),
        ("GET", "/users/search", "jira.users_search", _users_search, {"cloud_only": True}),
        ("GET", "/user/search", "jira.user_search", _user_search, {}),
        ("GET", "/user", "jira.user", _user, {}),
        ("GET", "/group/member", "jira.group_member", _group_member, {}),
        ("GET", "/group", "jira.group", _group, {}),
        ("GET", "/label", "jira.label", _labels, {"cloud_only": True}),
    ] + routes
    for method, path, name, fn, opts in routes:
        r.add(method, v + path, name, _wrap(app, fn, **opts))
    r.add("GET", r"/rest/servicedeskapi/request/(?P<key>[^/]+)/approval", "jira.approvals", _wrap(app, _approvals))
