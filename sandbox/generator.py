"""The sandbox's seeded organisation: `generate`, `advance`, `write_pages`, `config_toml`.

Every random choice comes from a `random.Random` seeded from (scale, seed, item), never the wall clock,
so the same scale and seed give the same organisation, item by item.
"""

from __future__ import annotations

import bisect
import random
import re
from datetime import timedelta

from sandbox.gen_config import config_toml
from sandbox.gen_github import IssueKeys, build_gh_issue, build_pull, name_issue
from sandbox.gen_jira import build_issue, item, pick_issuetype
from sandbox.gen_migration import deleted_statuses, migrate
from sandbox.gen_org import ARCHIVED_AT, PROJECT_WEIGHTS, PROJECTS, SCALES, Org, build_org
from sandbox.gen_time import NOW
from sandbox.model import (
    DELETED_PID,
    GHOST,
    GhEvent,
    GhIssue,
    GhPull,
    JiraHistory,
    JiraIssue,
    JiraLink,
    JiraRemoteLink,
    Store,
)

__all__ = ["NOW", "SCALES", "advance", "config_toml", "generate", "write_pages"]

CHURN_SHARE = 0.015  # items with more than 100 histories / timeline events
FIRST_HISTORY_ID = 100_000
FIRST_EVENT_ID = 5_000_000_000
EPICS_KEPT = 50  # issues join one of their project's 50 newest epics
# Repositories known under a former name: GitHub redirects it (REST 301, GraphQL follows renames).
FORMER_NAMES = {"acme/payments": "acme/payments-api",  # renamed
                "acme/ml-lab": "acme-labs/ml-lab"}  # transferred to the other organisation
REMOTE_ONLY_SHARE = 0.06  # pull requests naming no issue that an issue's remote link points at (found only that way)
REMOTE_TOO_SHARE = 0.1  # pull requests naming an issue that the issue also links to
REMOTE_NOISE_SHARE = 0.02  # issues with a remote link to something that is no synced pull request
FIRST_REMOTE_LINK_ID = 30_000


_KEYS = re.compile(r"\b[a-z][a-z0-9_]+-[0-9]+\b", re.IGNORECASE | re.ASCII)


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; use one of {', '.join(SCALES)}")


def jira_plan(org: Org, scale: str, seed: int, n: int) -> list[tuple[object, str, str]]:
    """Creation instants and projects of the issues, sorted by creation (ids follow this order)."""
    rng = random.Random(f"jira-plan:{scale}:{seed}")
    keys = [p[0] for p in PROJECTS]
    weights = [PROJECT_WEIGHTS[k] for k in keys]
    span = (org.now - org.start).total_seconds()
    out = []
    for i in range(n):
        project = rng.choices(keys, weights)[0]
        # more recent work is denser: the organisation grew
        t = org.start + timedelta(seconds=span * (rng.random() ** 0.85))
        team = org.projects[project].team
        t = org.clock(org.members_at(team, t)[0]).add(t, rng.random() * 0.5)
        if t >= org.now:
            t = org.now - timedelta(hours=rng.randint(1, 48))
        out.append((t, project, f"{i}"))
    out.sort(key=lambda x: (x[0], x[2]))
    return out


def build_jira(org: Org, scale: str, seed: int, n: int) -> list[JiraIssue]:
    plan = jira_plan(org, scale, seed, n)
    counters = {k: 0 for k in org.projects}
    epics: dict[str, list] = {k: [] for k in org.projects}
    pindex = {p[0]: i for i, p in enumerate(PROJECTS)}
    span = org.now - org.start
    issues: list[JiraIssue] = []
    forced = 0
    ops = [k for k, x in enumerate(plan) if x[1] == "OPS"]
    pending = set(ops[-2:])  # the newest service requests wait for approval at the clock
    for i, (created, project, tag) in enumerate(plan):
        rng = random.Random(f"jira:{scale}:{seed}:{tag}")
        counters[project] += 1
        key = f"{project}-{counters[project]}"
        itype = pick_issuetype(rng, project)
        churn = 0
        early = created < org.start + span * 0.35
        if early and project != "OPS" and itype != "Epic" and (rng.random() < CHURN_SHARE * 2.5 or forced < 2):
            churn = rng.randint(120, 300)
            forced += 1
        issue = build_issue(org, rng, 10_000 + i, key, project, pindex[project], created, org.now, epics[project],
                            itype, churn, i in pending)
        if itype == "Epic":
            epics[project].append((key, str(issue.id), created))
            del epics[project][:-EPICS_KEPT]
        issues.append(issue)
    return issues


