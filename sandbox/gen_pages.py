"""Streaming the organisation into landing-area pages in bounded memory (the large benchmark).

Items are generated one by one from per-item seeds and rendered as the connectors land them in their default
modes: Jira issues with only the fields the connector asks for, changelogs as bulkfetch records; GitHub as
GraphQL nodes (the sandbox resolvers' node builders) mapped to REST shapes by the connector's `map_*`.
Differences from `generate`: ids are derived from time (unique and increasing, but large numbers), and a
"Blocks" link is recorded on the blocked issue only (its blocker was written before the link existed).
"""

from __future__ import annotations

import random
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from connectors import github_graphql as gq
from connectors.jira import BASE_FIELDS, _changelog_record, custom_field_ids
from connectors.landing import Landing
from sandbox import github_api, jira_api
from sandbox import github_graphql as sgq
from sandbox.gen_github import build_gh_issue, build_pull
from sandbox.gen_jira import build_issue, item, pick_issuetype
from sandbox.gen_org import ARCHIVED_AT, PROJECT_WEIGHTS, PROJECTS, SCALES, Org, build_org
from sandbox.model import JiraHistory, JiraIssue, JiraLink, Store

JIRA_PAGE, GH_PAGE, APPROVAL_PAGE = 100, 100, 500
JIRA_BASE = jira_api.DEFAULT_BASE
GH_BASE = "https://github.sandbox.invalid"
GH_API = "https://api.github.com"  # the connector's default api_url
SECOND = 1_000_000_000  # time-derived ids: seconds since the history start * SECOND + item * 100 + k


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


def _site(store: Store, root: Path) -> None:
    """The `_site` partition the Jira connector lands: statuses, fields, myself, link types."""
    app = SimpleNamespace(store=store, jira_deployment="cloud")
    c = jira_api._Ctx(app=app, req=None, api=3, base=JIRA_BASE)  # type: ignore[arg-type]
    import json
    land = Landing(root, "jira", "_site")
    land.write_page("statuses", json.loads(jira_api._statuses(c).body))
    land.write_page("fields", json.loads(jira_api._fields(c).body))
    land.write_page("myself", [json.loads(jira_api._myself(c).body)])
    land.write_page("link_types", json.loads(jira_api._link_types(c).body)["issueLinkTypes"])
    land.finish({}, deployment="cloud", server_version="1001.0.0-SNAPSHOT", generated=True)


SITE_FIELDS = frozenset({jira_api.FIELD_APPROVALS})


def _custom_fields(store: Store) -> dict[str, list[str]]:
    """The custom field ids the connector asks for, found as `JiraSource.custom_fields` finds them."""
    import json
    app = SimpleNamespace(store=store, jira_deployment="cloud")
    c = jira_api._Ctx(app=app, req=None, api=3, base=JIRA_BASE)  # type: ignore[arg-type]
    return custom_field_ids(json.loads(jira_api._fields(c).body))


