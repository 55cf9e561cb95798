"""The sandbox generator: deterministic, internally consistent, and rich enough to exercise every metric."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import tomllib
from collections import Counter

import pytest

from sandbox.generator import advance, config_toml, generate, write_pages
from sandbox.model import DELETED_PID, FIELD_FLAGGED, FLOW_STATES, GHOST, Store


@pytest.fixture(scope="module")
def small() -> Store:
    return generate("small", 1)


def fresh(small: Store) -> Store:
    return copy.deepcopy(small)


# -- consistency -------------------------------------------------------------------------------------------

def replay_jira(store: Store) -> list[str]:
    """Problems found replaying every issue's histories against its current fields."""
    errs: list[str] = []
    st = store.jira_statuses
    for issue in store.jira_issues:
        chains: dict[str, list] = {}
        for h in issue.histories:
            ordered = sorted(h.items, key=lambda it: it.field != "status")
            for it in ordered:
                chains.setdefault(it.field, []).append((h, it))
        for name, attr in (("status", "status"), ("assignee", "assignee")):
            chain = chains.get(name, [])
            for (_h1, a), (_h2, b) in itertools.pairwise(chain):
                if a.to != b.from_:
                    errs.append(f"{issue.key}: {name} chain broken {a.to} -> {b.from_}")
            if chain and chain[-1][1].to != getattr(issue, attr):
                errs.append(f"{issue.key}: {name} replays to {chain[-1][1].to}, field says {getattr(issue, attr)}")
        if "status" not in chains and st[issue.status].state != "backlog":
            errs.append(f"{issue.key}: no status change but status {issue.status} is not a backlog status")
        for name, value in (("priority", issue.priority), ("Sprint", issue.sprint), ("resolution", issue.resolution)):
            chain = chains.get(name, [])
            for (_h1, a), (_h2, b) in itertools.pairwise(chain):
                if a.to_string != b.from_string:
                    errs.append(f"{issue.key}: {name} chain broken")
            if chain and chain[-1][1].to_string != value:
                errs.append(f"{issue.key}: {name} replays to {chain[-1][1].to_string}, field says {value}")
        res = chains.get("resolution", [])
        if res and res[-1][1].to is not None and res[-1][0].created != issue.resolutiondate:
            errs.append(f"{issue.key}: resolutiondate is not the last resolution change")
        if (issue.resolution is None) != (st[issue.status].category != "done"):
            errs.append(f"{issue.key}: resolution {issue.resolution} with status {st[issue.status].name}")
        flag = chains.get("Flagged", [])
        if flag and (flag[-1][1].to is not None) != issue.flagged:
            errs.append(f"{issue.key}: Flagged replays differently")
        if not flag and issue.flagged:
            errs.append(f"{issue.key}: flagged without a Flagged change")
        if any(it.field_id != FIELD_FLAGGED or it.fieldtype != "custom" for _h, it in flag):
            errs.append(f"{issue.key}: Flagged change with wrong field id")
        versions: set[str] = set()
        for _h, it in chains.get("Fix Version", []):
            if it.from_string:
                versions.discard(it.from_string)
            if it.to_string:
                versions.add(it.to_string)
        if versions != set(issue.fix_versions):
            errs.append(f"{issue.key}: fix versions replay to {versions}, field says {issue.fix_versions}")
        epic = chains.get("Epic Link", [])
        if epic and epic[-1][1].to_string != issue.parent:
            errs.append(f"{issue.key}: Epic Link replays differently")
        links: set[str] = set()
        for _h, it in chains.get("Link", []):
            if it.from_string:
                links.discard(it.from_string)
            if it.to_string:
                links.add(it.to_string)
        current = set()
        for lk in issue.links:
            if lk.type == "Blocks":
                current.add(f"This issue is blocked by {lk.outward_key}" if lk.inward_key == issue.key
                            else f"This issue blocks {lk.inward_key}")
            else:
                other = lk.outward_key if lk.inward_key == issue.key else lk.inward_key
                current.add(f"This issue relates to {other}")
        if links != current:
            errs.append(f"{issue.key}: links replay to {links}, field says {current}")
    return errs


