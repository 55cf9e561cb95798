"""Moving a generated organisation's clock forward with a share of its items changing."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sandbox.gen_jira import FLAG_VALUE, RESOLUTIONS, item
from sandbox.model import (
    FIELD_FLAGGED,
    GhEvent,
    GhIssue,
    GhPull,
    JiraHistory,
    JiraIssue,
    Store,
    TeamMembership,
)


def _role_status(store: Store, issue: JiraIssue, state: str) -> str:
    proj = store.jira_projects[issue.project]
    return next(s for s in proj.statuses if store.jira_statuses[s].state == state)


def _status_item(store: Store, issue: JiraIssue, to: str):
    st = store.jira_statuses
    it = item("status", "status", issue.status, st[issue.status].name, to, st[to].name)
    issue.status = to
    return it


def _assignee_item(store: Store, issue: JiraIssue, to: str | None):
    p = store.people
    it = item("assignee", "assignee", issue.assignee, p[issue.assignee].name if issue.assignee else None,
              to, p[to].name if to else None)
    issue.assignee = to
    return it


def _team_members(store: Store, team: str, t: datetime) -> list[str]:
    return [m.pid for m in store.memberships if m.team == team
            and (m.valid_from is None or m.valid_from <= t) and (m.valid_to is None or t < m.valid_to)]


def _change_jira(store: Store, rng: random.Random, issue: JiraIssue, t: datetime) -> JiraHistory:
    team = store.jira_projects[issue.project].team
    members = _team_members(store, team, t)
    state = store.jira_statuses[issue.status].state
    actor = issue.assignee or members[0]
    items = []
    if state == "backlog":
        who = issue.assignee or rng.choice(members)
        items.append(_status_item(store, issue, _role_status(store, issue, "active")))
        if issue.assignee is None:
            items.append(_assignee_item(store, issue, who))
        actor = who
    elif state == "active":
        r = rng.random()
        if r < 0.5:
            items.append(_status_item(store, issue, _role_status(store, issue, "approval")))
        elif r < 0.75:
            flag = not issue.flagged
            items.append(item("Flagged", FIELD_FLAGGED, None if flag else FLAG_VALUE, None if flag else "Impediment",
                              FLAG_VALUE if flag else None, "Impediment" if flag else None, "custom"))
            issue.flagged = flag
        else:
            items.append(_assignee_item(store, issue, rng.choice([m for m in members if m != issue.assignee]
                                                                  or members)))
    elif state in ("approval", "decision", "blocked"):
        items.append(_status_item(store, issue, _role_status(store, issue, "queue" if state == "approval" else "active")))
        actor = rng.choice(members)
    elif state == "queue":
        items.append(_status_item(store, issue, _role_status(store, issue, "done")))
        items.append(item("resolution", "resolution", None, None, *RESOLUTIONS["done"]))
        issue.resolution, issue.resolutiondate = RESOLUTIONS["done"][1], t
    else:  # done: an assignee change while done (ignored by metrics), or a reopening
        if rng.random() < 0.7:
            items.append(_assignee_item(store, issue, rng.choice([m for m in members if m != issue.assignee]
                                                                  or members)))
        else:
            items.append(_status_item(store, issue, _role_status(store, issue, "active")))
            res = next((r for r in RESOLUTIONS.values() if r[1] == issue.resolution), RESOLUTIONS["done"])
            items.append(item("resolution", "resolution", res[0], res[1], None, None))
            issue.resolution, issue.resolutiondate = None, None
            actor = members[0]
    h = JiraHistory(0, actor, t, items)
    issue.histories.append(h)
    issue.updated = t
    return h


def _change_pull(store: Store, rng: random.Random, pr: GhPull, t: datetime) -> list[GhEvent]:
    repo = next(r for r in store.github_repos if r.full_name == pr.repo)
    logins = [store.people[p].login for p in _team_members(store, repo.team, t)]
    other = rng.choice([x for x in logins if x != pr.author] or logins)
    evs = []
    if pr.state == "closed":
        evs.append(GhEvent(0, "commented", other, t))
    elif pr.draft:
        pr.draft = False
        evs.append(GhEvent(0, "ready_for_review", pr.author, t))
        evs.append(GhEvent(0, "review_requested", pr.author, t, requested_reviewer=other))
    elif rng.random() < 0.5:
        evs.append(GhEvent(0, "reviewed", other, t, review_state=rng.choice(["APPROVED", "COMMENTED"]),
                           review_body="Looks fine after the latest changes."))
    else:
        evs.append(GhEvent(0, "merged", pr.author, t, commit_sha=f"{pr.id:040x}"[-40:]))
        evs.append(GhEvent(0, "closed", pr.author, t))
        pr.state, pr.closed_at, pr.merged_at, pr.merged_by = "closed", t, t, pr.author
    pr.events.extend(evs)
    pr.updated_at = t
    return evs


def _change_gh_issue(store: Store, rng: random.Random, issue: GhIssue, t: datetime) -> list[GhEvent]:
    actor = issue.assignees[0] if issue.assignees else issue.author
    if issue.state == "closed":
        evs = [GhEvent(0, "commented", actor, t)]
    elif rng.random() < 0.6:
        evs = [GhEvent(0, "closed", actor, t)]
        issue.state, issue.closed_at, issue.state_reason = "closed", t, "completed"
    elif "needs-decision" in issue.labels:
        evs = [GhEvent(0, "unlabeled", actor, t, label="needs-decision")]
        issue.labels.remove("needs-decision")
    else:
        evs = [GhEvent(0, "labeled", actor, t, label="needs-decision")]
        issue.labels.append("needs-decision")
    issue.events.extend(evs)
    issue.updated_at = t
    return evs


def advance(store: Store, fraction: float, days: float = 1.0, seed: int | None = None) -> int:
    """Move `store.now` forward by `days`; `fraction` of the items change after the old clock.

    Returns how many items changed. New history and event ids continue above every existing one.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    if days <= 0:
        raise ValueError(f"days must be positive, got {days}")
    old = store.now
    new = (old + timedelta(days=days)).replace(microsecond=0)
    rng = random.Random(f"advance:{store.scale}:{store.seed}:{old.isoformat()}:{seed}")
    items = [("j", i) for i in range(len(store.jira_issues))] + [("p", i) for i in range(len(store.github_pulls))] \
        + [("g", i) for i in range(len(store.github_issues))]
    n = round(fraction * len(items))
    chosen = rng.sample(items, n)
    window = (new - old).total_seconds()
    jira_new: list[tuple[datetime, int, JiraHistory]] = []
    gh_new: list[tuple[datetime, int, GhEvent]] = []
    for kind, idx in chosen:
        t = (old + timedelta(seconds=1 + rng.random() * (window - 1))).replace(microsecond=0)
        if kind == "j":
            jira_new.append((t, len(jira_new), _change_jira(store, rng, store.jira_issues[idx], t)))
        elif kind == "p":
            for e in _change_pull(store, rng, store.github_pulls[idx], t):
                gh_new.append((t, len(gh_new), e))
        else:
            for e in _change_gh_issue(store, rng, store.github_issues[idx], t):
                gh_new.append((t, len(gh_new), e))
    next_h = 1 + max((h.id for i in store.jira_issues for h in i.histories), default=0)
    for k, (_t, _n, h) in enumerate(sorted(jira_new, key=lambda x: x[:2])):
        h.id = next_h + k
    next_e = 7 + max((e.id for it in [*store.github_pulls, *store.github_issues] for e in it.events), default=0)
    for k, (_t, _n, e) in enumerate(sorted(gh_new, key=lambda x: x[:2])):
        e.id = next_e + 7 * k
    store.now = new
    return n


def move(store: Store, login: str, team: str, at: datetime | None = None) -> None:
    """A person changes team at `at` (default: the clock): the old membership ends, the new one starts, and the
    GitHub organisation teams list them under the new team from then on (what a later run reads)."""
    pid = next((p.pid for p in store.people.values() if p.login == login), None)
    if pid is None:
        raise ValueError(f"no person with login {login!r}")
    if team not in store.teams:
        raise ValueError(f"no team {team!r}; teams: {', '.join(sorted(store.teams))}")
    at = (at or store.now).replace(microsecond=0)
    person = store.people[pid]
    if person.team == team:
        return
    for m in store.memberships:
        if m.pid == pid and m.valid_to is None:
            m.valid_to = at
    store.memberships.append(TeamMembership(pid, team, at, None))
    old_slug, new_slug = store.teams[person.team].github_slug, store.teams[team].github_slug
    for key, logins in store.github_team_members.items():
        slug = key.split("/", 1)[1]
        if slug == old_slug and login in logins:
            logins.remove(login)
        if slug == new_slug and login not in logins:
            logins.append(login)
            logins.sort()
    person.team = team
