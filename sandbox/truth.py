"""The sandbox's ground truth: flow metrics computed straight from the semantic Store.

Follows docs/metrics.md and docs/metrics-rulings.md, independently of any API rendering or SQL, so the
warehouse's marts can be compared with it item by item. Durations are seconds; open intervals are cut at as_of.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from sandbox.calendar import DEFAULT_CALENDAR, business_seconds
from sandbox.model import (
    DELETED_PERSON,
    DELETED_PID,
    GHOST,
    Calendar,
    GhEvent,
    GhIssue,
    GhPull,
    JiraIssue,
    Store,
)

DECISION_LABELS = ("needs-decision", "needs-discussion")
LABEL_STATES = {"blocked": "blocked", "needs-decision": "decision", "needs-discussion": "decision"}  # as gen_config
SCOPE_FIELDS = {"fix version", "fix versions", "sprint", "parent", "epic link", "parent link"}
REJECT_NAME = re.compile(r"reject|declin|deny|denied|won['’]?t", re.IGNORECASE)
BLOCKED_BY = re.compile(r"^\s*this issue is blocked by\s+(\S+)\s*$", re.IGNORECASE)

Interval = tuple[datetime, datetime]


class Handoff(NamedTuple):
    handed_off_at: datetime
    from_owner: str
    to_owner: str
    from_team: str
    to_team: str
    is_team_handoff: bool
    is_bounce: bool
    kind: str  # reassignment | review_request | review_return


class Reversal(NamedTuple):
    kind: str
    at: datetime


@dataclass
class StatusInterval:
    status: str
    state: str
    entered_at: datetime
    exited_at: datetime  # as_of while open
    owner_id: str | None
    is_open: bool
    calendar_s: float
    business_s: float


@dataclass
class ApprovalWait:
    source_kind: str  # jira_status | jsm | github_review
    requested_at: datetime
    decided_at: datetime | None
    requested_of: str | None
    requested_of_team: str
    decided_by: str | None
    outcome: str | None  # None while open
    is_open: bool
    calendar_s: float
    business_s: float
    body: str | None = None
    requested_by: str | None = None  # who asked: the status change's, review request's actor (issue 16)


@dataclass
class DecisionWait:
    requested_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decided_by_team: str
    owner_team: str
    is_remote_decision: bool
    outcome: str | None  # decided | closed; None while open
    is_open: bool
    calendar_s: float
    business_s: float
    requested_by: str | None = None  # who asked: the status change's or label's actor (issue 16)


@dataclass
class BlockedPiece:
    cause: str  # blocked_status | flag | dependency
    started_at: datetime
    ended_at: datetime
    blocking_item: str | None = None
    blocking_team: str | None = None
    is_cross_team: bool | None = None
    waited_on: str | None = None  # the blocking item (dependency, or an "is blocked by" link open during it)
    waited_on_team: str | None = None  # its owner's team when the piece starts, else its team


@dataclass
class Blocked:
    blocked_s: float
    pieces: list[BlockedPiece]


@dataclass
class ItemFlow:
    source: str
    kind: str
    team: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cycle_s: float | None
    active_s: float
    waiting_s: float
    flow_efficiency: float | None
    handoffs: int
    team_handoffs: int
    bounces: int
    approval_wait_s: float
    decision_wait_s: float
    blocked_s: float
    reversals: int
    unowned_active_s: float
    approval_requests: int = 0
    approval_rounds: int = 0
    fast_approvals: int = 0
    time_to_first_review_s: float | None = None  # pull requests: first ready-for-review moment -> first review
    time_to_approval_s: float | None = None  # ... -> first approval


@dataclass
class Truth:
    as_of: datetime
    jira_deployment: str
    item_team: dict[str, str] = field(default_factory=dict)
    status_intervals: dict[str, list[StatusInterval]] = field(default_factory=dict)
    handoffs: dict[str, list[Handoff]] = field(default_factory=dict)
    approval_waits: dict[str, list[ApprovalWait]] = field(default_factory=dict)
    decision_waits: dict[str, list[DecisionWait]] = field(default_factory=dict)
    blocked: dict[str, Blocked] = field(default_factory=dict)
    reversals: dict[str, list[Reversal]] = field(default_factory=dict)
    item_flow: dict[str, ItemFlow] = field(default_factory=dict)
    owner_timeline: dict[str, list[tuple[datetime, str | None]]] = field(default_factory=dict)  # (since, owner)


# ---------------------------------------------------------------- interval arithmetic (half-open, UTC)

def _union(ivs) -> list[Interval]:
    out: list[list[datetime]] = []
    for s, e in sorted(iv for iv in ivs if iv[1] > iv[0]):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def _intersect(a, b) -> list[Interval]:
    a, b, out, i, j = _union(a), _union(b), [], 0, 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if e > s:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _subtract(a, b) -> list[Interval]:
    out = []
    b = _union(b)
    for s, e in _union(a):
        cur = s
        for bs, be in b:
            if be <= cur or bs >= e:
                continue
            if bs > cur:
                out.append((cur, bs))
            cur = max(cur, be)
        if cur < e:
            out.append((cur, e))
    return out


def _length(ivs) -> float:
    return sum((e - s).total_seconds() for s, e in _union(ivs))


# ---------------------------------------------------------------- people, teams, calendars

class _Ctx:
    def __init__(self, store: Store, as_of: datetime, deployment: str):
        self.store, self.as_of, self.deployment = store, as_of, deployment
        self.by_login = {p.login: p for p in store.people.values() if p.login}
        self.pid_of: dict[str, str] = {}
        for p in store.people.values():  # bots have no identity entry: their GitHub id has no team
            self.pid_of[self.jira_id(p.pid)] = p.pid
        self.members = defaultdict(list)
        for m in store.memberships:
            self.members[m.pid].append(m)
        self.slug_team = {t.github_slug: t.key for t in store.teams.values() if t.github_slug}
        self.repo_team = {r.full_name: r.team for r in store.github_repos}
        self.issues_by_key = {i.key: i for i in store.jira_issues}
        self.jira_items: dict[str, _Item] = {}  # filled once every item is read
        self.item_team: dict[str, str] = {}

    def jira_id(self, pid: str | None) -> str | None:
        if pid is None:
            return None
        if pid == DELETED_PID:
            return DELETED_PERSON
        p = self.store.people.get(pid)
        if p is None:
            return f"jira:{pid}"
        return f"jira:{p.account_id if self.deployment == 'cloud' else p.user_key}"

    def is_bot(self, login: str | None) -> bool:
        p = self.by_login.get(login or "")
        return bool(login) and (login.endswith("[bot]") or (p is not None and p.bot))

    def gh_id(self, login: str) -> str:
        """A GitHub login's canonical id: the identity map joins every sandbox person to their Jira id."""
        if login == GHOST:  # a deleted account (REST's ghost; GraphQL's null)
            return DELETED_PERSON
        p = self.by_login.get(login)
        if p is not None and not self.is_bot(login):
            return self.jira_id(p.pid)
        return f"github:{login}"

    def team_of(self, person: str | None, t: datetime, fallback: str = "unknown") -> str:
        if person is None:
            return "unknown"
        if person.startswith("github-team:"):
            return self.slug_team.get(person.split("/", 1)[-1], "unknown")
        pid = self.pid_of.get(person)
        for m in self.members.get(pid, ()):
            if (m.valid_from is None or m.valid_from <= t) and (m.valid_to is None or t < m.valid_to):
                return m.team
        return fallback or "unknown"

    def calendar(self, team: str) -> Calendar:
        t = self.store.teams.get(team)
        return t.calendar if t is not None else DEFAULT_CALENDAR