def replay_github(store: Store) -> list[str]:
    errs: list[str] = []
    for it in [*store.github_pulls, *store.github_issues]:
        name = f"{it.repo}#{it.number}"
        labels: list[str] = []
        assignees: list[str] = []
        state = "open"
        for e in it.events:
            if e.event == "labeled":
                labels.append(e.label)
            elif e.event == "unlabeled":
                labels.remove(e.label)
            elif e.event == "assigned":
                assignees.append(e.assignee)
            elif e.event == "unassigned":
                assignees.remove(e.assignee)
            elif e.event == "closed":
                state = "closed"
            elif e.event == "reopened":
                state = "open"
        if sorted(labels) != sorted(it.labels):
            errs.append(f"{name}: labels replay to {labels}, field says {it.labels}")
        if sorted(assignees) != sorted(it.assignees):
            errs.append(f"{name}: assignees replay to {assignees}, field says {it.assignees}")
        if state != it.state or (state == "closed") != (it.closed_at is not None):
            errs.append(f"{name}: state replays to {state}, field says {it.state}")
        if it.updated_at != max([it.created_at] + [e.created_at for e in it.events]):
            errs.append(f"{name}: updated_at is not the last event")
    for pr in store.github_pulls:
        merged = [e for e in pr.events if e.event == "merged"]
        if merged and (pr.merged_at != merged[-1].created_at or pr.merged_by != merged[-1].actor):
            errs.append(f"{pr.repo}#{pr.number}: merged_at/merged_by differ from the merged event")
        if not merged and pr.merged_at is not None:
            errs.append(f"{pr.repo}#{pr.number}: merged_at without a merged event")
        drafts = [e.event for e in pr.events if e.event in ("ready_for_review", "convert_to_draft")]
        if drafts and pr.draft != (drafts[-1] == "convert_to_draft"):
            errs.append(f"{pr.repo}#{pr.number}: draft flag differs from the timeline")
        by_id = {e.id: e for e in pr.events}
        for e in pr.events:
            if e.event == "review_dismissed":
                rev = by_id.get(e.dismissed_review_id)
                if rev is None or rev.event != "reviewed" or rev.review_state != "DISMISSED" or rev.id > e.id:
                    errs.append(f"{pr.repo}#{pr.number}: dismissal {e.id} names no earlier dismissed review")
    return errs


def id_problems(store: Store) -> list[str]:
    errs: list[str] = []
    hs = [(h.created, h.id) for i in store.jira_issues for h in i.histories]
    if len({h for _c, h in hs}) != len(hs):
        errs.append("history ids are not unique")
    if sorted(hs) != sorted(hs, key=lambda x: x[1]):
        errs.append("history ids do not increase with time")
    for i in store.jira_issues:
        if [h.id for h in i.histories] != sorted(h.id for h in i.histories):
            errs.append(f"{i.key}: histories not in id order")
        if any(h.created < i.created for h in i.histories):
            errs.append(f"{i.key}: history before creation")
    issues = store.jira_issues
    if [i.id for i in issues] != sorted(i.id for i in issues) or len({i.id for i in issues}) != len(issues):
        errs.append("issue ids are not unique and ordered")
    if any(a.created > b.created for a, b in itertools.pairwise(issues)):
        errs.append("issue ids do not increase with creation")
    if len({i.key for i in issues}) != len(issues):
        errs.append("issue keys are not unique")
    es = [(e.created_at, e.id) for it in [*store.github_pulls, *store.github_issues] for e in it.events]
    if len({e for _c, e in es}) != len(es):
        errs.append("event ids are not unique")
    if sorted(es) != sorted(es, key=lambda x: x[1]):
        errs.append("event ids do not increase with time")
    numbers = [(it.repo, it.number) for it in [*store.github_pulls, *store.github_issues]]
    if len(set(numbers)) != len(numbers):
        errs.append("pull and issue numbers collide within a repository")
    ids = [it.id for it in [*store.github_pulls, *store.github_issues]]
    if len(set(ids)) != len(ids):
        errs.append("GitHub item ids are not unique")
    return errs