def _insert_history(issue: JiraIssue, h: JiraHistory) -> None:
    times = [x.created for x in issue.histories]
    issue.histories.insert(bisect.bisect_right(times, h.created), h)
    issue.updated = max(issue.updated, h.created)


def add_links(org: Org, issues: list[JiraIssue], scale: str, seed: int) -> None:
    """'Blocks' links between issues of different teams, with Link change items on both issues."""
    rng = random.Random(f"links:{scale}:{seed}")
    team_of = {i.key: org.projects[i.project].team for i in issues}
    n = 0
    for pos, b in enumerate(issues):
        if b.project == "OPS" or b.issuetype == "Epic" or rng.random() > 0.07:
            continue
        starts = [h.created for h in b.histories
                  if any(it.field == "status" and org.statuses[it.to].state == "active" for it in h.items)]
        if not starts:
            continue
        t = starts[0] + timedelta(minutes=rng.randint(5, 120))
        if t >= org.now:
            continue
        cands = [x for x in issues[max(0, pos - 200):pos]
                 if team_of[x.key] != team_of[b.key] and x.project != "OPS" and x.created < t]
        if not cands:
            continue
        x = rng.choice(cands)
        n += 1
        kind = "Blocks" if rng.random() < 0.8 else "Relates"
        link = JiraLink(id=str(20_000 + n), type=kind, outward_key=x.key, inward_key=b.key, created=t)
        b_text, x_text = ((f"This issue is blocked by {x.key}", f"This issue blocks {b.key}") if kind == "Blocks"
                          else (f"This issue relates to {x.key}", f"This issue relates to {b.key}"))
        author = b.histories[0].author if b.histories else b.reporter
        _insert_history(b, JiraHistory(0, author, t, [item("Link", None, None, None, x.key, b_text)]))
        _insert_history(x, JiraHistory(0, author, t, [item("Link", None, None, None, b.key, x_text)]))
        t_rm = t + timedelta(hours=rng.lognormvariate(3.5, 1.0))
        if rng.random() < 0.25 and t_rm < org.now:
            t_rm = t_rm.replace(microsecond=0)
            _insert_history(b, JiraHistory(0, author, t_rm, [item("Link", None, x.key, b_text, None, None)]))
            _insert_history(x, JiraHistory(0, author, t_rm, [item("Link", None, b.key, x_text, None, None)]))
        else:
            b.links.append(link)
            x.links.append(link)


