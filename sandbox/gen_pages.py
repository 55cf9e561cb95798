"""The landing pages of a first full extract, rendered by the sandbox's own API renderers.

`land_store(store, root)` lands a generated organisation; `write_pages(scale, seed, dir)` streams one too
large to hold in memory (the transform benchmark's input), item by item from per-item seeds. The pages
follow `landing_format` as an extract of every project and repository, each configured by name, lands
them: Jira issues as search answers them for ISSUE_FIELDS, the Approvals field as its own stream,
changelogs whole; GitHub's REST objects cut down to `landing_format.COMPACT` (as a GraphQL-mode extract
lands them), with the timeline events of `landing_format.TIMELINE_EVENTS`. tests/test_gen_pages.py checks that the connectors, run against the
sandbox, land the same warehouse. Streaming differs from `generate`: ids are derived from time (unique and
increasing, but large numbers), and a "Blocks" link is recorded on the blocked issue only (its blocker was
written before the link existed).
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict, deque
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from landing_format import (
    COMPACT,
    SITE,
    TIMELINE_EVENTS,
    Landing,
    approval_record,
    changelog_record,
    compact,
    remote_links_record,
    timeline_record,
)
from sandbox import github_api, jira_api
from sandbox.gen_github import IssueKeys, build_gh_issue, build_pull, name_issue
from sandbox.gen_jira import build_issue, item, pick_issuetype
from sandbox.gen_org import ARCHIVED_AT, PROJECT_WEIGHTS, PROJECTS, SCALES, Org, build_org
from sandbox.model import GhIssue, GhPull, GhRepo, JiraHistory, JiraIssue, JiraLink, Store

JIRA_PAGE, GH_PAGE, APPROVAL_PAGE = 100, 100, 500
JIRA_BASE = jira_api.DEFAULT_BASE
GH_BASE = "https://github.sandbox.invalid"
SECOND = 1_000_000_000  # time-derived ids: seconds since the history start * SECOND + item * 100 + k
# What a flow-metrics client asks Jira's search for: the system fields it reads, then Team, Sprint, Flagged,
# Epic Link and JSM's Approvals (answered only by sites that have it).
ISSUE_FIELDS = ["summary", "project", "issuetype", "status", "assignee", "reporter", "created", "updated",
                "resolution", "resolutiondate", "priority", "labels", "issuelinks", "parent", jira_api.FIELD_TEAM,
                jira_api.FIELD_SPRINT, jira_api.FIELD_FLAGGED, jira_api.FIELD_EPIC_LINK, jira_api.FIELD_APPROVALS]


def skeleton(org: Org, scale: str, seed: int) -> Store:
    """A Store with the organisation's fixed parts and no items: what the renderers need."""
    platform = org.members_at("platform", org.now)
    return Store(seed=seed, scale=scale, now=org.now, teams=org.teams, people=org.people,
                 memberships=org.memberships, jira_statuses=org.statuses, jira_projects=org.projects,
                 jira_issues=[], github_orgs=sorted({r.org for r in org.repos}), github_repos=org.repos,
                 github_team_members=org.team_members, github_pulls=[], github_issues=[],
                 jira_user_pid=platform[0], github_user_login=org.people[platform[0]].login)


def _sorted_times(org: Org, label: str, n: int) -> list[float]:
    rng = random.Random(label)
    return sorted(rng.random() ** 0.85 for _ in range(n))


def _time_ids(org: Org, times: list[datetime], item_no: int) -> list[int]:
    out, last, k = [], None, 0
    for t in times:
        secs = int((t - org.start).total_seconds())
        k = k + 1 if secs == last else 0
        last = secs
        out.append(secs * SECOND + (item_no % 10_000_000) * 100 + min(k, 99))
    return out


def _jira_ctx(store: Store, deployment: str, base: str) -> jira_api._Ctx:
    app = SimpleNamespace(store=store, jira_deployment=deployment)
    return jira_api._Ctx(app=app, req=None, api=3 if deployment == "cloud" else 2, base=base)  # type: ignore


def land_site(store: Store, root: Path, deployment: str = "cloud", base: str = JIRA_BASE) -> None:
    """The Jira site's own streams (partition `_site`): statuses, fields, myself, link types."""
    c = _jira_ctx(store, deployment, base)
    land = Landing(root, "jira", SITE)
    land.write_page("statuses", json.loads(jira_api._statuses(c).body))
    land.write_page("fields", json.loads(jira_api._fields(c).body))
    land.write_page("myself", [json.loads(jira_api._myself(c).body)])
    land.write_page("link_types", json.loads(jira_api._link_types(c).body)["issueLinkTypes"])
    land.finish({}, deployment=deployment, server_version=json.loads(jira_api._server_info(c).body)["version"],
                generated=True)