def time_problems(store: Store) -> list[str]:
    now = store.now
    errs = [f"{i.key}: after now" for i in store.jira_issues
            if i.created > now or i.updated > now or any(h.created > now for h in i.histories)
            or i.updated != max([i.created] + [h.created for h in i.histories])]
    errs += [f"{it.repo}#{it.number}: after now" for it in [*store.github_pulls, *store.github_issues]
             if it.created_at > now or any(e.created_at > now for e in it.events)
             or any(a.created_at > b.created_at for a, b in zip(it.events, it.events[1:]))]
    errs += [f"{i.key}: approval after now" for i in store.jira_issues for a in i.approvals
             if a.created > now or (a.completed and a.completed > now)]
    return errs


def reference_problems(store: Store) -> list[str]:
    errs: list[str] = []
    people, teams = store.people, store.teams
    logins = {p.login for p in people.values()}
    slugs = {t.github_slug for t in teams.values()}
    errs += [f"{p.pid}: team {p.team}" for p in people.values() if p.team not in teams]
    errs += [f"membership {m}" for m in store.memberships if m.pid not in people or m.team not in teams]
    for proj in store.jira_projects.values():
        if proj.team not in teams or proj.lead not in people or any(s not in store.jira_statuses for s in proj.statuses):
            errs.append(f"project {proj.key} references something unknown")
    for i in store.jira_issues:
        pids = {i.reporter, i.assignee} | {h.author for h in i.histories}
        pids |= {it.from_ for h in i.histories for it in h.items if it.field == "assignee"}
        pids |= {it.to for h in i.histories for it in h.items if it.field == "assignee"}
        pids |= {p for a in i.approvals for p, _d in a.approvers}
        if pids - set(people) - {None, DELETED_PID}:  # DELETED_PID: a history by an account deleted since
            errs.append(f"{i.key}: unknown people {pids - set(people) - {None, DELETED_PID}}")
        if i.project not in store.jira_projects or i.status not in store.jira_projects[i.project].statuses:
            errs.append(f"{i.key}: status {i.status} not in its project's workflow")
        if i.team is not None and i.team not in teams:
            errs.append(f"{i.key}: team {i.team}")
        statuses = {it.to for h in i.histories for it in h.items if it.field == "status"}
        if statuses - set(store.jira_projects[i.project].statuses) - set(store.jira_deleted_statuses):
            errs.append(f"{i.key}: moved to a status outside its workflow")
    keys = {i.key for i in store.jira_issues}
    for i in store.jira_issues:
        if i.parent and i.parent not in keys:
            errs.append(f"{i.key}: parent {i.parent} unknown")
        for lk in i.links:
            if lk.outward_key not in keys or lk.inward_key not in keys:
                errs.append(f"{i.key}: link to unknown issue")
    repos = {r.full_name for r in store.github_repos}
    for it in [*store.github_pulls, *store.github_issues]:
        used = {it.author} | {e.actor for e in it.events} | {e.requested_reviewer for e in it.events} \
            | {e.assignee for e in it.events} | set(it.assignees)
        if getattr(it, "merged_by", None):
            used.add(it.merged_by)
        if used - logins - {None, GHOST}:  # GHOST: GitHub's login for an account deleted since
            errs.append(f"{it.repo}#{it.number}: unknown logins {used - logins - {None, GHOST}}")
        if {e.requested_team for e in it.events} - slugs - {None}:
            errs.append(f"{it.repo}#{it.number}: unknown team slug")
        if it.repo not in repos:
            errs.append(f"{it.repo}#{it.number}: unknown repository")
    for key, members in store.github_team_members.items():
        org, slug = key.split("/")
        if org not in store.github_orgs or slug not in slugs or set(members) - logins:
            errs.append(f"github team {key} references something unknown")
    if store.jira_user_pid not in people or store.github_user_login not in logins:
        errs.append("credential owners unknown")
    if any(s.state not in FLOW_STATES for s in store.jira_statuses.values()):
        errs.append("a status has an unknown state")
    return errs


def all_problems(store: Store) -> list[str]:
    return replay_jira(store) + replay_github(store) + id_problems(store) + time_problems(store) \
        + reference_problems(store)