def add_remote_links(issues: list[JiraIssue], pulls: list[GhPull], keys: IssueKeys, repo_team: dict[str, str],
                     scale: str, seed: int) -> None:
    """Jira remote links (web links) from issues to pull requests: some to a pull request whose branch, title and
    body name no issue (the link is found only this way), some beside a key the pull request names; the URL as
    people paste it (github.com, the repository sometimes in another case). And links to other pages (a GitHub
    issue, a pull request of a repository not synced, a wiki page) that link nothing. A link is added while the
    issue was still moving (the pull request opened before the issue's last update), so an incremental extract
    that fetches an issue's remote links when it changes sees it."""
    rng = random.Random(f"remote-links:{scale}:{seed}")
    by_key = {i.key: i for i in issues}
    ids = iter(range(FIRST_REMOTE_LINK_ID, FIRST_REMOTE_LINK_ID + 10 * len(issues) + 10))

    def url(pull: GhPull) -> str:
        repo = pull.repo if rng.random() < 0.75 else "/".join(w[:1].upper() + w[1:] for w in pull.repo.split("/"))
        return f"https://github.com/{repo}/pull/{pull.number}" + ("/files" if rng.random() < 0.1 else "")

    for pull in pulls:
        if pull.author.endswith("[bot]"):
            continue
        named = [k.upper() for text in (pull.head_ref, pull.title, pull.body) for k in _KEYS.findall(text or "")
                 if k.upper() in by_key]
        r = rng.random()
        if named and r < REMOTE_TOO_SHARE:
            issue = by_key[named[0]]
        elif not named and r < REMOTE_ONLY_SHARE:
            key = keys.pick(rng, pull.created_at, repo_team[pull.repo])
            issue = by_key.get(key or "")
        else:
            continue
        if issue is None or issue.updated < pull.created_at:
            continue
        issue.remote_links.append(JiraRemoteLink(next(ids), url(pull), f"{pull.repo}#{pull.number}: {pull.title}"))
    for issue in issues:
        if rng.random() < REMOTE_NOISE_SHARE:
            n = rng.randint(1, 400)
            target = rng.choice([f"https://github.com/acme/payments-api/issues/{n}",
                                 f"https://github.com/octo-org/shared-lib/pull/{n}",
                                 f"https://wiki.example.com/display/ENG/Design+{issue.key}"])
            issue.remote_links.append(JiraRemoteLink(next(ids), target, "Related page", "relates to"))
    for issue in issues:
        issue.remote_links.sort(key=lambda x: x.id)


FLAG_WHEN_BLOCKED = 3  # issues flagged by the very history that moves them to a blocked status


def flag_when_blocked(issues: list[JiraIssue], blocked: set[str], scale: str, seed: int) -> None:
    """A few issues are flagged by the history that moves them to a blocked status and unflagged by the one that
    moves them out: a flag and a blocked status from one instant, one wait in the ledger (docs/metrics-rulings.md)."""
    from sandbox.gen_jira import FLAG_VALUE
    from sandbox.model import FIELD_FLAGGED

    rng = random.Random(f"flag-when-blocked:{scale}:{seed}")
    found = []
    for issue in issues:
        hs = issue.histories
        for k, h in enumerate(hs):
            if any(it.field == "status" and it.to in blocked for it in h.items) and \
                    not any(it.field in ("Flagged", "Workflow") for it in h.items):
                out = next((j for j in range(k + 1, len(hs)) if any(it.field == "status" for it in hs[j].items)), None)
                between = hs[k + 1:out + 1] if out is not None else []
                if out is not None and not any(it.field in ("Flagged", "Workflow") for x in between for it in x.items):
                    found.append((issue, h, hs[out]))
                break
    for _issue, enter, leave in rng.sample(found, min(FLAG_WHEN_BLOCKED, len(found))):
        enter.items.append(item("Flagged", FIELD_FLAGGED, None, None, FLAG_VALUE, "Impediment", "custom"))
        leave.items.append(item("Flagged", FIELD_FLAGGED, FLAG_VALUE, "Impediment", None, None, "custom"))


def number_histories(issues: list[JiraIssue], first: int = FIRST_HISTORY_ID) -> None:
    """History ids: unique across the site and increasing with time."""
    allh = [(h.created, i.id, k, h) for i in issues for k, h in enumerate(i.histories)]
    allh.sort(key=lambda x: (x[0], x[1], x[2]))
    for n, (_c, _i, _k, h) in enumerate(allh):
        h.id = first + n