# ---------------------------------------------------------------- per-item working state

@dataclass
class _Item:
    item_id: str
    source: str
    kind: str
    team: str
    created: datetime
    visits: list[dict] = field(default_factory=list)  # status, state, entered, exited|None, owner
    owner_tl: list[tuple[datetime, str | None]] = field(default_factory=list)
    handoffs: list[Handoff] = field(default_factory=list)
    approvals: list[dict] = field(default_factory=list)
    decisions: list[dict] = field(default_factory=list)
    pieces: list[BlockedPiece] = field(default_factory=list)
    reversals: list[Reversal] = field(default_factory=list)
    scope_changes: list[tuple[str, datetime]] = field(default_factory=list)
    deps: list[tuple[str, Interval]] = field(default_factory=list)  # Jira: (blocking key, link interval)
    review_times: tuple[float | None, float | None] = (None, None)  # PRs: to first review, to approval
    person_team: str = "unknown"  # team of a person without a membership (Jira: the item's Team field)

    def done_intervals(self, as_of: datetime) -> list[Interval]:
        return _union((v["entered"], v["exited"] or as_of) for v in self.visits if v["state"] == "done")

    def not_done_intervals(self, as_of: datetime) -> list[Interval]:
        return _subtract([(self.created, as_of)], self.done_intervals(as_of))


def _owner_at(tl: list[tuple[datetime, str | None]], t: datetime) -> str | None:
    owner = None
    for ts, o in tl:
        if ts > t:
            break
        owner = o
    return owner


# ---------------------------------------------------------------- Jira