def test_deterministic(small: Store) -> None:
    again = generate("small", 1)
    assert dataclasses.asdict(again) == dataclasses.asdict(small)
    other = generate("small", 2)
    assert [h.created for i in other.jira_issues for h in i.histories] != \
        [h.created for i in small.jira_issues for h in i.histories]


def test_sizes(small: Store) -> None:
    assert len(small.jira_issues) == 300 and len(small.github_pulls) == 200 and 40 <= len(small.github_issues) <= 60
    assert 5 <= len(small.teams) <= 8


def test_consistent(small: Store) -> None:
    assert all_problems(small) == []


def test_consistency_checks_catch_a_broken_store(small: Store) -> None:
    broken = fresh(small)
    issue = next(i for i in broken.jira_issues if i.histories and i.assignee)
    issue.assignee = next(p for p in broken.people if p != issue.assignee and not broken.people[p].bot)
    broken.github_pulls[0].events[-1].created_at = broken.now.replace(year=2030)
    problems = all_problems(broken)
    assert any(issue.key in p and "assignee" in p for p in problems)
    assert any("after now" in p for p in problems)


# -- coverage ----------------------------------------------------------------------------------------------

def test_org_shape(small: Store) -> None:
    tzs = {t.calendar.tz for t in small.teams.values()}
    assert len(tzs) >= 4
    assert any(t.calendar.holidays for t in small.teams.values())
    assert len({p.tz for p in small.people.values()}) > len(tzs)  # members outside their team's zone
    movers = Counter(m.pid for m in small.memberships)
    mover = next(pid for pid, n in movers.items() if n > 1)
    spans = sorted((m.valid_from is not None, m.team) for m in small.memberships if m.pid == mover)
    assert len({t for _v, t in spans}) == 2
    bots = [p for p in small.people.values() if p.bot]
    assert [b.login for b in bots] == ["depbot[bot]"]
    for p in small.people.values():
        assert p.user_key.startswith("JIRAUSER") and p.login and p.username
        assert p.account_id.startswith(("712020:", "557058:"))
    assert len({p.account_id for p in small.people.values()}) == len(small.people)
    assert len({p.login for p in small.people.values()}) == len(small.people)


def test_statuses_and_projects(small: Store) -> None:
    st = small.jira_statuses
    names = {s.name: s for s in st.values()}
    for name, state, cat in [("To Do", "backlog", "new"), ("In Progress", "active", "indeterminate"),
                             ("Ready for QA", "queue", "indeterminate"), ("Code Review", "approval", "indeterminate"),
                             ("Needs Decision", "decision", "indeterminate"), ("Blocked", "blocked", "indeterminate"),
                             ("Won't Do", "done", "done"), ("Em Revisão", "approval", "indeterminate"),
                             ("Aguardando Decisão", "decision", "indeterminate")]:
        assert (names[name].state, names[name].category) == (state, cat)
    types = Counter(p.type for p in small.jira_projects.values())
    assert types["software"] >= 4 and types["service_desk"] == 1
    sd = next(p for p in small.jira_projects.values() if p.type == "service_desk")
    assert sd.service_desk_id
    pt = [p for p in small.jira_projects.values() if any(not st[s].name.isascii() for s in p.statuses)]
    assert len(pt) == 1
    used = {it.to for i in small.jira_issues if i.project == pt[0].key for h in i.histories for it in h.items
            if it.field == "status"}
    assert {st[s].state for s in used} >= {"active", "approval", "decision", "done"}
    assert len({p.team for p in small.jira_projects.values()}) == len(small.jira_projects)


def _transitions(store: Store):
    st = {**store.jira_statuses, **store.jira_deleted_statuses}
    for i in store.jira_issues:
        for h in i.histories:
            for it in h.items:
                if it.field == "status":
                    yield i, h, st[it.from_].state, st[it.to].state


