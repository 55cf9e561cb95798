"""The truth oracle for issue 16, across items: which pull requests implement which Jira issues, the review waits an
issue has across that link, who blocks whom, who decides for whom, and approval chains.

Computed in plain Python from the store and the per-item truth (sandbox/truth.py), independently of the SQL, by
the rules in docs/metrics-rulings.md ("Across tools and teams").
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sandbox.calendar import business_seconds
from sandbox.model import Store
from sandbox.truth import Truth, _Ctx, _intersect, _length, _union

KEY = re.compile(r"\b[a-z][a-z0-9_]+-[0-9]+\b", re.IGNORECASE | re.ASCII)
PULL_URL = re.compile(r"^https?://[^/]+/([^/?#]+/[^/?#]+)/pull/([0-9]+)(?:[/?#].*)?$")
WAITING = ("queue", "approval", "decision", "blocked")
DECISION_OUTCOMES = ("approved", "rejected", "declined", "changes_requested")


@dataclass
class Link:
    linked_item_id: str
    link_kind: str  # implemented_by | implements
    found_in: str


@dataclass
class ReviewWait:
    started_at: datetime
    ended_at: datetime
    waited_on: str
    waited_on_team: str
    is_open: bool


@dataclass
class DependencyWait:
    blocked_team: str
    blocking_team: str
    declared: bool
    started_at: datetime
    ended_at: datetime
    calendar_s: float
    business_s: float


@dataclass
class Decision:
    kind: str  # decision | approval
    source_kind: str
    requested_at: datetime
    decided_at: datetime
    requested_by: str | None
    requester_team: str
    decided_by: str
    deciding_team: str
    owner_team: str
    is_outside_owner_team: bool
    is_escalation: bool
    calendar_s: float
    business_s: float


@dataclass
class LinksTruth:
    links: dict[str, list[Link]] = field(default_factory=dict)
    review_waits: dict[str, list[ReviewWait]] = field(default_factory=dict)
    flow: dict[str, dict] = field(default_factory=dict)  # item_flow's issue-16 columns
    dependency_waits: dict[str, list[DependencyWait]] = field(default_factory=dict)
    dependency_matrix: dict[tuple, tuple] = field(default_factory=dict)  # (week, blocking, blocked, declared) ->
    decisions: dict[str, list[Decision]] = field(default_factory=dict)
    decision_rights: dict[tuple, tuple] = field(default_factory=dict)  # (week, owner, deciding) ->
    team_weekly: dict[tuple, dict] = field(default_factory=dict)  # (team, week) -> chain p85, share, escalations


def _quantile(xs: list[float], q: float) -> float:
    """Continuous quantile (DuckDB's quantile_cont)."""
    xs = sorted(xs)
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _monday(t: datetime) -> datetime:
    t = t.astimezone(UTC)
    d = t.date() - timedelta(days=t.weekday())
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _islands(pieces: list[tuple]) -> list[list[tuple]]:
    """Pieces (start, end, ...) merged where they overlap or touch, in order."""
    out: list[list[tuple]] = []
    end = None
    for p in sorted(pieces, key=lambda p: (p[0], p[1])):
        if end is not None and p[0] <= end:
            out[-1].append(p)
            end = max(end, p[1])
        else:
            out.append([p])
            end = p[1]
    return out


def public_teams(store: Store, min_size: int) -> dict[str, str]:
    members = defaultdict(set)
    for m in store.memberships:
        members[m.team].add(m.pid)
    return {t: ("other" if len(members[t]) < min_size else t) for t in store.teams}


def compute_links(store: Store, truth: Truth, min_group_size: int = 3) -> LinksTruth:
    as_of = truth.as_of
    ctx = _Ctx(store, as_of, truth.jira_deployment)
    out = LinksTruth()
    pub = public_teams(store, min_group_size)

    def public(team: str) -> str:
        return pub.get(team, team)

    flow = truth.item_flow
    cal = {iid: ctx.calendar(t) for iid, t in truth.item_team.items()}

    def cycle(iid: str) -> list[tuple[datetime, datetime]]:
        f = flow[iid]
        return [(f.started_at, f.finished_at or as_of)] if f.started_at is not None else []

    def biz(iid: str, ivs) -> float:
        return sum(business_seconds(s, e, cal[iid]) for s, e in ivs)

    # ---- item_links: keys in branch, title, body of pull requests existing at as_of
    issue_ids = {iid[5:].upper(): iid for iid, f in flow.items() if f.source == "jira"}
    links = defaultdict(list)
    implemented_by = defaultdict(list)
    # an issue's remote link to a pull request's address (https://host/owner/repo/pull/n...; owner/repo in any case)
    remote_to: dict[tuple[str, int], set[str]] = defaultdict(set)
    for issue in store.jira_issues:
        for rl in issue.remote_links:
            m = PULL_URL.match(rl.url)
            if m:
                remote_to[(m.group(1).lower(), int(m.group(2)))].add(f"jira:{issue.key}")
    for pr in store.github_pulls:
        pid = f"github:{pr.repo}#{pr.number}"
        if pid not in flow:
            continue
        found: dict[str, list[str]] = {}
        for place, text in (("branch", pr.head_ref), ("title", pr.title), ("body", pr.body)):
            for m in KEY.findall(text or ""):
                iid = issue_ids.get(m.upper())
                if iid is not None and place not in found.setdefault(iid, []):
                    found[iid].append(place)
        for iid in remote_to.get((pr.repo.lower(), pr.number), ()):
            if iid in flow:
                found.setdefault(iid, []).append("remote_link")
        for iid, places in found.items():
            links[iid].append(Link(pid, "implemented_by", ",".join(places)))
            links[pid].append(Link(iid, "implements", ",".join(places)))
            implemented_by[iid].append(pid)
    out.links = {k: sorted(v, key=lambda x: x.linked_item_id) for k, v in links.items()}

    # ---- review waits across the link, and the item_flow columns
    def review_rows(pid: str):
        return [(a.requested_at, a.decided_at or as_of, a) for a in truth.approval_waits[pid]
                if a.source_kind == "github_review"]

    for iid, pulls in implemented_by.items():
        visits = [(v.entered_at, v.exited_at, v.is_open) for v in truth.status_intervals[iid]
                  if v.state in ("approval", "queue")]
        per_reviewer = defaultdict(list)
        for pid in pulls:
            for s, e, a in review_rows(pid):
                for vs, ve, vopen in visits:
                    ps, pe = max(s, vs), min(e, ve)
                    if pe > ps:
                        per_reviewer[a.requested_of].append((ps, pe, a.requested_of_team, vopen and a.is_open))
        rows = []
        for who, pieces in per_reviewer.items():
            for isl in _islands(pieces):
                rows.append(ReviewWait(min(p[0] for p in isl), max(p[1] for p in isl), who,
                                       min(isl, key=lambda p: (p[0], p[1]))[2], any(p[3] for p in isl)))
        out.review_waits[iid] = sorted(rows, key=lambda r: (r.started_at, r.waited_on))

    pull_approvers: dict[str, set[str]] = {}
    for pr in store.github_pulls:
        pid = f"github:{pr.repo}#{pr.number}"
        if pid not in flow:
            continue
        dismissed = {e.dismissed_review_id: e.dismissed_state for e in pr.events
                     if e.event == "review_dismissed" and e.dismissed_review_id is not None}
        pull_approvers[pid] = {
            ctx.gh_id(e.actor) for e in pr.events
            if e.event == "reviewed" and e.created_at <= as_of and not ctx.is_bot(e.actor) and e.actor != pr.author
            and ((e.review_state or "").upper() == "APPROVED"
                 or ((e.review_state or "").upper() == "DISMISSED" and (dismissed.get(e.id) or "").upper() == "APPROVED"))}

    for iid, f in flow.items():
        pulls = implemented_by.get(iid, []) if f.source == "jira" else ([iid] if f.kind == "pull_request" else [])
        cyc = cycle(iid)
        reviews = _intersect(_union((s, e) for p in pulls for s, e, _ in review_rows(p)), cyc)
        own = [(a.requested_at, a.decided_at or as_of) for a in truth.approval_waits[iid]
               if a.source_kind != "github_review"]
        chain_ivs = _intersect(_union([*reviews, *own]), cyc)
        steps, approvers = 0, set()
        for a in truth.approval_waits[iid]:
            if a.source_kind != "github_review" and a.outcome == "approved":
                steps += 1
                approvers |= {x for x in (a.decided_by or "").split(",") if x}
        for p in pulls:
            steps += len(pull_approvers.get(p, ()))
            approvers |= pull_approvers.get(p, set())
        first = min(implemented_by.get(iid, []), key=lambda p: (flow[p].created_at, p), default=None)
        out.flow[iid] = {
            "linked_pull_requests": len(implemented_by.get(iid, [])),
            "review_wait_s": _length(reviews), "review_wait_business_s": biz(iid, reviews),
            "time_to_first_review_s": flow[first].time_to_first_review_s if first else f.time_to_first_review_s,
            "approval_chain_length": steps, "approvers": len(approvers),
            "approval_chain_wait_s": _length(chain_ivs), "undeclared_dependency_s": 0.0,
        }

    # ---- who blocks whom
    for iid, blocked in truth.blocked.items():
        team = truth.item_team[iid]
        rows = []
        by_team = defaultdict(list)
        for p in blocked.pieces:
            if p.cause == "dependency":
                by_team[p.blocking_team].append((p.started_at, p.ended_at))
        for bteam, ivs in by_team.items():
            for s, e in _union(ivs):
                rows.append(DependencyWait(team, bteam, True, s, e, (e - s).total_seconds(),
                                           business_seconds(s, e, cal[iid])))
        if flow[iid].source == "jira" and team != "unknown":
            tl = truth.owner_timeline.get(iid, [])
            waiting = _union((v.entered_at, v.exited_at) for v in truth.status_intervals[iid] if v.state in WAITING)
            for h in truth.handoffs[iid]:
                if h.to_team in (team, "unknown"):
                    continue
                nxt = next((t for t, _ in tl if t > h.handed_off_at), as_of)
                for s, e in _intersect([(h.handed_off_at, nxt)], waiting):
                    rows.append(DependencyWait(team, h.to_team, False, s, e, (e - s).total_seconds(),
                                               business_seconds(s, e, cal[iid])))
                    out.flow[iid]["undeclared_dependency_s"] += _length(_intersect([(s, e)], cycle(iid)))
        if rows:
            out.dependency_waits[iid] = sorted(rows, key=lambda r: (r.started_at, r.declared, r.blocking_team))
    cells = defaultdict(lambda: [set(), 0.0, 0.0])
    for iid, rows in out.dependency_waits.items():
        for r in rows:
            week = _monday(r.started_at)
            while week < r.ended_at:
                s, e = max(r.started_at, week), min(r.ended_at, week + timedelta(days=7))
                c = cells[(week.date(), public(r.blocking_team), public(r.blocked_team), r.declared)]
                c[0].add(iid)
                c[1] += (e - s).total_seconds()
                c[2] += business_seconds(s, e, cal[iid])
                week += timedelta(days=7)
    out.dependency_matrix = {k: (len(v[0]), v[1], v[2]) for k, v in cells.items()}

    # ---- who decides for whom
    for iid in flow:
        owner = truth.item_team[iid]
        rows = []
        waits = [("decision", "", d, d.decided_by_team) for d in truth.decision_waits[iid]]
        waits += [("approval", a.source_kind, a, None) for a in truth.approval_waits[iid]
                  if a.outcome in DECISION_OUTCOMES]
        for kind, sk, w, dteam in waits:
            if w.decided_at is None or w.decided_by is None:
                continue
            if dteam is None:
                teams = {ctx.team_of(p, w.decided_at) for p in w.decided_by.split(",")}
                dteam = teams.pop() if len(teams) == 1 else "unknown"
            req = w.requested_by
            rteam = ctx.team_of(req, w.requested_at) if req else "unknown"
            outside = dteam != "unknown" and owner != "unknown" and dteam != owner
            rows.append(Decision(kind, sk, w.requested_at, w.decided_at, req, rteam, w.decided_by, dteam,
                                 owner, outside, outside and (rteam == "unknown" or dteam != rteam),
                                 w.calendar_s, w.business_s))
        if rows:
            out.decisions[iid] = sorted(rows, key=lambda d: (d.kind, d.requested_at, d.source_kind, d.decided_by))
    cells = defaultdict(list)
    for rows in out.decisions.values():
        for d in rows:
            cells[(_monday(d.decided_at).date(), public(d.owner_team), public(d.deciding_team))].append(d)
    owner_week = defaultdict(lambda: [0, 0])
    for (week, o, _), ds in cells.items():
        owner_week[(week, o)][0] += len(ds)
        owner_week[(week, o)][1] += sum(d.is_outside_owner_team for d in ds)
    out.decision_rights = {
        k: (len(ds), _quantile([d.calendar_s for d in ds], 0.5), _quantile([d.calendar_s for d in ds], 0.85),
            owner_week[(k[0], k[1])][1] / owner_week[(k[0], k[1])][0]) for k, ds in cells.items()}

    # ---- team_weekly: approval chains by week of finishing, escalations by week of the decision
    weekly = defaultdict(lambda: {"chains": [], "escalations": 0})
    for iid, f in flow.items():
        if f.finished_at is not None:
            weekly[(public(f.team), _monday(f.finished_at).date())]["chains"].append(
                out.flow[iid]["approval_chain_length"])
    for rows in out.decisions.values():
        for d in rows:
            if d.is_escalation:
                weekly[(public(d.owner_team), _monday(d.decided_at).date())]["escalations"] += 1
    out.team_weekly = {k: {
        "approval_chain_p85": _quantile(v["chains"], 0.85) if v["chains"] else None,
        "stacked_approval_share": sum(c >= 2 for c in v["chains"]) / len(v["chains"]) if v["chains"] else None,
        "escalations": v["escalations"]} for k, v in weekly.items()}
    return out