def _jira_sorted(issue: JiraIssue):
    """Histories by (created, id); within one, status items before the others."""
    for h in sorted(issue.histories, key=lambda h: (h.created, h.id)):
        items = sorted(h.items, key=lambda it: 0 if it.field.lower() == "status" else 1)
        for it in items:
            yield h, it


def _jira_item(ctx: _Ctx, issue: JiraIssue) -> _Item:
    store, as_of = ctx.store, ctx.as_of
    project = store.jira_projects.get(issue.project)
    item_id = f"jira:{issue.key}"
    changes = list(_jira_sorted(issue))
    status_items = [it for _, it in changes if it.field.lower() == "status"]
    assignee_items = [it for _, it in changes if it.field.lower() == "assignee"]
    status = status_items[0].from_ if status_items else issue.status
    assignee = assignee_items[0].from_ if assignee_items else issue.assignee

    team = project.team if project is not None and project.team else None
    if not team:
        team = issue.team
    if not team:
        first = next(((h, it) for h, it in changes if it.field.lower() == "assignee" and it.to), None)
        if first is not None:
            team = ctx.team_of(ctx.jira_id(first[1].to), first[0].created, issue.team or "unknown")
        elif assignee:
            team = ctx.team_of(ctx.jira_id(assignee), issue.created, issue.team or "unknown")
        else:
            team = ctx.team_of(ctx.jira_id(issue.reporter), issue.created, issue.team or "unknown")
    item = _Item(item_id, "jira", issue.issuetype, team or "unknown", issue.created)

    def status_by_id(sid: str | None):
        # a status the site deleted keeps its true state here (the warehouse must infer it)
        return store.jira_statuses.get(sid or "") or store.jira_deleted_statuses.get(sid or "")

    def state_of(sid: str | None) -> str:
        st = status_by_id(sid)
        return st.state if st is not None else "active"

    def name_of(sid: str | None) -> str:
        st = status_by_id(sid)
        return st.name if st is not None else str(sid)

    person_team = issue.team or "unknown"  # fallback for people without a membership: the item's Team field
    owner = ctx.jira_id(assignee)
    last_holder = owner
    held = {owner} if owner else set()
    item.owner_tl.append((issue.created, owner))
    item.visits.append({"status": status, "state": state_of(status), "entered": issue.created, "exited": None,
                            "exit_by": None})
    flag_items = [it for _, it in changes if it.field.lower() == "flagged"]
    if flag_items:  # flagged at creation when the first Flagged change clears it
        initially_flagged = _truthy(flag_items[0].from_string) or not _truthy(flag_items[0].to_string)
    else:
        initially_flagged = issue.flagged
    flag_start = issue.created if initially_flagged else None
    links: dict[str, datetime] = {}
    link_seen: set[str] = set()
    dep_ivs: list[tuple[str, Interval]] = []

    for h, it in changes:
        if h.created > as_of:
            break
        t, f = h.created, it.field.lower()
        # a workflow migration (the history holds a Workflow item) is administrative: it moves the item but
        # reverses nothing, hands nothing off and decides nothing
        migration = any(x.field.lower() == "workflow" for x in h.items)
        if f == "status":
            prev = item.visits[-1]
            prev["exited"], prev["exit_by"] = t, None if migration else ctx.jira_id(h.author)
            new_state = state_of(it.to)
            if prev["state"] == "done" and new_state != "done" and not migration:
                item.reversals.append(Reversal("reopened", t))
            if prev["state"] in ("approval", "queue") and new_state == "backlog" and not migration:
                item.reversals.append(Reversal("status_regression", t))
            item.visits.append({"status": it.to, "state": new_state, "entered": t, "exited": None, "exit_by": None})
        elif f == "assignee":
            new = ctx.jira_id(it.to)
            done = item.visits[-1]["state"] == "done"
            if new is not None and not done and not migration:
                frm = owner if owner is not None else last_holder
                if frm is not None and frm != new:
                    ft, tt = ctx.team_of(frm, t, person_team), ctx.team_of(new, t, person_team)
                    item.handoffs.append(Handoff(t, frm, new, ft, tt, ft != tt, new in held, "reassignment"))
            owner = new
            if new is not None:
                last_holder = new
                held.add(new)
            item.owner_tl.append((t, owner))
        elif f == "flagged":
            if _truthy(it.to_string) and flag_start is None:
                flag_start = t
            elif not _truthy(it.to_string) and flag_start is not None:
                item.pieces.append(BlockedPiece("flag", flag_start, t))
                flag_start = None
        elif f == "link":
            m_to = BLOCKED_BY.match(it.to_string or "")
            m_from = BLOCKED_BY.match(it.from_string or "")
            if m_to:
                link_seen.add(m_to.group(1))
                links.setdefault(m_to.group(1), t)
            if m_from:
                key = m_from.group(1)
                link_seen.add(key)
                if key in links:
                    dep_ivs.append((key, (links.pop(key), t)))
        elif f == "priority":
            item.scope_changes.append(("priority_changed_after_start", t))
        elif f in SCOPE_FIELDS:
            item.scope_changes.append(("scope_changed_after_start", t))
    if flag_start is not None:
        item.pieces.append(BlockedPiece("flag", flag_start, as_of))
    for key, start in links.items():
        dep_ivs.append((key, (start, as_of)))
    for link in issue.links:
        if link.type.lower() == "blocks" and link.inward_key == issue.key and link.outward_key not in link_seen:
            dep_ivs.append((link.outward_key, (issue.created, as_of)))
    item.deps = dep_ivs  # resolved once every issue's done time is known
    item.person_team = person_team

    # Approval and decision visits.
    for i, v in enumerate(item.visits):
        nxt = item.visits[i + 1] if i + 1 < len(item.visits) else None
        v["owner"] = _owner_at(item.owner_tl, v["entered"])
        if v["state"] == "approval":
            outcome = None
            if nxt is not None:
                rejected = nxt["state"] in ("backlog", "active") or REJECT_NAME.search(name_of(nxt["status"]))
                outcome = "rejected" if rejected else "approved"
            item.approvals.append({"source_kind": "jira_status", "requested_at": v["entered"],
                                       "decided_at": v["exited"], "requested_of": v["owner"],
                                       "requested_of_team": ctx.team_of(v["owner"], v["entered"], person_team),
                                       "decided_by": v["exit_by"] if nxt else None, "outcome": outcome, "body": None,
                                       "requested_by": item.visits[i - 1]["exit_by"] if i else None})
        elif v["state"] == "decision":
            item.decisions.append({"requested_at": v["entered"], "decided_at": v["exited"],
                                       "decided_by": v["exit_by"] if nxt else None,
                                       "outcome": "decided" if nxt else None,
                                       "requested_by": item.visits[i - 1]["exit_by"] if i else None})
        elif v["state"] == "blocked":
            item.pieces.append(BlockedPiece("blocked_status", v["entered"], v["exited"] or as_of))
        v["status_name"] = name_of(v["status"])
    # a JSM approval overlapping a visit to an approval state is that request: the visit is not a second one
    jsm_spans = [(a.created, a.completed or datetime.max.replace(tzinfo=UTC))
                 for a in issue.approvals if a.created <= as_of]
    item.approvals = [x for x in item.approvals if x["source_kind"] != "jira_status" or not any(
        s < (x["decided_at"] or as_of) and e > x["requested_at"] for s, e in jsm_spans)]
    for a in issue.approvals:
        if a.created > as_of:
            continue
        closed = a.completed is not None and a.completed <= as_of
        approvers = sorted(ctx.jira_id(pid) for pid, _ in a.approvers)
        deciders = sorted(ctx.jira_id(pid) for pid, d in a.approvers if d != "pending")
        item.approvals.append({"source_kind": "jsm", "requested_at": a.created,
                                   "decided_at": a.completed if closed else None,
                                   "requested_of": ",".join(approvers) or None,
                                   "requested_of_team": ctx.team_of(approvers[0], a.created, person_team)
                                   if len(approvers) == 1 else "unknown",
                                   "decided_by": (",".join(deciders) or None) if closed else None,
                                   "outcome": a.final_decision if closed else None, "body": None})
    return item