def test_jira_phenomena(small: Store) -> None:
    st = {**small.jira_statuses, **small.jira_deleted_statuses}
    trans = list(_transitions(small))
    pairs = Counter((a, b) for _i, _h, a, b in trans)
    assert pairs[("done", "active")] > 0  # reopenings
    assert pairs[("approval", "active")] > 0 and pairs[("approval", "queue")] > 0  # rejections and approvals
    assert pairs[("decision", "active")] > 0 and pairs[("active", "blocked")] > 0
    assert pairs[("approval", "backlog")] > 0  # status regression
    assert sum(len(i.histories) > 100 for i in small.jira_issues) >= 2
    assert any(st[i.status].state not in ("done", "backlog") for i in small.jira_issues)  # still open, started
    # unassigned gaps: A -> None, later -> B
    gaps = 0
    for i in small.jira_issues:
        chain = [it for h in i.histories for it in h.items if it.field == "assignee"]
        gaps += sum(1 for a, b in itertools.pairwise(chain) if a.from_ and a.to is None and b.to)
    assert gaps > 0
    same = sum(1 for i in small.jira_issues for a, b in zip(i.histories, i.histories[1:]) if a.created == b.created)
    assert same > 0
    flags = [it for i in small.jira_issues for h in i.histories for it in h.items if it.field == "Flagged"]
    assert any(it.to_string == "Impediment" for it in flags) and any(it.to is None for it in flags)
    # assignee changes while done
    done_changes = 0
    for i in small.jira_issues:
        state = "backlog"
        for h in i.histories:
            for it in sorted(h.items, key=lambda it: it.field != "status"):
                if it.field == "status":
                    state = st[it.to].state
                elif it.field == "assignee" and state == "done":
                    done_changes += 1
    assert done_changes > 0
    fields = Counter(it.field for i in small.jira_issues for h in i.histories for it in h.items)
    for f in ("priority", "Sprint", "Fix Version", "Epic Link", "Link", "resolution"):
        assert fields[f] > 0, f
    assert any(i.resolutiondate for i in small.jira_issues)


def test_cross_team_blocks_links(small: Store) -> None:
    team = {i.key: small.jira_projects[i.project].team for i in small.jira_issues}
    issues = {i.key: i for i in small.jira_issues}
    blocks = [lk for i in small.jira_issues for lk in i.links if lk.type == "Blocks" and lk.inward_key == i.key]
    assert blocks
    for lk in blocks:
        assert team[lk.outward_key] != team[lk.inward_key]
        assert lk in issues[lk.outward_key].links
        texts = [it.to_string for h in issues[lk.inward_key].histories for it in h.items if it.field == "Link"]
        assert f"This issue is blocked by {lk.outward_key}" in texts
        texts = [it.to_string for h in issues[lk.outward_key].histories for it in h.items if it.field == "Link"]
        assert f"This issue blocks {lk.inward_key}" in texts
    removed = [it for i in small.jira_issues for h in i.histories for it in h.items
               if it.field == "Link" and it.from_string and it.from_string.startswith("This issue is blocked by")]
    assert removed


def test_jsm_approvals(small: Store) -> None:
    sd = next(p.key for p in small.jira_projects.values() if p.type == "service_desk")
    approvals = [a for i in small.jira_issues if i.project == sd for a in i.approvals]
    assert {a.final_decision for a in approvals} == {"approved", "declined", "pending"}
    for a in approvals:
        assert (a.completed is None) == (a.final_decision == "pending")
        assert a.approvers and all(d in ("approved", "declined", "pending") for _p, d in a.approvers)
        if a.final_decision != "pending":
            assert a.final_decision in {d for _p, d in a.approvers}
    assert all(not i.approvals for i in small.jira_issues if i.project != sd)


def test_decisions_outside_the_team(small: Store) -> None:
    remote = 0
    for i, h, a, _b in _transitions(small):
        if a == "decision" and h.author:
            owner = small.jira_projects[i.project].team
            member_then = {m.team for m in small.memberships if m.pid == h.author
                           and (m.valid_from is None or m.valid_from <= h.created)
                           and (m.valid_to is None or h.created < m.valid_to)}
            remote += owner not in member_then
    assert remote > 0


def test_business_hours(small: Store) -> None:
    from zoneinfo import ZoneInfo
    inside = total = 0
    for i in small.jira_issues:
        for h in i.histories:
            if h.author is None or h.author == DELETED_PID:
                continue
            p = small.people[h.author]
            local = h.created.astimezone(ZoneInfo(p.tz))
            total += 1
            inside += local.weekday() < 5 and 9 <= local.hour < 17 or (local.hour == 17 and local.minute == 0)
    assert inside / total > 0.8 and inside < total  # mostly working hours, a few odd ones