class _JiraOut:
    """One project's landing with its page buffers."""

    def __init__(self, root: Path, key: str, fields: list[str], approval_fields: list[str]) -> None:
        self.land = Landing(root, "jira", key)
        self.fields, self.approval_fields = fields, approval_fields
        self.key = key
        self.issues: list[dict] = []
        self.changelogs: list[dict] = []
        self.approvals: list[dict] = []
        self.max_updated: datetime | None = None

    def add(self, store: Store, issue: JiraIssue, tz) -> None:
        rendered = jira_api.render_issue(store, issue, self.fields, "cloud", 3, base_url=JIRA_BASE, tz=tz,
                                         site=SITE_FIELDS)
        fields = rendered["fields"]
        values = [fields.pop(f) for f in self.approval_fields if f in fields]  # as the connector lands it
        self.issues.append(rendered)
        self.changelogs.append(_changelog_record(str(issue.id), issue.key, [
            jira_api.render_history(store, h, "cloud", 3, JIRA_BASE, tz) for h in issue.histories]))
        for a in next((v for v in values if v), None) or []:
            self.approvals.append({"issueId": str(issue.id), "issueKey": issue.key, "approval": a})
        if self.max_updated is None or issue.updated > self.max_updated:
            self.max_updated = issue.updated
        if len(self.issues) >= JIRA_PAGE:
            self.flush()

    def flush(self, final: bool = False) -> None:
        self.land.write_page("issues", self.issues)
        self.land.write_page("changelogs", self.changelogs)
        self.issues, self.changelogs = [], []
        if final or len(self.approvals) >= APPROVAL_PAGE:
            self.land.write_page("approvals", self.approvals)
            self.approvals = []

    def finish(self) -> None:
        self.flush(final=True)
        cursor = {"updated": self.max_updated.isoformat()} if self.max_updated else {}
        self.land.finish(cursor, deployment="cloud", jql=f'project = "{self.key}" ORDER BY updated ASC',
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


def write_jira(org: Org, store: Store, root: Path, scale: str, seed: int, n: int) -> tuple[int, int]:
    """Stream the Jira issues project by project; returns (histories, change items)."""
    keys = [p[0] for p in PROJECTS]
    weights = [PROJECT_WEIGHTS[k] for k in keys]
    pindex = {k: i for i, k in enumerate(keys)}
    custom = _custom_fields(store)
    approval_fields = custom.get("approvals", [])
    wanted = BASE_FIELDS + [i for ids in custom.values() for i in ids]
    outs = {k: _JiraOut(root, k, wanted, approval_fields) for k in keys}
    counters = {k: 0 for k in keys}
    epics: dict[str, list] = {k: [] for k in keys}
    recent: deque = deque(maxlen=300)
    prng = random.Random(f"pages-jira-projects:{scale}:{seed}")
    lrng = random.Random(f"pages-links:{scale}:{seed}")
    span = org.now - org.start
    tz = jira_api.user_tz(store)
    histories = items = links = 0
    prev = org.start
    for i, x in enumerate(_sorted_times(org, f"pages-jira:{scale}:{seed}", n)):
        project = prng.choices(keys, weights)[0]
        team = org.projects[project].team
        t = org.clock(org.members_at(team, org.start + span * x)[0]).add(org.start + span * x, 0)
        created = max(prev, min(t, org.now - timedelta(minutes=5)))
        prev = created
        rng = random.Random(f"jira:{scale}:{seed}:{i}")
        counters[project] += 1
        key = f"{project}-{counters[project]}"
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
        outs[project].add(store, issue, tz)
    for out in outs.values():
        out.finish()
    return histories, items


def _connection(nodes: list) -> dict:
    return {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": nodes}


def _gh_node(ctx: sgq.Ctx, obj, is_pull: bool) -> dict:
    """The PullRequest/Issue node as the connector's RepoPage query selects it, timeline complete."""
    node = sgq.item_node(ctx, obj)
    types = set(gq.PR_ITEM_TYPES if is_pull else gq.ISSUE_ITEM_TYPES)
    node["assignees"] = _connection([sgq.actor(ctx, a) for a in list(obj.assignees)[:20]])
    node["labels"] = _connection([sgq.label_node(ctx, obj.repo, n) for n in list(obj.labels)[:30]])
    if is_pull:
        users, teams = github_api.pending_requests(ctx.store, obj)
        org = obj.repo.split("/")[0]
        reqs = [sgq.actor(ctx, u) for u in users] + [sgq.team_node(ctx, org, t) for t in teams]
        node["reviewRequests"] = _connection([{"requestedReviewer": r} for r in reqs[:20]])
    node["timelineItems"] = _connection([sgq.timeline_node(ctx, obj, e) for e in obj.events
                                         if e.event in sgq.TIMELINE and sgq.TIMELINE[e.event][1] in types])
    return node


class _RepoOut:
    def __init__(self, ctx: sgq.Ctx, root: Path, repo) -> None:
        self.land = Landing(root, "github", repo.full_name)
        self.land.write_page("repositories", [gq.map_repository(sgq.repo_node(ctx, repo))])
        self.repo = repo.full_name
        self.buf: dict[str, list[dict]] = {"pull_requests": [], "issues": []}
        self.events: dict[str, list[dict]] = {"pull_requests": [], "issues": []}
        self.max_updated: datetime | None = None

    def add(self, ctx: sgq.Ctx, stream: str, obj) -> None:
        is_pull = stream == "pull_requests"
        node = _gh_node(ctx, obj, is_pull)
        self.buf[stream].append((gq.map_pull if is_pull else gq.map_issue)(node, self.repo, GH_API))
        self.events[stream].extend(
            {"repository": self.repo, "issue_number": obj.number, "event": e}
            for e in map(gq.map_timeline_item, node["timelineItems"]["nodes"]) if e)
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
        self.land.finish(cursor, api="graphql", requests=0, since=None, generated=True)


def write_github(org: Org, store: Store, root: Path, scale: str, seed: int, n_pulls: int,
                 n_issues: int) -> int:
    """Stream pulls and issues repository by repository; returns the number of timeline events."""
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
    ctx = sgq.Ctx(SimpleNamespace(store=store), GH_BASE, "")  # type: ignore[arg-type]
    outs = [_RepoOut(ctx, root, r) for r in org.repos]
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
        else:
            obj, dismissals = build_gh_issue(org, irng, repo, numbers[ri], 1_900_000_000 + k * 3, created,
                                             org.now), []
        for e, eid in zip(obj.events, _time_ids(org, [e.created_at for e in obj.events], k)):
            e.id = eid
        for d, rev in dismissals:
            d.dismissed_review_id = rev.id
        events += len(obj.events)
        if kind == 0:
            outs[ri].add(ctx, "pull_requests", obj)
        else:
            outs[ri].add(ctx, "issues", obj)
    for out in outs:
        out.finish()
    return events


def _jira_job(scale: str, seed: int, root: Path, n: int) -> tuple[int, int]:
    org = build_org(scale, seed)
    return write_jira(org, skeleton(org, scale, seed), root, scale, seed, n)


def _github_job(scale: str, seed: int, root: Path, n_pulls: int, n_issues: int) -> int:
    org = build_org(scale, seed)
    return write_github(org, skeleton(org, scale, seed), root, scale, seed, n_pulls, n_issues)


def write_pages(scale: str, seed: int, out_dir) -> str:
    """Write the organisation's landing pages under `out_dir`; returns a one-line summary."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; use one of {', '.join(SCALES)}")
    started = time.perf_counter()
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    n_jira, n_pulls, n_gh = SCALES[scale]
    org = build_org(scale, seed)
    _site(skeleton(org, scale, seed), root)
    if n_jira + n_pulls + n_gh > 50_000:  # Jira and GitHub in two processes
        with ProcessPoolExecutor(max_workers=2) as pool:
            jira = pool.submit(_jira_job, scale, seed, root, n_jira)
            gh = pool.submit(_github_job, scale, seed, root, n_pulls, n_gh)
            (histories, items), events = jira.result(), gh.result()
    else:
        histories, items = _jira_job(scale, seed, root, n_jira)
        events = _github_job(scale, seed, root, n_pulls, n_gh)
    return (f"{n_jira + n_pulls + n_gh} items ({n_jira} Jira issues, {n_pulls} pull requests, {n_gh} GitHub "
            f"issues), {histories + events} change events ({histories} Jira histories with {items} items, "
            f"{events} timeline events) in {time.perf_counter() - started:.0f} s")