class JiraPages:
    """One Jira project's extract: issues, changelogs and approvals, a page at a time."""

    def __init__(self, root: Path, store: Store, key: str, deployment: str = "cloud", base: str = JIRA_BASE) -> None:
        self.land = Landing(root, "jira", key)
        self.store, self.key, self.deployment, self.base = store, key, deployment, base
        self.api = 3 if deployment == "cloud" else 2
        self.tz = jira_api.user_tz(store)
        self.site = jira_api.site_fields(store)
        self.issues: list[dict] = []
        self.changelogs: list[dict] = []
        self.approvals: list[dict] = []
        self.remote_links: list[dict] = []
        self.max_updated: datetime | None = None

    def add(self, issue: JiraIssue) -> None:
        store, dep, api, tz = self.store, self.deployment, self.api, self.tz
        rendered = jira_api.render_issue(store, issue, ISSUE_FIELDS, dep, api, base_url=self.base, tz=tz,
                                         site=self.site)
        approvals = rendered["fields"].pop(jira_api.FIELD_APPROVALS, None) or []
        self.issues.append(rendered)
        self.changelogs.append(changelog_record(str(issue.id), issue.key, [
            jira_api.render_history(store, h, dep, api, self.base, tz) for h in issue.histories]))
        self.approvals += [approval_record(str(issue.id), issue.key, a) for a in approvals]
        self.remote_links.append(remote_links_record(str(issue.id), issue.key, [
            jira_api.render_remote_link(issue, x, self.base, api) for x in issue.remote_links]))
        if self.max_updated is None or issue.updated > self.max_updated:
            self.max_updated = issue.updated
        if len(self.issues) >= JIRA_PAGE:
            self.flush()

    def flush(self, final: bool = False) -> None:
        self.land.write_page("issues", self.issues)
        self.land.write_page("changelogs", self.changelogs)
        self.land.write_page("remote_links", self.remote_links)
        self.issues, self.changelogs, self.remote_links = [], [], []
        if final or len(self.approvals) >= APPROVAL_PAGE:
            self.land.write_page("approvals", self.approvals)
            self.approvals = []

    def finish(self) -> None:
        self.flush(final=True)
        cursor = {"updated": self.max_updated.isoformat()} if self.max_updated else {}
        self.land.finish(cursor, deployment=self.deployment, jql=f'project = "{self.key}" ORDER BY updated ASC',
                         requests=0, generated=True)


def _link(org: Org, rng: random.Random, issue: JiraIssue, recent: deque, n: int) -> bool:
    """Maybe record a 'Blocks' (or 'Relates') link from a recent issue of another team on `issue`."""
    if issue.project == "OPS" or issue.issuetype == "Epic" or rng.random() > 0.07:
        return False
    starts = [h.created for h in issue.histories
              if any(it.field == "status" and org.statuses[it.to].state == "active" for it in h.items)]
    if not starts:
        return False
    t = starts[0] + timedelta(minutes=rng.randint(5, 120))
    team = org.projects[issue.project].team
    cands = [x for x in recent if x[1] != team and x[2] < t]
    if t >= org.now or not cands:
        return False
    key = rng.choice(cands)[0]
    kind = "Blocks" if rng.random() < 0.8 else "Relates"
    text = f"This issue is blocked by {key}" if kind == "Blocks" else f"This issue relates to {key}"
    author = issue.histories[0].author if issue.histories else issue.reporter
    hs = [JiraHistory(0, author, t, [item("Link", None, None, None, key, text)])]
    t_rm = (t + timedelta(hours=rng.lognormvariate(3.5, 1.0))).replace(microsecond=0)
    if rng.random() < 0.25 and t_rm < org.now:
        hs.append(JiraHistory(0, author, t_rm, [item("Link", None, key, text, None, None)]))
    else:
        issue.links.append(JiraLink(id=str(20_000 + n), type=kind, outward_key=key, inward_key=issue.key, created=t))
    for h in hs:
        pos = sum(1 for x in issue.histories if x.created <= h.created)
        issue.histories.insert(pos, h)
        issue.updated = max(issue.updated, h.created)
    return True