def test_github_phenomena(small: Store) -> None:
    events = Counter(e.event for p in small.github_pulls for e in p.events)
    for kind in ("review_requested", "review_request_removed", "reviewed", "review_dismissed", "ready_for_review",
                 "convert_to_draft", "assigned", "unassigned", "labeled", "unlabeled", "merged", "closed",
                 "reopened", "commented", "committed"):
        assert events[kind] > 0, kind
    reviews = [e for p in small.github_pulls for e in p.events if e.event == "reviewed"]
    assert {e.review_state for e in reviews} >= {"APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED"}
    assert any(e.review_body for e in reviews) and any(e.review_body == "" for e in reviews)
    assert any(e.requested_team for p in small.github_pulls for e in p.events)
    assert sum(len(p.events) > 100 for p in small.github_pulls) >= 2
    assert any(e.event == "review_requested" and e.created_at == p.created_at for p in small.github_pulls
               for e in p.events)
    assert any(p.author == "depbot[bot]" for p in small.github_pulls)
    assert any(e.actor == "depbot[bot]" and e.event == "reviewed" for p in small.github_pulls for e in p.events)
    states = Counter((p.state, p.merged_at is not None) for p in small.github_pulls)
    assert states[("closed", True)] and states[("closed", False)] and states[("open", False)]
    assert any(p.draft for p in small.github_pulls if p.state == "open") or events["convert_to_draft"]
    # fast approvals: empty-body approval within 5 minutes of a request
    fast = 0
    for p in small.github_pulls:
        reqs = [e.created_at for e in p.events if e.event == "review_requested"]
        for e in p.events:
            if e.event == "reviewed" and e.review_body == "" and any(0 <= (e.created_at - r).total_seconds() < 300
                                                                      for r in reqs):
                fast += 1
    assert fast > 0
    # re-requests after changes requested
    rereq = 0
    for p in small.github_pulls:
        changes = {e.actor: e.created_at for e in p.events if e.review_state == "CHANGES_REQUESTED"}
        rereq += any(e.event == "review_requested" and e.requested_reviewer in changes
                     and e.created_at > changes[e.requested_reviewer] for e in p.events)
    assert rereq > 0
    assert any(r.archived for r in small.github_repos) and len(small.github_orgs) >= 1
    assert all(f"{small.github_orgs[0]}/{t.github_slug}" in small.github_team_members for t in small.teams.values())


def test_github_issues(small: Store) -> None:
    labels = Counter((e.event, e.label) for i in small.github_issues for e in i.events)
    assert labels[("labeled", "needs-decision")] and labels[("unlabeled", "needs-decision")]
    assert labels[("labeled", "blocked")]
    assert any(i.assignees for i in small.github_issues)
    assert {i.state for i in small.github_issues} == {"open", "closed"}
    assert any(e.event == "reopened" for i in small.github_issues for e in i.events)


# -- advance -----------------------------------------------------------------------------------------------

def test_advance(small: Store) -> None:
    store = fresh(small)
    before = store.now
    last_h = max(h.id for i in store.jira_issues for h in i.histories)
    snapshot = {i.key: i.updated for i in store.jira_issues}
    total = len(store.jira_issues) + len(store.github_pulls) + len(store.github_issues)
    n = advance(store, 0.05, days=1.0)
    assert n == round(0.05 * total)
    assert store.now > before and (store.now - before).total_seconds() == 86400
    changed = [i for i in store.jira_issues if i.updated != snapshot[i.key]]
    changed_gh = [p for p in [*store.github_pulls, *store.github_issues] if p.updated_at > before]
    assert len(changed) + len(changed_gh) == n
    for i in changed:
        new = [h for h in i.histories if h.created > before]
        assert new and all(h.id > last_h and before < h.created <= store.now for h in new)
    assert all_problems(store) == []
    n2 = advance(store, 0.01, days=0.5, seed=7)
    assert n2 == round(0.01 * total) and all_problems(store) == []