def build_github(org: Org, scale: str, seed: int, n_pulls: int, n_issues: int):
    rng = random.Random(f"gh-plan:{scale}:{seed}")
    span = (org.now - org.start).total_seconds()
    plan = []  # (created, repo index, kind, tag)
    for kind, n in (("pull", n_pulls), ("issue", n_issues)):
        for i in range(n):
            ri = rng.choices(range(len(org.repos)), org.repo_weights)[0]
            repo = org.repos[ri]
            t = org.start + timedelta(seconds=span * (rng.random() ** 0.85))
            if repo.archived and t > ARCHIVED_AT - timedelta(days=20):
                t = org.start + (t - org.start) * ((ARCHIVED_AT - timedelta(days=20) - org.start) / (org.now - org.start))
            t = org.clock(org.members_at(repo.team, t)[0]).add(t, rng.random() * 0.5)
            if t >= org.now:
                t = org.now - timedelta(hours=rng.randint(1, 48))
            plan.append((t, ri, kind, f"{kind}{i}"))
    plan.sort(key=lambda x: (x[0], x[3]))
    numbers = [0] * len(org.repos)
    pulls: list[GhPull] = []
    gh_issues: list[GhIssue] = []
    dismissals = []
    forced = 0
    span_td = org.now - org.start
    for k, (created, ri, kind, tag) in enumerate(plan):
        repo = org.repos[ri]
        numbers[ri] += 1
        irng = random.Random(f"gh:{scale}:{seed}:{tag}")
        if kind == "pull":
            churn = 0
            if (created < org.start + span_td * 0.4 and not repo.archived
                    and (irng.random() < CHURN_SHARE * 2.5 or forced < 2)):
                churn = irng.randint(120, 250)
                forced += 1
            pull, dis = build_pull(org, irng, repo, numbers[ri], 1_900_000_000 + k * 3, created, org.now, churn)
            pulls.append(pull)
            dismissals.extend(dis)
        else:
            gh_issues.append(build_gh_issue(org, irng, repo, numbers[ri], 2_800_000_000 + k * 3, created, org.now))
    number_events(pulls, gh_issues)
    for d, rev in dismissals:
        d.dismissed_review_id = rev.id
    return pulls, gh_issues


NEW_EVENT_KIND = "copilot_work_started"  # a timeline event type GitHub added that flowlens does not know
NEW_EVENT_PULLS = 3


def add_new_event_kind(pulls: list[GhPull], scale: str, seed: int) -> None:
    """A few pull requests carry a timeline event of a type GitHub added after flowlens was written (REST renders
    it like any issue event; GraphQL's schema here does not know it). Nothing reads it: the `unknown_values`
    check names it. Placed at an existing event's instant with an id between it and the next (ids step by 7)."""
    rng = random.Random(f"new-event-kind:{scale}:{seed}")
    cands = [p for p in pulls if len(p.events) >= 2 and not p.author.endswith("[bot]")]
    for pull in rng.sample(cands, min(NEW_EVENT_PULLS, len(cands))):
        k = rng.randrange(len(pull.events) - 1)
        prev = pull.events[k]
        pull.events.insert(k + 1, GhEvent(id=prev.id + 3, event=NEW_EVENT_KIND, actor=pull.author,
                                          created_at=prev.created_at))


DELETED_ITEMS = 3  # issues and pull requests (each) with actions of an account deleted since