def _truthy(s: str | None) -> bool:
    return s is not None and s.strip() != ""


# ---------------------------------------------------------------- GitHub

def _gh_sorted(events: list[GhEvent], as_of: datetime) -> list[GhEvent]:
    return sorted((e for e in events if e.created_at <= as_of), key=lambda e: (e.created_at, e.id))


def _initially_present(current: list[str], events: list[GhEvent], add: str, remove: str, attr: str) -> list[str]:
    """Values (labels, assignees) present at creation: current ones never added, or first removed."""
    first: dict[str, str] = {}
    for e in sorted(events, key=lambda e: (e.created_at, e.id)):
        v = getattr(e, attr)
        if e.event in (add, remove) and v is not None and v not in first:
            first[v] = e.event
    names = list(current) + [v for v in first if v not in current]
    return [v for v in names if first.get(v) == remove or (v not in first and v in current)]


def _gh_states_to_visits(item: _Item, timeline: list[tuple[datetime, str, str | None]]) -> None:
    """(t, state, owner) after each event -> merged visits (last state at an instant wins)."""
    collapsed: list[tuple[datetime, str, str | None]] = []
    for t, st, own in timeline:
        if collapsed and collapsed[-1][0] == t:
            collapsed[-1] = (t, st, own)
        else:
            collapsed.append((t, st, own))
    for t, st, own in collapsed:
        if item.visits and item.visits[-1]["state"] == st:
            continue
        if item.visits:
            item.visits[-1]["exited"] = t
        item.visits.append({"status": st, "status_name": st, "state": st, "entered": t, "exited": None, "owner": own})