def test_advance_is_deterministic(small: Store) -> None:
    a, b = fresh(small), fresh(small)
    advance(a, 0.02)
    advance(b, 0.02)
    assert dataclasses.asdict(a) == dataclasses.asdict(b)


# -- config ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_config_toml(small: Store, deployment: str) -> None:
    cfg = tomllib.loads(config_toml(small, deployment))
    teams = {t["key"]: t for t in cfg["teams"]}
    assert set(teams) == set(small.teams)
    for m in small.memberships:
        p = small.people[m.pid]
        ident = p.account_id if deployment == "cloud" else p.user_key
        assert f"jira:{ident}" in {x["person"] for x in teams[m.team]["members"]}
    idents = {i["jira"]: i["github"] for i in cfg["identities"]}
    for p in small.people.values():
        if not p.bot:
            assert idents[p.account_id if deployment == "cloud" else p.user_key] == p.login
    for key, team in small.teams.items():
        cal = cfg["calendars"][teams[key]["calendar"]]
        assert cal["timezone"] == team.calendar.tz
        assert [d.isoformat() for d in cal["holidays"]] == list(team.calendar.holidays)
        assert teams[key]["github_team"] == team.github_slug
    pt = next(p for p in small.jira_projects.values() if any(not small.jira_statuses[s].name.isascii()
                                                               for s in p.statuses))
    mapping = cfg["status_mapping"]["projects"][pt.key]
    assert mapping == {small.jira_statuses[s].name: small.jira_statuses[s].state for s in pt.statuses}
    assert "depbot[bot]" in cfg["bots"]["names"]
    assert set(cfg["sources"]["jira"]["projects"]) == set(small.jira_projects)
    assert cfg["sources"]["github"]["organizations"] == small.github_orgs
    assert json.dumps(cfg, default=str)


def test_bad_arguments(small: Store) -> None:
    with pytest.raises(ValueError, match="unknown scale"):
        generate("huge", 1)
    with pytest.raises(ValueError, match="fraction"):
        advance(fresh(small), 1.5)


def test_write_pages(tmp_path) -> None:
    summary = write_pages("small", 1, tmp_path)
    assert "550 items" in summary
    manifests = [json.loads(p.read_text()) for p in tmp_path.glob("*/*/*/_manifest.json")]
    assert all(m["complete"] for m in manifests)
    parts = {(m["source"], m["partition"]) for m in manifests}
    store = generate("small", 1)
    assert parts == {("jira", "_site")} | {("jira", k) for k in store.jira_projects} \
        | {("github", r.full_name) for r in store.github_repos}
    records: dict[str, list[dict]] = {}
    for page in sorted(tmp_path.glob("*/*/*/*.jsonl")):
        stream = f"{page.parts[-4]}.{page.stem.rsplit('-', 1)[0]}"
        records.setdefault(stream, []).extend(json.loads(line) for line in page.read_text().splitlines())
    assert len(records["jira.issues"]) == 300 and len(records["github.pull_requests"]) == 200
    assert len(records["github.issues"]) == 50
    assert {i["key"] for i in records["jira.issues"]} == {c["issueKey"] for c in records["jira.changelogs"]}
    assert all(i["fields"]["status"]["name"] and i["fields"]["project"]["key"] for i in records["jira.issues"])
    hs = [(h["created"], int(h["id"])) for c in records["jira.changelogs"] for h in c["changeHistories"]]
    assert len({h for _c, h in hs}) == len(hs) > 1000
    assert {a["approval"]["finalDecision"] for a in records["jira.approvals"]} >= {"approved", "declined"}
    statuses = {s["name"] for s in records["jira.statuses"]}
    assert {"Em Revisão", "Code Review", "Pending Approval"} <= statuses
    events = records["github.timeline_events"]
    assert {"repository", "issue_number", "event"} == set(events[0])
    kinds = Counter(e["event"]["event"] for e in events)
    assert kinds["reviewed"] and kinds["review_requested"] and kinds["merged"]
    ids = [e["event"]["id"] for e in events if "id" in e["event"] and e["event"]["event"] != "committed"]
    assert len(set(ids)) == len(ids)
    pulls = records["github.pull_requests"]
    assert all(p["number"] and p["user"]["login"] and "merged_at" in p for p in pulls)