def add_deleted_accounts(issues: list[JiraIssue], pulls: list[GhPull], scale: str, seed: int) -> None:
    """Accounts deleted since they acted, on a few items. Jira: some histories (status changes first) keep an
    author object naming nobody (DELETED_PID), and some JSM approvals an approver naming nobody. GitHub: a reviewer nobody requested nor assigned on the pull request
    becomes GitHub's `ghost` on their reviews (no `user` on a review in REST, a null author in GraphQL); only
    reviewers who did nothing else on it, so REST and GraphQL extracts land the same. The truth oracle counts
    them as the one person deleted:user."""
    rng = random.Random(f"deleted-accounts:{scale}:{seed}")
    cands = [i for i in issues if sum(h.author is not None for h in i.histories) >= 3]
    for issue in rng.sample(cands, min(DELETED_ITEMS, len(cands))):
        authored = [h for h in issue.histories if h.author is not None
                    and not any(it.field == "Workflow" for it in h.items)]
        authored.sort(key=lambda h: not any(it.field == "status" for it in h.items))
        for h in authored[:rng.randint(1, 2)]:
            h.author = DELETED_PID
    asked = [a for i in issues for a in i.approvals if len(a.approvers) > 1]
    for approval in rng.sample(asked, min(DELETED_ITEMS, len(asked))):  # a JSM approver deleted since
        k = rng.randrange(len(approval.approvers))
        approval.approvers[k] = (DELETED_PID, approval.approvers[k][1])
    found = []
    for pull in pulls:
        named = {e.requested_reviewer for e in pull.events} | {e.assignee for e in pull.events} | set(pull.assignees)
        others = {e.actor for e in pull.events if e.event != "reviewed"} | {pull.merged_by}
        drive_by = sorted({e.actor for e in pull.events if e.event == "reviewed" and e.actor != pull.author
                           and not e.actor.endswith("[bot]") and e.actor not in named | others})
        if drive_by:
            found.append((pull, drive_by))
    for pull, drive_by in rng.sample(found, min(DELETED_ITEMS, len(found))):
        gone = rng.choice(drive_by)
        for e in pull.events:
            if e.actor == gone:
                e.actor = GHOST


def number_events(pulls: list[GhPull], issues: list[GhIssue], first: int = FIRST_EVENT_ID) -> None:
    """Timeline event ids: unique and increasing with time."""
    alle = [(e.created_at, it.repo, it.number, k, e) for it in [*pulls, *issues] for k, e in enumerate(it.events)]
    alle.sort(key=lambda x: x[:4])
    for n, x in enumerate(alle):
        x[4].id = first + n * 7


def generate(scale: str, seed: int) -> Store:
    """The whole organisation for `scale` ("small", "medium") and `seed`, at the fixed clock NOW."""
    _check_scale(scale)
    if scale == "large":
        raise ValueError("scale 'large' is only written to disk; use write_pages")
    n_jira, n_pulls, n_gh = SCALES[scale]
    org = build_org(scale, seed)
    issues = build_jira(org, scale, seed, n_jira)
    add_links(org, issues, scale, seed)
    flag_when_blocked(issues, {k for k, v in org.statuses.items() if v.state == "blocked"}, scale, seed)
    gone = deleted_statuses()
    migrate(issues, {**{k: v.name for k, v in org.statuses.items()}, **{k: v.name for k, v in gone.items()}},
            org.lead("platform"), org.start, org.now, seed, scale)
    number_histories(issues)
    pulls, gh_issues = build_github(org, scale, seed, n_pulls, n_gh)
    add_new_event_kind(pulls, scale, seed)
    add_deleted_accounts(issues, pulls, scale, seed)
    keys = IssueKeys([(i.created, i.key, org.projects[i.project].team) for i in issues])
    lrng = random.Random(f"pull-links:{scale}:{seed}")
    repo_team = {r.full_name: r.team for r in org.repos}
    for pull in pulls:
        name_issue(pull, lrng, keys, repo_team[pull.repo])
    add_remote_links(issues, pulls, keys, repo_team, scale, seed)
    platform = org.members_at("platform", org.now)
    return Store(
        seed=seed, scale=scale, now=org.now, teams=org.teams, people=org.people, memberships=org.memberships,
        jira_statuses=org.statuses, jira_projects=org.projects, jira_issues=issues,
        github_orgs=sorted({r.org for r in org.repos}), github_repos=org.repos,
        github_team_members=org.team_members, github_pulls=pulls, github_issues=gh_issues,
        jira_user_pid=platform[0], github_user_login=org.people[platform[0]].login,
        github_former_names=dict(FORMER_NAMES), jira_deleted_statuses=gone)


from sandbox.gen_advance import advance
from sandbox.gen_pages import write_pages