def _gh_decisions(ctx: _Ctx, item: _Item, e: GhEvent, open_dec: dict[str, dict]) -> None:
    if e.event == "labeled" and e.label in DECISION_LABELS and e.label not in open_dec:
        open_dec[e.label] = {"requested_at": e.created_at, "decided_at": None, "decided_by": None, "outcome": None,
                             "requested_by": ctx.gh_id(e.actor)}
        item.decisions.append(open_dec[e.label])
    elif e.event == "unlabeled" and e.label in open_dec:
        d = open_dec.pop(e.label)
        d.update(decided_at=e.created_at, decided_by=ctx.gh_id(e.actor), outcome="decided")


def _close_decisions(ctx: _Ctx, e: GhEvent, open_dec: dict[str, dict]) -> None:
    for d in open_dec.values():
        d.update(decided_at=e.created_at, decided_by=ctx.gh_id(e.actor), outcome="closed")
    open_dec.clear()


def _gh_pull(ctx: _Ctx, pr: GhPull) -> _Item:
    as_of = ctx.as_of
    org = pr.repo.split("/", 1)[0]
    author = ctx.gh_id(pr.author)
    team = ctx.repo_team.get(pr.repo) or ctx.team_of(author, pr.created_at)
    item = _Item(f"github:{pr.repo}#{pr.number}", "github", "pull_request", team, pr.created_at)
    events = _gh_sorted(pr.events, as_of)
    dismissed_state = {e.dismissed_review_id: e.dismissed_state for e in pr.events
                       if e.event == "review_dismissed" and e.dismissed_review_id is not None}
    drafts = [e for e in events if e.event in ("ready_for_review", "convert_to_draft")]
    draft = drafts[0].event == "ready_for_review" if drafts else pr.draft
    merged = closed = False
    open_req: list[dict] = []
    reviews: dict[int, list] = {}  # review event id -> [state, dismissed]
    held = {author}
    open_dec: dict[str, dict] = {}
    for label in _initially_present(pr.labels, pr.events, "labeled", "unlabeled", "label"):
        if label in DECISION_LABELS:
            open_dec[label] = {"requested_at": pr.created_at, "decided_at": None, "decided_by": None, "outcome": None}
            item.decisions.append(open_dec[label])

    def state() -> tuple[str, str | None]:
        if merged or closed:
            return "done", author
        if draft:
            return "active", author
        if open_req:
            return "approval", open_req[-1]["requested_of"]
        latest = [s for s, dis in reviews.values() if not dis and s in ("APPROVED", "CHANGES_REQUESTED")]
        return ("queue" if latest and latest[-1] == "APPROVED" else "active"), author

    timeline = [(pr.created_at, *state())]

    def close_all(outcome: str, e: GhEvent) -> None:
        for r in open_req:
            r.update(decided_at=e.created_at, decided_by=ctx.gh_id(e.actor), outcome=outcome)
        open_req.clear()

    for e in events:
        t, bot = e.created_at, ctx.is_bot(e.actor)
        ev = e.event
        if ev == "ready_for_review":
            draft = False
        elif ev == "convert_to_draft":
            draft = True
        elif ev == "review_requested" and not bot and (e.requested_reviewer or e.requested_team):
            key = ctx.gh_id(e.requested_reviewer) if e.requested_reviewer else f"github-team:{org}/{e.requested_team}"
            if not (merged or closed):
                ft, tt = ctx.team_of(author, t), ctx.team_of(key, t)
                item.handoffs.append(Handoff(t, author, key, ft, tt, ft != tt, key in held, "review_request"))
            held.add(key)
            r = {"source_kind": "github_review", "requested_at": t, "decided_at": None, "requested_of": key,
                     "requested_of_team": ctx.team_of(key, t), "decided_by": None, "outcome": None, "body": None,
                     "requested_by": ctx.gh_id(e.actor)}
            item.approvals.append(r)
            open_req.append(r)
        elif ev == "review_request_removed" and not bot and (e.requested_reviewer or e.requested_team):
            key = ctx.gh_id(e.requested_reviewer) if e.requested_reviewer else f"github-team:{org}/{e.requested_team}"
            for r in [r for r in open_req if r["requested_of"] == key]:
                r.update(decided_at=t, decided_by=ctx.gh_id(e.actor), outcome="withdrawn")
                open_req.remove(r)
        elif ev == "reviewed" and not bot:
            reviewer = ctx.gh_id(e.actor)
            st = (e.review_state or "").upper()
            if st == "DISMISSED":
                st = (dismissed_state.get(e.id) or "COMMENTED").upper()
            closing = [r for r in open_req if r["requested_of"] == reviewer
                       or (r["requested_of"].startswith("github-team:") and reviewer != author)]
            for r in closing:
                r.update(decided_at=t, decided_by=reviewer, outcome=st.lower(), body=e.review_body)
                open_req.remove(r)
            if closing and reviewer != author and not (merged or closed):
                ft, tt = ctx.team_of(reviewer, t), ctx.team_of(author, t)
                item.handoffs.append(Handoff(t, reviewer, author, ft, tt, ft != tt, author in held, "review_return"))
            reviews[e.id] = [st, False]
        elif ev == "review_dismissed":
            item.reversals.append(Reversal("approval_dismissed", t))
            if e.dismissed_review_id in reviews:
                reviews[e.dismissed_review_id][1] = True
        elif ev in ("labeled", "unlabeled") and not bot:
            _gh_decisions(ctx, item, e, open_dec)
        elif ev == "merged" and not merged:
            merged = True
            close_all("merged_without_review", e)
            _close_decisions(ctx, e, open_dec)
        elif ev == "closed" and not (merged or closed):
            closed = True
            close_all("closed_without_review", e)
            _close_decisions(ctx, e, open_dec)
        elif ev == "reopened" and closed and not merged:
            closed = False
            item.reversals.append(Reversal("reopened", t))
        timeline.append((t, *state()))
    _gh_states_to_visits(item, timeline)
    item.owner_tl = [(v["entered"], v["owner"]) for v in item.visits]
    ready = pr.created_at if not (drafts[0].event == "ready_for_review" if drafts else pr.draft) else next(
        (e.created_at for e in events if e.event == "ready_for_review"), None)
    human = [e for e in events if e.event == "reviewed" and not ctx.is_bot(e.actor) and e.actor != pr.author
             and ready is not None and e.created_at >= ready]
    approved = [e for e in human if (e.review_state or "").upper() == "APPROVED"
                or ((e.review_state or "").upper() == "DISMISSED" and dismissed_state.get(e.id) == "APPROVED")]
    item.review_times = tuple((x[0].created_at - ready).total_seconds() if x else None for x in (human, approved))
    return item