def _jira_plan(org: Org, scale: str, seed: int, n: int):
    """The Jira issues write_jira makes, in order: (i, x, project, team, key, created)."""
    keys = [p[0] for p in PROJECTS]
    weights = [PROJECT_WEIGHTS[k] for k in keys]
    counters = {k: 0 for k in keys}
    prng = random.Random(f"pages-jira-projects:{scale}:{seed}")
    span = org.now - org.start
    prev = org.start
    for i, x in enumerate(_sorted_times(org, f"pages-jira:{scale}:{seed}", n)):
        project = prng.choices(keys, weights)[0]
        team = org.projects[project].team
        t = org.clock(org.members_at(team, org.start + span * x)[0]).add(org.start + span * x, 0)
        created = max(prev, min(t, org.now - timedelta(minutes=5)))
        prev = created
        counters[project] += 1
        yield i, x, project, team, f"{project}-{counters[project]}", created


def write_jira(org: Org, store: Store, root: Path, scale: str, seed: int, n: int) -> tuple[int, int]:
    """Stream the Jira issues project by project; returns (histories, change items)."""
    keys = [p[0] for p in PROJECTS]
    pindex = {k: i for i, k in enumerate(keys)}
    outs = {k: JiraPages(root, store, k) for k in keys}
    epics: dict[str, list] = {k: [] for k in keys}
    recent: deque = deque(maxlen=300)
    lrng = random.Random(f"pages-links:{scale}:{seed}")
    histories = items = links = 0
    for i, x, project, team, key, created in _jira_plan(org, scale, seed, n):
        rng = random.Random(f"jira:{scale}:{seed}:{i}")
        itype = pick_issuetype(rng, project)
        churn = 0
        if x < 0.35 and project != "OPS" and itype != "Epic" and rng.random() < 0.0375:
            churn = rng.randint(120, 300)
        issue = build_issue(org, rng, 10_000 + i, key, project, pindex[project], created, org.now, epics[project],
                            itype, churn)
        if itype == "Epic":
            epics[project].append((key, str(issue.id), created))
            del epics[project][:-50]
        links += _link(org, lrng, issue, recent, links)
        for h, hid in zip(issue.histories, _time_ids(org, [h.created for h in issue.histories], i)):
            h.id = hid
        recent.append((key, team, created))
        histories += len(issue.histories)
        items += sum(len(h.items) for h in issue.histories)
        outs[project].add(issue)
    for out in outs.values():
        out.finish()
    return histories, items


class GitHubPages:
    """One repository's extract: the repository, pull requests, issues and their timeline events."""

    def __init__(self, root: Path, store: Store, repo: GhRepo, base: str = GH_BASE) -> None:
        self.land = Landing(root, "github", repo.full_name)
        self.store, self.repo, self.base = store, repo.full_name, base
        self.land.write_page("repositories", [compact(github_api.render_repo(store, repo, base),
                                                      COMPACT["repositories"])])
        self.buf: dict[str, list[dict]] = {"pull_requests": [], "issues": []}
        self.events: dict[str, list[dict]] = {"pull_requests": [], "issues": []}
        self.max_updated: datetime | None = None

    def add(self, obj: GhPull | GhIssue) -> None:
        store, is_pull = self.store, isinstance(obj, GhPull)
        stream = "pull_requests" if is_pull else "issues"
        rendered = github_api.render_pull(store, obj, self.base) if is_pull else github_api.render_issue(
            store, obj, self.base)
        self.buf[stream].append(compact(rendered, COMPACT[stream]))
        self.events[stream] += [timeline_record(self.repo, obj.number, compact(
            github_api.render_timeline_event(store, obj, e, self.base), COMPACT[e.event]))
            for e in obj.events if e.event in TIMELINE_EVENTS]
        if self.max_updated is None or obj.updated_at > self.max_updated:
            self.max_updated = obj.updated_at
        if len(self.buf[stream]) >= GH_PAGE:
            self.flush(stream)

    def flush(self, stream: str) -> None:
        self.land.write_page(stream, self.buf[stream])
        self.land.write_page("timeline_events", self.events[stream])
        self.buf[stream], self.events[stream] = [], []

    def finish(self) -> None:
        self.flush("pull_requests")
        self.flush("issues")
        cursor = {"updated": github_api.iso(self.max_updated)} if self.max_updated else {}
        self.land.finish(cursor, api="graphql", requests=0, since=None, generated=True)  # its compact records


def land_store(store: Store, root: Path, deployment: str = "cloud", jira_base: str = JIRA_BASE,
               github_base: str = GH_BASE) -> None:
    """Every item of a generated organisation, one extract per project and per repository; the bases are
    the sites' addresses that URLs in the records name."""
    land_site(store, root, deployment, jira_base)
    issues: dict[str, list[JiraIssue]] = defaultdict(list)
    for issue in store.jira_issues:
        issues[issue.project].append(issue)
    for key in sorted(store.jira_projects):
        out = JiraPages(root, store, key, deployment, jira_base)
        for issue in sorted(issues[key], key=lambda i: (i.updated, i.id)):
            out.add(issue)
        out.finish()
    items: dict[str, list[GhPull | GhIssue]] = defaultdict(list)
    for obj in [*store.github_pulls, *store.github_issues]:
        items[obj.repo].append(obj)
    for repo in store.github_repos:
        gh = GitHubPages(root, store, repo, github_base)
        for obj in items[repo.full_name]:
            gh.add(obj)
        gh.finish()