def _gh_issue(ctx: _Ctx, gi: GhIssue) -> _Item:
    as_of = ctx.as_of
    events = _gh_sorted(gi.events, as_of)
    labels = _initially_present(gi.labels, gi.events, "labeled", "unlabeled", "label")  # order of addition
    assignees = _initially_present(gi.assignees, gi.events, "assigned", "unassigned", "assignee")
    team = ctx.repo_team.get(gi.repo)
    if not team:
        first = next((e for e in events if e.event == "assigned" and e.assignee), None)
        if assignees:
            team = ctx.team_of(ctx.gh_id(assignees[0]), gi.created_at)
        elif first is not None:
            team = ctx.team_of(ctx.gh_id(first.assignee), first.created_at)
        else:
            team = ctx.team_of(ctx.gh_id(gi.author), gi.created_at)
    item = _Item(f"github:{gi.repo}#{gi.number}", "github", "issue", team, gi.created_at)
    closed = False
    open_dec: dict[str, dict] = {}
    for label in labels:
        if label in DECISION_LABELS:
            open_dec[label] = {"requested_at": gi.created_at, "decided_at": None, "decided_by": None, "outcome": None}
            item.decisions.append(open_dec[label])

    def state() -> tuple[str, str | None]:
        owner = ctx.gh_id(assignees[0]) if assignees else None
        if closed:
            return "done", owner
        mapped = [LABEL_STATES[lb] for lb in labels if lb in LABEL_STATES]
        if mapped:
            return mapped[-1], owner
        return ("active" if assignees else "backlog"), owner

    timeline = [(gi.created_at, *state())]
    for e in events:
        t, bot = e.created_at, ctx.is_bot(e.actor)
        if e.event == "labeled" and e.label:
            if e.label in labels:
                labels.remove(e.label)
            labels.append(e.label)
        elif e.event == "unlabeled" and e.label in labels:
            labels.remove(e.label)
        elif e.event == "assigned" and e.assignee and e.assignee not in assignees:
            assignees.append(e.assignee)
        elif e.event == "unassigned" and e.assignee in assignees:
            assignees.remove(e.assignee)
        elif e.event == "closed" and not closed:
            closed = True
            _close_decisions(ctx, e, open_dec)
        elif e.event == "reopened" and closed:
            closed = False
            item.reversals.append(Reversal("reopened", t))
        if e.event in ("labeled", "unlabeled") and not bot:
            _gh_decisions(ctx, item, e, open_dec)
        timeline.append((t, *state()))
    _gh_states_to_visits(item, timeline)
    item.owner_tl = [(v["entered"], v["owner"]) for v in item.visits]
    for v in item.visits:
        if v["state"] == "blocked":
            item.pieces.append(BlockedPiece("blocked_status", v["entered"], v["exited"] or as_of))
    return item


# ---------------------------------------------------------------- assembling the truth

def compute(store: Store, as_of: datetime | None = None, jira_deployment: str = "cloud") -> Truth:
    """Every item's flow facts at as_of (default: the store's clock)."""
    as_of = (as_of or store.now).astimezone(UTC)
    ctx = _Ctx(store, as_of, jira_deployment)
    items: list[_Item] = []
    items += [_jira_item(ctx, i) for i in store.jira_issues if i.created <= as_of]
    items += [_gh_pull(ctx, p) for p in store.github_pulls if p.created_at <= as_of]
    items += [_gh_issue(ctx, i) for i in store.github_issues if i.created_at <= as_of]
    done_by_key = {it.item_id[5:]: it.done_intervals(as_of) for it in items if it.source == "jira"}
    team_by_key = {it.item_id[5:]: it.team for it in items if it.source == "jira"}
    truth = Truth(as_of=as_of, jira_deployment=jira_deployment)
    ctx.jira_items = {it.item_id: it for it in items if it.source == "jira"}
    for it in items:
        for key, iv in it.deps:
            for s, e in _subtract([iv], done_by_key.get(key, [])):
                bt = team_by_key.get(key, "unknown")
                it.pieces.append(BlockedPiece("dependency", s, e, f"jira:{key}", bt, bt != it.team))
        _finish(ctx, it, truth)
    return truth


def _waited_on(ctx: _Ctx, it: _Item, p: BlockedPiece) -> None:
    """What a blocked piece waits on: the blocking item of a dependency, or for a blocked status or flag the
    item of the first-created "is blocked by" link open during it; its team = its owner's team at the start."""
    if p.cause == "dependency":
        p.waited_on = p.blocking_item
    else:
        linked = sorted((s, key) for key, (s, e) in it.deps if s < p.ended_at and e > p.started_at)
        p.waited_on = f"jira:{linked[0][1]}" if linked else None
    if p.waited_on is None:
        return
    blocker = ctx.jira_items.get(p.waited_on)
    if blocker is None:
        p.waited_on_team = "unknown"
        return
    owner = _owner_at(blocker.owner_tl, p.started_at)
    p.waited_on_team = ctx.team_of(owner, p.started_at, blocker.person_team) if owner else blocker.team