def write_github(org: Org, store: Store, root: Path, scale: str, seed: int, n_pulls: int,
                 n_issues: int, n_jira: int = 0) -> int:
    """Stream pulls and issues repository by repository; returns the number of timeline events. Some pull
    requests name one of the `n_jira` issues write_jira makes (its plan, replayed without building them)."""
    issue_keys = IssueKeys([(c, k, team) for _i, _x, _p, team, k, c in _jira_plan(org, scale, seed, n_jira)])
    lrng = random.Random(f"pages-pull-links:{scale}:{seed}")
    rng = random.Random(f"pages-gh-plan:{scale}:{seed}")
    span = org.now - org.start
    frac_arch = ((ARCHIVED_AT - timedelta(days=20)) - org.start) / span
    plan = []
    for kind, n in ((0, n_pulls), (1, n_issues)):
        for _ in range(n):
            ri = rng.choices(range(len(org.repos)), org.repo_weights)[0]
            x = rng.random() ** 0.85
            if org.repos[ri].archived:
                x *= frac_arch
            plan.append((x, kind, ri))
    plan.sort()
    outs = [GitHubPages(root, store, r) for r in org.repos]
    numbers = [0] * len(org.repos)
    prev = [org.start] * len(org.repos)
    events = 0
    for k, (x, kind, ri) in enumerate(plan):
        repo = org.repos[ri]
        numbers[ri] += 1
        t = org.clock(org.members_at(repo.team, org.start + span * x)[0]).add(org.start + span * x, 0)
        created = max(prev[ri], min(t, org.now - timedelta(minutes=5)))
        prev[ri] = created
        irng = random.Random(f"gh:{scale}:{seed}:{kind}:{k}")
        if kind == 0:
            churn = irng.randint(120, 250) if x < 0.4 and not repo.archived and irng.random() < 0.0375 else 0
            obj, dismissals = build_pull(org, irng, repo, numbers[ri], 1_900_000_000 + k * 3, created, org.now,
                                         churn)
            name_issue(obj, lrng, issue_keys, repo.team)
        else:
            obj, dismissals = build_gh_issue(org, irng, repo, numbers[ri], 1_900_000_000 + k * 3, created,
                                             org.now), []
        for e, eid in zip(obj.events, _time_ids(org, [e.created_at for e in obj.events], k)):
            e.id = eid
        for d, rev in dismissals:
            d.dismissed_review_id = rev.id
        events += len(obj.events)
        outs[ri].add(obj)
    for out in outs:
        out.finish()
    return events


def _jira_job(scale: str, seed: int, root: Path, n: int) -> tuple[int, int]:
    org = build_org(scale, seed)
    return write_jira(org, skeleton(org, scale, seed), root, scale, seed, n)


def _github_job(scale: str, seed: int, root: Path, n_pulls: int, n_issues: int, n_jira: int) -> int:
    org = build_org(scale, seed)
    return write_github(org, skeleton(org, scale, seed), root, scale, seed, n_pulls, n_issues, n_jira)


def write_pages(scale: str, seed: int, out_dir) -> str:
    """Write the organisation's landing pages under `out_dir`; returns a one-line summary."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; use one of {', '.join(SCALES)}")
    started = time.perf_counter()
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    n_jira, n_pulls, n_gh = SCALES[scale]
    org = build_org(scale, seed)
    land_site(skeleton(org, scale, seed), root)
    if n_jira + n_pulls + n_gh > 50_000:  # Jira and GitHub in two processes
        with ProcessPoolExecutor(max_workers=2) as pool:
            jira = pool.submit(_jira_job, scale, seed, root, n_jira)
            gh = pool.submit(_github_job, scale, seed, root, n_pulls, n_gh, n_jira)
            (histories, items), events = jira.result(), gh.result()
    else:
        histories, items = _jira_job(scale, seed, root, n_jira)
        events = _github_job(scale, seed, root, n_pulls, n_gh, n_jira)
    return (f"{n_jira + n_pulls + n_gh} items ({n_jira} Jira issues, {n_pulls} pull requests, {n_gh} GitHub "
            f"issues), {histories + events} change events ({histories} Jira histories with {items} items, "
            f"{events} timeline events) in {time.perf_counter() - started:.0f} s")