def _finish(ctx: _Ctx, it: _Item, truth: Truth) -> None:
    as_of, iid = ctx.as_of, it.item_id
    cal = ctx.calendar(it.team)
    pteam = it.person_team

    def dur(s: datetime, e: datetime | None) -> tuple[float, float]:
        end = e or as_of
        return max(0.0, (end - s).total_seconds()), business_seconds(s, end, cal)

    truth.item_team[iid] = it.team
    truth.status_intervals[iid] = [
        StatusInterval(v["status_name"], v["state"], v["entered"], v["exited"] or as_of, v.get("owner"),
                       v["exited"] is None, *dur(v["entered"], v["exited"])) for v in it.visits]
    truth.handoffs[iid] = list(it.handoffs)
    truth.owner_timeline[iid] = list(it.owner_tl)
    approvals = sorted(it.approvals, key=lambda a: a["requested_at"])
    truth.approval_waits[iid] = [ApprovalWait(
        a["source_kind"], a["requested_at"], a["decided_at"], a["requested_of"], a["requested_of_team"],
        a["decided_by"], a["outcome"], a["decided_at"] is None, *dur(a["requested_at"], a["decided_at"]),
        a.get("body"), a.get("requested_by")) for a in approvals]
    decisions = []
    for d in sorted(it.decisions, key=lambda d: d["requested_at"]):
        dteam = ctx.team_of(d["decided_by"], d["decided_at"], pteam) if d["decided_at"] else "unknown"
        remote = dteam != "unknown" and it.team != "unknown" and dteam != it.team
        decisions.append(DecisionWait(d["requested_at"], d["decided_at"], d["decided_by"], dteam, it.team,
                                      remote, d["outcome"], d["decided_at"] is None,
                                      *dur(d["requested_at"], d["decided_at"]), d.get("requested_by")))
    truth.decision_waits[iid] = decisions

    # Flow window.
    not_done = it.not_done_intervals(as_of)
    started = next((v["entered"] for v in it.visits if v["state"] != "backlog"), None)
    finished = None  # the start of the final run of done visits (done -> another done status is no new entry)
    for v in reversed(it.visits):
        if v["state"] != "done":
            break
        finished = v["entered"]
    cycle = [(started, finished or as_of)] if started is not None else []
    cycle_s = (finished or as_of).timestamp() - started.timestamp() if started is not None else None

    pieces = []
    for p in it.pieces:
        for s, e in _intersect([(p.started_at, p.ended_at)], not_done):
            pieces.append(BlockedPiece(p.cause, s, e, p.blocking_item, p.blocking_team, p.is_cross_team))
    pieces.sort(key=lambda p: (p.started_at, p.cause))
    for p in pieces:
        _waited_on(ctx, it, p)
    blocked_set = _union((p.started_at, p.ended_at) for p in pieces)
    blocked_s = _length(_intersect(blocked_set, cycle))
    truth.blocked[iid] = Blocked(blocked_s, pieces)

    def state_ivs(*states: str) -> list[Interval]:
        return _union((v["entered"], v["exited"] or as_of) for v in it.visits if v["state"] in states)

    active = _intersect(state_ivs("active"), cycle)
    waiting = _intersect(_union(state_ivs("queue", "approval", "decision", "blocked") + blocked_set), cycle)
    active_s = _length(_subtract(active, blocked_set))
    waiting_s = _length(waiting)
    unowned = [(s, e) for s, e in _owner_gaps(it.owner_tl, as_of)]
    unowned_s = _length(_intersect(unowned, state_ivs("active", "queue", "approval", "decision", "blocked")))

    revs = list(it.reversals)
    if started is not None:
        revs += [Reversal(k, t) for k, t in it.scope_changes if t > started]
    approved_at = [a["decided_at"] for a in approvals if a["outcome"] == "approved"]
    revs += [Reversal("reapproval", a["requested_at"]) for a in approvals
             if any(d < a["requested_at"] for d in approved_at)]
    revs.sort(key=lambda r: (r.at, r.kind))
    truth.reversals[iid] = revs
    rejected_at = [a["decided_at"] for a in approvals if a["outcome"] in ("rejected", "changes_requested")]
    waits = truth.approval_waits[iid]
    truth.item_flow[iid] = ItemFlow(
        source=it.source, kind=it.kind, team=it.team, created_at=it.created, started_at=started,
        finished_at=finished, cycle_s=cycle_s, active_s=active_s, waiting_s=waiting_s,
        flow_efficiency=active_s / (active_s + waiting_s) if active_s + waiting_s > 0 else None,
        handoffs=len(it.handoffs), team_handoffs=sum(h.is_team_handoff for h in it.handoffs),
        bounces=sum(h.is_bounce for h in it.handoffs),
        approval_wait_s=sum(w.calendar_s for w in waits),
        decision_wait_s=sum(d.calendar_s for d in decisions), blocked_s=blocked_s, reversals=len(revs),
        unowned_active_s=unowned_s, approval_requests=len(waits),
        approval_rounds=sum(1 for a in approvals if any(d < a["requested_at"] for d in rejected_at)),
        fast_approvals=sum(1 for w in waits if w.outcome == "approved" and w.calendar_s < 300 and not w.body),
        time_to_first_review_s=it.review_times[0], time_to_approval_s=it.review_times[1])


def _owner_gaps(tl: list[tuple[datetime, str | None]], as_of: datetime) -> list[Interval]:
    out = []
    for i, (t, owner) in enumerate(tl):
        end = tl[i + 1][0] if i + 1 < len(tl) else as_of
        if owner is None:
            out.append((t, end))
    return _union(out)


# ---------------------------------------------------------------- JSON

def _plain(v):
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(v, tuple) and hasattr(v, "_asdict"):
        return {k: _plain(x) for k, x in v._asdict().items()}
    if is_dataclass(v):
        return {k: _plain(x) for k, x in asdict(v).items()}
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def to_json(truth: Truth) -> dict:
    """The truth as plain JSON (ISO UTC timestamps), for the CLI and for diffing."""
    return {
        "as_of": _plain(truth.as_of),
        "jira_deployment": truth.jira_deployment,
        "items": {iid: {
            "team": truth.item_team[iid],
            "flow": _plain(truth.item_flow[iid]),
            "status_intervals": _plain(truth.status_intervals[iid]),
            "handoffs": _plain(truth.handoffs[iid]),
            "approval_waits": _plain(truth.approval_waits[iid]),
            "decision_waits": _plain(truth.decision_waits[iid]),
            "blocked": _plain(truth.blocked[iid]),
            "reversals": _plain(truth.reversals[iid]),
        } for iid in sorted(truth.item_flow)},
    }
