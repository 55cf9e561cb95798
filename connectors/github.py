"""GitHub connector: pull requests with their review requests, reviews and decisions, and issues, landed
incrementally as REST-shaped pages. GraphQL by default (few requests), REST where GraphQL is unavailable.

`connect(GitHubSettings.from_env())` -> `GitHubSource`: `discover_repositories()`, `extract_repository(...)`.
Streams: `pull_requests`, `timeline_events`, `issues`, `repositories` (see README_github.md).
Repositories are named in the data by GitHub's own `full_name`, whatever spelling or former name a
configuration or a partition key uses.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from connectors import github_graphql as gq
from connectors.http import (
    RETRY_STATUSES,
    ApiError,
    AuthError,
    ConnectorError,
    HttpClient,
    HttpSettings,
    InvalidPayloadError,
    NotFoundError,
    json_of,
)
from landing_format import Landing, partition_dir, timeline_record, write_atomic

DEFAULT_API_URL = "https://api.github.com"
REPOS_PER_QUERY = 50  # repository objects asked for in one query
TOKEN_HINT = "Check GITHUB_TOKEN: export a valid token (classic: repo, read:org scopes; fine-grained: read access)."
REPORT_IT = "run again later, and report it to your GitHub administrator if it persists"

Progress = Callable[[dict[str, Any]], None]


@dataclass
class GitHubSettings:
    api_url: str = DEFAULT_API_URL
    token: str = field(default="", repr=False)
    api: str = "graphql"  # "graphql" | "rest"
    organizations: list[str] = field(default_factory=list)
    repositories: list[str] = field(default_factory=list)
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    overlap_minutes: float = 10
    page_size: int | None = None  # PRs/issues per page: GraphQL default 50, REST 100
    timeline_page_size: int = 100  # timeline items per PR in the first query and per continuation
    bots: list[str] = field(default_factory=list)  # configured bot names, besides "[bot]" logins
    http: HttpSettings = field(default_factory=HttpSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> GitHubSettings:
        base = {"api_url": (environ.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/"),
                "token": environ.get("GITHUB_TOKEN", "")}
        return cls(**{**base, **{k: v for k, v in overrides.items() if v is not None}})

    @property
    def graphql_url(self) -> str:
        """api.github.com -> /graphql; GitHub Enterprise https://HOST/api/v3 -> https://HOST/api/graphql."""
        url = self.api_url.rstrip("/")
        if url.endswith("/api/v3"):
            return url[: -len("/v3")] + "/graphql"
        return url + "/graphql"


@dataclass
class ExtractResult:
    extract_id: str
    repository: str  # the partition key the extract was asked for
    records: dict[str, int]
    pages: dict[str, int]
    requests: int  # sent for this partition, retries included; a search's requests split evenly among its partitions
    cursor: dict[str, Any]
    manifest: Path | None = None
    full_name: str | None = None  # GitHub's name for the repository (differs after a rename, or in case)


def is_bot(user: Mapping[str, Any] | None, names: list[str] | tuple[str, ...] = ()) -> bool:
    """A bot: login ending in "[bot]", REST/GraphQL type "Bot", or a configured name."""
    if not user:
        return False
    login = str(user.get("login") or "")
    return (login.lower().endswith("[bot]") or user.get("type") == "Bot"
            or login.lower() in {n.lower() for n in names})


def matches(repo: str, include: list[str], exclude: list[str]) -> bool:
    """Shell patterns over "org/repo", case-insensitive: included (or no include list) and not excluded."""
    name = repo.lower()
    if include and not any(fnmatch.fnmatchcase(name, p.lower()) for p in include):
        return False
    return not any(fnmatch.fnmatchcase(name, p.lower()) for p in exclude)


def _parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def connect(settings: GitHubSettings) -> GitHubSource:
    if not settings.token:
        raise AuthError("GITHUB_TOKEN is not set: export GITHUB_TOKEN=<a GitHub token> (and GITHUB_API_URL for "
                        "GitHub Enterprise)")
    if settings.api not in ("graphql", "rest"):
        raise ConnectorError(f"sources.github.api must be 'graphql' or 'rest', not {settings.api!r}")
    for name in settings.repositories:
        if name.count("/") != 1 or not all(name.split("/")):
            raise ConnectorError(f"sources.github.repositories: {name!r} must be written 'org/repo'")
    return GitHubSource(settings)


# -- what a page must hold ------------------------------------------------------------------------
def _dig(obj: Any, path: str, where: str) -> Any:
    """obj[a][b]... for path "a.b"; a missing or null step is an InvalidPayloadError naming the request."""
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or cur.get(part) is None:
            raise InvalidPayloadError(f"{where}: GitHub's answer lacks {path!r}; {REPORT_IT}")
        cur = cur[part]
    return cur


def _ident(item: Any, n: int) -> str:
    if isinstance(item, dict) and isinstance(item.get("number"), int):
        return f"#{item['number']}"
    if isinstance(item, dict) and (item.get("id") or item.get("node_id")):
        return f"with id {item.get('id') or item.get('node_id')}"
    return f"number {n + 1} on the page"


def _bad_ts(value: Any) -> bool:
    try:
        _parse_ts(value)
        return False
    except (TypeError, ValueError):
        return True


def check_items(items: Any, kind: str, where: str, graphql: bool) -> list[dict[str, Any]]:
    """A page of pull requests or issues: every item has what the warehouse keys and orders by, else an
    InvalidPayloadError naming the request and the item (nothing of the stream is landed then)."""
    if not isinstance(items, list):
        got = type(items).__name__ if items is not None else "nothing"
        raise InvalidPayloadError(f"{where}: GitHub answered {got} where a list of {kind}s was due; {REPORT_IT}")
    times = ("createdAt", "updatedAt") if graphql else ("created_at", "updated_at")
    for n, item in enumerate(items):
        if item is None and graphql:
            continue  # GraphQL nulls an item it could not resolve (and says so in `errors`)
        missing = "the whole item" if not isinstance(item, dict) else next((
            f for f, bad in (("number", not isinstance(item.get("number"), int)),
                             ("id", item.get("id") in (None, "")),
                             (times[0], _bad_ts(item.get(times[0]))), (times[1], _bad_ts(item.get(times[1]))),
                             ("timelineItems", graphql and not isinstance((item.get("timelineItems") or {})
                                                                          .get("nodes"), list)))
            if bad), None)
        if missing:
            raise InvalidPayloadError(f"{where}: {kind} {_ident(item, n)} lacks {missing!r} (or it is not valid); "
                                      f"nothing of this repository's {kind}s is landed; {REPORT_IT}")
    return items


def _check_list(page: Any, kind: str, where: str) -> list[dict[str, Any]]:
    if not isinstance(page, list) or not all(isinstance(x, dict) for x in page):
        got = type(page).__name__ if page is not None else "nothing"
        raise InvalidPayloadError(f"{where}: GitHub answered {got} where a list of {kind} was due; {REPORT_IT}")
    return page


class _Etags:
    """ETags per URL for one repository, on disk under the landing root; saved when an extract finishes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.tags: dict[str, str] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.tags = {}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(self.tags, indent=0, sort_keys=True).encode())


class GitHubSource:
    """One GitHub (github.com or an Enterprise server) seen through one token."""

    def __init__(self, settings: GitHubSettings) -> None:
        self.settings = settings
        self.client = HttpClient(settings.api_url, {"Authorization": f"Bearer {settings.token}"}, settings.http,
                                 service="GitHub", auth_hint=TOKEN_HINT, url_hint="GITHUB_API_URL")
        self.client.session.headers.update({"Accept": "application/vnd.github+json",
                                            "X-GitHub-Api-Version": "2022-11-28"})
        self._repo_objects: dict[str, dict[str, Any]] = {}  # lower-case full name -> REST repository object
        self._org_repos: dict[str, set[str]] = {}  # lower-case org -> every repository discovery listed
        self._discovered: list[str] = []
        self._canonical: dict[str, str] = {}  # lower-case name (configured, former, any case) -> full_name
        self.notes: list[str] = []  # one line per configured name GitHub knows under another name

    @property
    def requests(self) -> int:
        """Every request this source sent (discovery and retries included)."""
        return self.client.log.total

    def canonical(self, name: str) -> str | None:
        """GitHub's full_name for a repository name, when discovery or an extract resolved it."""
        return self._canonical.get(name.lower())

    # -- discovery -------------------------------------------------------------------------------
    def discover_repositories(self) -> list[str]:
        """Repositories to sync, by GitHub's full_name: configured ones plus the organisations' (all the
        token's organisations when neither is configured), filtered by include/exclude. Archived ones found
        in an organisation are skipped; configured ones are synced. A configured name that differs from
        GitHub's (case, rename, transfer) is resolved, and noted in `notes` when it is a former name."""
        s = self.settings
        found: dict[str, tuple[str, bool]] = {}  # lower-case full name -> (full name, archived)
        if s.organizations or not s.repositories:
            fetch = self._org_repos_graphql if s.api == "graphql" else self._org_repos_rest
            for name, archived in fetch(s.organizations or None):
                found[name.lower()] = (name, archived)
                self._org_repos.setdefault(name.split("/")[0].lower(), set()).add(name.lower())
        configured = [n for n in dict.fromkeys(s.repositories) if n.lower() not in found]
        resolved = self.resolve(configured)
        missing = [n for n in configured if isinstance(resolved.get(n), NotFoundError)]
        if missing:
            raise NotFoundError(f"GitHub: {_names(missing)} not found, or GITHUB_TOKEN cannot see "
                                f"{'it' if len(missing) == 1 else 'them'}; check sources.github.repositories")
        for name in configured:
            value = resolved[name]
            if isinstance(value, Exception):
                raise value
            found[value.lower()] = (value, False)
        explicit = {self._canonical.get(n.lower(), n).lower() for n in s.repositories}
        for key, (name, _archived) in found.items():
            self._canonical[key] = name
        self._discovered = sorted(name for key, (name, archived) in found.items()
                                  if (not archived or key in explicit) and matches(name, s.include, s.exclude))
        return list(self._discovered)

    def resolve(self, names: list[str]) -> dict[str, str | Exception]:
        """GitHub's full_name for each name (any case, or a former name: GitHub follows renames and
        transfers), asking only for those not known yet; a name GitHub does not know maps to NotFoundError."""
        out: dict[str, str | Exception] = {}
        pending = []
        for name in names:
            if name.lower() in self._canonical:
                out[name] = self._canonical[name.lower()]
            elif name.count("/") != 1 or not all(name.split("/")):
                out[name] = ConnectorError(f"GitHub repository {name!r} must be written 'org/repo'")
            else:
                pending.append(name)
        if self.settings.api == "graphql":
            for start in range(0, len(pending), REPOS_PER_QUERY):
                batch = pending[start:start + REPOS_PER_QUERY]
                variables = {k: v for i, r in enumerate(batch) for k, v in zip((f"o{i}", f"n{i}"), r.split("/"))}
                data = self.graphql(gq.search_query(len(batch), with_search=False), variables,
                                    "graphql repositories", f"repositories {_names(batch)}", allow_not_found=True)
                for i, name in enumerate(batch):
                    node = data.get(f"r{i}")
                    out[name] = self._learn(name, node.get("nameWithOwner") if isinstance(node, dict) else None)
        else:
            for name in pending:
                try:
                    obj, _ = self.rest_get(f"/repos/{name}", label="GET /repos/{o}/{r}", what=f"repository {name}",
                                           config_named=True)
                except NotFoundError as e:
                    out[name] = e
                    continue
                out[name] = self._learn(name, obj.get("full_name") if isinstance(obj, dict) else None)
                if isinstance(out[name], str):
                    self._repo_objects[out[name].lower()] = obj
        return out

    def _learn(self, asked: str, full_name: Any) -> str | Exception:
        """Record GitHub's name for `asked`; a former name (not just another case) is noted."""
        if not isinstance(full_name, str) or full_name.count("/") != 1:
            return NotFoundError(f"GitHub: repository {asked} not found, or GITHUB_TOKEN cannot see it; check "
                                 "the name in sources.github")
        self._canonical[asked.lower()] = self._canonical[full_name.lower()] = full_name
        if asked.lower() != full_name.lower():
            note = (f"GitHub: repository {asked} is now {full_name} (renamed or transferred): its data is kept "
                    f"under {full_name}; write that name in flowlens.toml")
            if note not in self.notes:
                self.notes.append(note)
        return full_name

    def _org_repos_graphql(self, orgs: list[str] | None) -> Iterator[tuple[str, bool]]:
        pending: list[tuple[str, str | None]] = []
        where = f"POST {urlsplit(self.settings.graphql_url).path} (discovery: the token's organisations)"
        if orgs is None:
            after = None
            while True:
                data = self.graphql(gq.VIEWER_ORGS, {"after": after}, label="graphql discovery",
                                    what="the token's organisations")
                viewer = data.get("viewer")
                if not isinstance(viewer, dict) or not isinstance(viewer.get("organizations"), dict):
                    raise ConnectorError(
                        f"{where}: GitHub did not list the organisations of GITHUB_TOKEN's user (no "
                        "viewer.organizations in its answer: a GitHub App or fine-grained token cannot list them); "
                        "name them in sources.github.organizations, or the repositories in "
                        "sources.github.repositories")
                conn = viewer["organizations"]
                for org in _dig(conn, "nodes", where):
                    repos = _dig(org, "repositories", where)
                    yield from self._repo_nodes(_dig(repos, "nodes", where), where)
                    if _dig(repos, "pageInfo", where).get("hasNextPage"):
                        pending.append((_dig(org, "login", where), repos["pageInfo"].get("endCursor")))
                if not _dig(conn, "pageInfo", where).get("hasNextPage"):
                    break
                after = conn["pageInfo"].get("endCursor")
        else:
            pending = [(o, None) for o in orgs]
        for login, after in pending:
            where = f"POST {urlsplit(self.settings.graphql_url).path} (discovery: organisation {login})"
            while True:
                data = self.graphql(gq.ORG_REPOS, {"login": login, "after": after}, label="graphql discovery",
                                    what=f"organisation {login}", config_named=True)
                repos = _dig(data, "organization.repositories", where)
                yield from self._repo_nodes(_dig(repos, "nodes", where), where)
                if not _dig(repos, "pageInfo", where).get("hasNextPage"):
                    break
                after = repos["pageInfo"].get("endCursor")

    @staticmethod
    def _repo_nodes(nodes: list, where: str) -> Iterator[tuple[str, bool]]:
        for r in nodes:
            if r is None:
                continue
            name = _dig(r, "nameWithOwner", where)
            yield name, bool(r.get("isArchived"))

    def _org_repos_rest(self, orgs: list[str] | None) -> Iterator[tuple[str, bool]]:
        if orgs is None:
            orgs = [_dig(o, "login", "GET /user/orgs") for page in
                    self._rest_pages("/user/orgs", {"per_page": 100}, what="your organisations", kind="organisations")
                    for o in page]
        for org in orgs:
            for page in self._rest_pages(f"/orgs/{org}/repos", {"per_page": 100, "type": "all"},
                                         what=f"organisation {org}", kind="repositories", config_named=True):
                for repo in page:
                    name = _dig(repo, "full_name", f"GET /orgs/{org}/repos")
                    self._repo_objects[name.lower()] = repo
                    yield name, bool(repo.get("archived"))

    # -- teams -----------------------------------------------------------------------------------
    def team_organisations(self) -> list[str]:
        """The organisations whose teams to read: the configured ones, else the owners of the repositories."""
        if self.settings.organizations:
            return list(dict.fromkeys(self.settings.organizations))
        names = self._discovered or self.discover_repositories()
        return list(dict.fromkeys(n.split("/")[0] for n in names))

    def extract_teams(self, landing_root: str | Path, seen_at: str,
                      organisations: list[str] | None = None) -> ExtractResult:
        """Land the organisations' teams (`teams`) and their members with name and email (`team_members`)
        under the `_site` partition, each record stamped `seen_at` (the run's instant: memberships are kept
        per run, so a move keeps the history). An organisation whose teams the token cannot read (404, 403:
        a user account, no read:org scope) is a gap in the manifest, not a failure."""
        before = self.client.log.total
        landing = Landing(Path(landing_root), "github", "_site")
        gaps: list[dict[str, Any]] = []
        users: dict[str, dict[str, Any]] = {}  # REST: /users/{login} once per login
        orgs = organisations if organisations is not None else self.team_organisations()
        for org in orgs:
            try:  # the organisation lists its teams, or it is a gap
                listed = (list(self._org_teams_graphql(org)) if self.settings.api == "graphql"
                          else [(t, None) for t in self._org_team_list_rest(org)])
            except (NotFoundError, ApiError, AuthError) as e:
                if (isinstance(e, ApiError) and e.status != 403
                        or isinstance(e, AuthError) and "rejected the credentials" in str(e)):
                    raise
                gaps.append({"endpoint": f"/orgs/{org}/teams", "status": 404 if isinstance(e, NotFoundError) else 403,
                             "what": f"the teams of {org} (not an organisation, or no read:org scope): {e}"})
                continue
            teams = [(t, members if members is not None else self._team_members_rest(org, t["slug"], users))
                     for t, members in listed]
            landing.write_page("teams", [{"organization": org, "slug": t["slug"], "name": t.get("name"),
                                          "seen_at": seen_at} for t, _ in teams])
            landing.write_page("team_members", [
                {"organization": org, "team": t["slug"], "login": m.get("login"), "name": m.get("name") or None,
                 "email": m.get("email") or None, "seen_at": seen_at}
                for t, members in teams for m in members if m and m.get("login")])
        landing.finish({}, api=self.settings.api, organizations=orgs, seen_at=seen_at, gaps=gaps)
        return ExtractResult(landing.extract_id, "_site", dict(landing.counts), dict(landing.pages),
                             self.client.log.total - before, {})

    def _org_team_list_rest(self, org: str) -> list[dict[str, Any]]:
        return [dict(t, slug=_dig(t, "slug", f"GET /orgs/{org}/teams")) for page in
                self._rest_pages(f"/orgs/{org}/teams", {"per_page": 100}, what=f"the teams of {org}", kind="teams")
                for t in page]

    def _team_members_rest(self, org: str, slug: str, users: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """A team's members as /users/{login} answers (REST member lists carry no name or email)."""
        members = []
        for page in self._rest_pages(f"/orgs/{org}/teams/{slug}/members", {"per_page": 100},
                                     what=f"the members of team {org}/{slug}", kind="members"):
            for m in page:
                login = _dig(m, "login", f"GET /orgs/{org}/teams/{slug}/members")
                if login not in users:
                    user, _ = self.rest_get(f"/users/{login}", what=f"user {login}")
                    users[login] = user if isinstance(user, dict) else {"login": login}
                members.append(users[login])
        return members

    def _org_teams_graphql(self, org: str) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        where = f"POST {urlsplit(self.settings.graphql_url).path} (the teams of {org})"
        after = None
        while True:
            data = self.graphql(gq.ORG_TEAMS, {"login": org, "after": after}, label="graphql teams",
                                what=f"the teams of {org}", allow_not_found=True)
            if data.get("organization") is None:
                raise NotFoundError(f"{where}: no organisation {org!r} (NOT_FOUND)")
            conn = _dig(data, "organization.teams", where)
            for team in _dig(conn, "nodes", where):
                if team is None:
                    continue
                members = _dig(team, "members", where)
                nodes = list(_dig(members, "nodes", where))
                cursor = members.get("pageInfo") or {}
                while cursor.get("hasNextPage"):
                    more = self.graphql(gq.TEAM_MEMBERS, {"login": org, "slug": team["slug"],
                                                          "after": cursor.get("endCursor")},
                                        label="graphql teams", what=f"the members of team {org}/{team['slug']}")
                    page = _dig(more, "organization.team.members", where)
                    nodes += _dig(page, "nodes", where)
                    cursor = page.get("pageInfo") or {}
                yield team, [n for n in nodes if n]
            if not _dig(conn, "pageInfo", where).get("hasNextPage"):
                return
            after = conn["pageInfo"].get("endCursor")

    # -- extraction ------------------------------------------------------------------------------
    def extract_repository(self, landing_root: str | Path, repo: str, cursor: dict | None,
                           progress: Progress | None = None) -> ExtractResult:
        """Land the repository's pull requests, issues and their timelines updated since the cursor, in the
        partition `repo` (the data names the repository by GitHub's full_name). A page that lacks what the
        warehouse needs fails the extract, and nothing of it is landed."""
        if repo.count("/") != 1 or not all(repo.split("/")):
            raise ConnectorError(f"GitHub repository {repo!r} must be written 'org/repo'")
        if progress:
            self.client.on_wait = progress
        landing = Landing(Path(landing_root), "github", repo)
        since = self._since(cursor)
        run = _Run(self, landing, repo, self._canonical.get(repo.lower(), repo), since, progress)
        try:
            with self.client.tally(run.requests):
                if self.settings.api == "graphql":
                    run.graphql()
                else:
                    run.rest()
        except InvalidPayloadError:
            _discard(landing)
            raise
        new_cursor = {"updated": run.max_updated} if run.max_updated else dict(cursor or {})
        requests = sum(run.requests.values())
        manifest = landing.finish(new_cursor, api=self.settings.api, requests=requests, full_name=run.name,
                                  since=_iso(since) if since else None)
        if run.etags is not None:
            run.etags.save()
        return ExtractResult(landing.extract_id, repo, dict(landing.counts), dict(landing.pages), requests,
                             new_cursor, manifest, run.name)

    def extract_repositories(self, landing_root: str | Path, cursors: Mapping[str, dict | None],
                             progress: Progress | None = None, parallel: int = 4,
                             ) -> dict[str, ExtractResult | Exception]:
        """Extract many repositories, each into its own partition with its own manifest and cursor. GraphQL
        incremental runs share `search(type: ISSUE)` queries across repositories (each filtered by its own
        cursor); full syncs, REST mode and searches over 1,000 results go repository by repository, `parallel`
        at a time. A repository's value is its ExtractResult, or the exception that failed it."""
        if progress:
            self.client.on_wait = progress
        out: dict[str, ExtractResult | Exception] = {}
        incremental = [r for r, c in cursors.items() if self.settings.api == "graphql" and (c or {}).get("updated")]
        alone = [r for r in cursors if r not in incremental]
        searched: dict[str, str] = {}  # partition key -> full name, for the multi-repository searches
        if incremental:
            try:
                names = self.resolve(incremental)
            except ConnectorError:
                names = {}
            for key in incremental:
                value = names.get(key)
                if isinstance(value, str):
                    searched[key] = value
                else:
                    alone.append(key)  # each fails (or succeeds) alone, with its own error
        for group in self._search_groups(searched):
            try:
                out.update(self._extract_searched(Path(landing_root), {k: cursors[k] for k in group},
                                                  {k: searched[k] for k in group}, progress))
            except (_TooMany, ConnectorError):
                alone += group  # e.g. one repository gone: repository by repository, each its own error

        def one(repo: str) -> ExtractResult | Exception:
            try:
                return self.extract_repository(landing_root, repo, cursors[repo], progress)
            except ConnectorError as e:
                return e
        with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(alone) or 1))) as pool:
            out.update(zip(alone, pool.map(one, alone)))
        return {r: out[r] for r in cursors}

    def _search_groups(self, names: Mapping[str, str]) -> Iterator[list[str]]:
        """Partition keys in groups whose search string stays within GitHub's 256 characters."""
        room = gq.SEARCH_MAX_CHARS - len(" updated:>=2000-01-01T00:00:00Z sort:updated-desc")
        key_of = {name.lower(): key for key, name in names.items()}
        group: list[str] = []
        used = 0
        for token, repos in self._qualifiers(list(names.values())):
            if group and used + len(token) + 1 > room:
                yield group
                group, used = [], 0
            group += [key_of[r.lower()] for r in repos]
            used += len(token) + 1
        if group:
            yield group

    def _qualifiers(self, repos: list[str]) -> list[tuple[str, list[str]]]:
        """(qualifier, its repositories): `org:X` when every repository discovery listed to sync in X is
        wanted (results of its other, e.g. archived, repositories are dropped), else one `repo:` each."""
        wanted = {r.lower() for r in repos}
        out: list[tuple[str, list[str]]] = []
        for org in dict.fromkeys(r.split("/")[0].lower() for r in repos):
            mine = [r for r in repos if r.split("/")[0].lower() == org]
            live = {n.lower() for n in self._discovered if n.split("/")[0].lower() == org}
            if org in self._org_repos and len(mine) > 1 and live <= wanted:
                out.append((f"org:{org}", mine))
            else:
                out += [(f"repo:{r}", [r]) for r in mine]
        return out

    def _search_string(self, repos: list[str], since: datetime) -> str:
        return " ".join(q for q, _ in self._qualifiers(repos)) + f" updated:>={_iso(since)} sort:updated-desc"

    def _extract_searched(self, root: Path, cursors: dict[str, dict | None], names: dict[str, str],
                          progress: Progress | None) -> dict[str, ExtractResult]:
        """One search (paged) for a group of repositories, landed per repository. Requests for one
        repository (its timeline continuations) count for it; the search's are split evenly."""
        keys = list(cursors)
        sinces = {k: self._since(cursors[k]) for k in keys}
        runs = {k: _Run(self, Landing(root, "github", k), k, names[k], sinces[k], progress) for k in keys}
        by_lower = {names[k].lower(): k for k in keys}
        q = self._search_string([names[k] for k in keys], min(sinces.values()))
        s = self.settings
        common: Counter = Counter()
        size, after, first_page = s.page_size or 50, None, True
        landed_repos = set()
        try:
            while True:
                n_repos = min(len(keys), REPOS_PER_QUERY) if first_page else 0
                variables: dict[str, Any] = {"q": q, "after": after, "tlFirst": s.timeline_page_size}
                for i, k in enumerate(keys[:n_repos]):
                    variables[f"o{i}"], variables[f"n{i}"] = names[k].split("/")
                with self.client.tally(common):
                    data, size = runs[keys[0]]._with_smaller_pages(gq.search_query(n_repos), variables, size,
                                                                   ("first",), "graphql search", f"search {q}")
                where = f"POST {urlsplit(s.graphql_url).path} (search {q!r})"
                conn = _dig(data, "search", where)
                if first_page and int(conn.get("issueCount") or 0) > gq.SEARCH_MAX_RESULTS:
                    raise _TooMany()
                for i, k in enumerate(keys[:n_repos]):
                    if isinstance(data.get(f"r{i}"), dict):
                        runs[k].land_repository(data[f"r{i}"], where)
                        landed_repos.add(k)
                first_page = False
                split: dict[str, dict[str, list]] = {}
                for node in _dig(conn, "nodes", where):
                    if node is None:
                        continue
                    owner = (node.get("repository") or {}).get("nameWithOwner") if isinstance(node, dict) else None
                    if not isinstance(owner, str) or node.get("__typename") not in ("PullRequest", "Issue"):
                        raise InvalidPayloadError(f"{where}: a search result {_ident(node, 0)} lacks its "
                                                  f"repository or type; {REPORT_IT}")
                    key = by_lower.get(owner.lower())
                    stream = "pull_requests" if node["__typename"] == "PullRequest" else "issues"
                    if key is None:
                        continue  # another repository of the organisation
                    node = gq.unalias_issue(node)
                    check_items([node], stream[:-1].replace("_", " "), where, graphql=True)
                    if _parse_ts(node["updatedAt"]) < sinces[key]:
                        continue  # older than this repository's cursor
                    split.setdefault(key, {}).setdefault(stream, []).append(node)
                for key, streams in split.items():
                    for stream, nodes in streams.items():
                        with self.client.tally(runs[key].requests):
                            runs[key]._land_graphql(stream, nodes)
                if not _dig(conn, "pageInfo", where).get("hasNextPage"):
                    break
                after = conn["pageInfo"].get("endCursor")
                size = min(size * 2, s.page_size or 50)
            rest = [k for k in keys if k not in landed_repos]
            for start in range(0, len(rest), REPOS_PER_QUERY):
                batch = rest[start:start + REPOS_PER_QUERY]
                variables = {v: x for i, k in enumerate(batch) for v, x in zip((f"o{i}", f"n{i}"), names[k].split("/"))}
                with self.client.tally(common):
                    data = self.graphql(gq.search_query(len(batch), with_search=False), variables,
                                        "graphql repositories", f"repositories {_names([names[k] for k in batch])}")
                for i, k in enumerate(batch):
                    runs[k].land_repository(_dig(data, f"r{i}", "POST graphql (repositories)"), "graphql")
        except BaseException:
            for run in runs.values():  # redone repository by repository: nothing of this attempt stays
                _discard(run.landing)
            raise
        out = {}
        total = sum(common.values())
        for i, k in enumerate(keys):
            run, cursor = runs[k], cursors[k]
            new_cursor = {"updated": run.max_updated} if run.max_updated else dict(cursor or {})
            requests = sum(run.requests.values()) + total // len(keys) + (1 if i < total % len(keys) else 0)
            manifest = run.landing.finish(new_cursor, api="graphql", requests=requests, since=_iso(sinces[k]),
                                          full_name=run.name, search=q, grouped_with=[o for o in keys if o != k])
            out[k] = ExtractResult(run.landing.extract_id, k, dict(run.landing.counts), dict(run.landing.pages),
                                   requests, new_cursor, manifest, run.name)
        return out

    def _since(self, cursor: dict | None) -> datetime | None:
        value = (cursor or {}).get("updated")
        if not value:
            return None
        return _parse_ts(value) - timedelta(minutes=self.settings.overlap_minutes)

    # -- GraphQL ---------------------------------------------------------------------------------
    def graphql(self, query: str, variables: dict[str, Any], label: str = "graphql", what: str = "",
                *, retry_5xx: bool = True, allow_not_found: bool = False, config_named: bool = False) -> dict:
        """POST one query; its `data`, or a one-line ConnectorError (NOT_FOUND, scopes, SAML, an answer that
        is not GraphQL). 502/504 are retried by the client unless `retry_5xx` is off (the caller then retries
        with a smaller page). `allow_not_found`: NOT_FOUND errors leave their fields null in the data."""
        s = self.settings
        where = f"POST {urlsplit(s.graphql_url).path}" + (f" ({what})" if what else "")
        attempt = 0
        while True:
            try:
                resp = self.client.request("POST", s.graphql_url, json={"query": query, "variables": variables},
                                           label=label, ok=frozenset({200}),
                                           retry_on=RETRY_STATUSES if retry_5xx else RETRY_STATUSES - {502, 504})
            except ConnectorError as e:
                raise self._explain(e, what, config_named) from None
            resp.flowlens_where = where
            body = json_of(resp)
            if not isinstance(body, dict) or not isinstance(body.get("data"), dict) and not body.get("errors"):
                keys = ", ".join(sorted(body)) if isinstance(body, dict) else type(body).__name__
                raise InvalidPayloadError(f"{where}: 200 without GraphQL data or errors (got {keys or 'nothing'}); "
                                          f"check GITHUB_API_URL (GitHub Enterprise: https://HOST/api/v3) or {REPORT_IT}")
            errors = [e if isinstance(e, dict) else {"message": str(e)} for e in body.get("errors") or []]
            data = body.get("data") if isinstance(body.get("data"), dict) else {}
            rate = data.get("rateLimit")
            if isinstance(rate, dict):
                self._note_graphql_budget(rate, where)
            if not errors:
                return data
            types = {e.get("type") for e in errors}
            if allow_not_found and types == {"NOT_FOUND"}:
                return data
            if "RATE_LIMITED" in types and attempt < s.http.max_retries:
                attempt += 1
                self._wait_reset(resp.headers.get("x-ratelimit-reset"), attempt, where)
                continue
            if _transient(errors) and attempt < s.http.max_retries:
                attempt += 1
                wait = min(s.http.backoff_max_s, s.http.backoff_base_s * 2 ** (attempt - 1))
                self.client.pause(wait, f"GitHub could not run the query ({_first_message(errors)}); retry "
                                  f"{attempt} of {s.http.max_retries}", where)
                continue
            raise self._graphql_error(errors, resp.headers, what, config_named, where) from None

    def _note_graphql_budget(self, rate: dict[str, Any], where: str) -> None:
        remaining = rate.get("remaining")
        if not isinstance(remaining, int) or remaining >= self.settings.http.low_budget or not rate.get("resetAt"):
            return
        try:
            reset_in = max((_parse_ts(rate["resetAt"]).timestamp() - time.time()), 0.0)
        except ValueError:
            return
        if remaining <= 0:
            self.client.pause(reset_in + 1, "GitHub GraphQL rate limit used up: waiting for its reset", where)
        else:
            self.client.pause(reset_in / max(remaining, 1), f"GitHub GraphQL rate limit low ({remaining} points "
                              "left): spreading them to the reset", where)

    def _wait_reset(self, reset: str | None, attempt: int, where: str) -> None:
        http = self.settings.http
        wait = max(float(reset) - time.time(), 0.0) + 1 if reset and reset.isdigit() else \
            min(http.secondary_max_wait_s, http.secondary_min_wait_s * 2 ** (attempt - 1))
        self.client.pause(wait, "GitHub GraphQL rate limit (RATE_LIMITED)", where)

    def _graphql_error(self, errors: list[dict], headers: Mapping[str, str], what: str, config_named: bool,
                       where: str) -> ConnectorError:
        first = errors[0]
        kind, message = first.get("type"), " ".join(str(first.get("message", "")).split())[:300]
        if kind == "NOT_FOUND" and config_named:
            return NotFoundError(f"GitHub: {what or 'object'} not found, or GITHUB_TOKEN cannot see it "
                                 f"({message}); check the name in sources.github")
        if kind == "NOT_FOUND":
            return NotFoundError(f"{where}: GitHub answered NOT_FOUND ({message}); it may have been deleted "
                                 f"meanwhile: {REPORT_IT}")
        if kind == "INSUFFICIENT_SCOPES":
            return AuthError(f"GITHUB_TOKEN lacks the scopes this needs ({message}); add them to the token")
        if "SAML" in message or headers.get("x-github-sso"):
            return AuthError(_saml_message(what, headers.get("x-github-sso")))
        return ApiError(f"{where}: GitHub GraphQL error: {kind or ''} {message}".replace(":  ", ": "),
                        retryable=_transient(errors))

    def _explain(self, e: ConnectorError, what: str, config_named: bool = False) -> ConnectorError:
        """Turn 403/404 into the user's actual problem: SSO, scopes, or a wrong name (only when the name came
        from the configuration: a 404 under a repository that answered names the endpoint, not the repository)."""
        headers = {k.lower(): v for k, v in (e.headers or {}).items()}
        status = getattr(e, "status", None) or (404 if isinstance(e, NotFoundError) else None)
        if isinstance(e, AuthError) or status not in (403, 404):
            return e
        if headers.get("x-github-sso") or "saml" in str(e).lower():
            return AuthError(_saml_message(what, headers.get("x-github-sso")))
        granted = {s.strip() for s in headers.get("x-oauth-scopes", "").split(",") if s.strip()}
        accepted = {s.strip() for s in headers.get("x-accepted-oauth-scopes", "").split(",") if s.strip()}
        if "x-oauth-scopes" in headers and accepted and not accepted & granted:
            return AuthError(f"GITHUB_TOKEN lacks a scope for {what or 'this request'}: needs one of "
                             f"{', '.join(sorted(accepted))}; it has {', '.join(sorted(granted)) or 'none'}")
        if status == 404 and config_named:
            return NotFoundError(f"GitHub: {what or 'resource'} not found, or GITHUB_TOKEN cannot see it (404); "
                                 f"check the name in sources.github")
        if status == 404:
            return NotFoundError(f"{str(e).split(': not found')[0]}: not found (404) for {what}, although its "
                                 "repository answered: this GitHub may lack the endpoint (check GITHUB_API_URL) or "
                                 f"the item was deleted meanwhile; {REPORT_IT}")
        return e

    # -- REST --------------------------------------------------------------------------------------
    def rest_get(self, path: str, params: dict[str, Any] | None = None, etags: _Etags | None = None,
                 label: str | None = None, what: str = "", config_named: bool = False) -> tuple[Any, Any]:
        """GET with an optional ETag (If-None-Match); returns (json or None on 304, response)."""
        url = self.client.url(path)
        key = url + ("?" + "&".join(f"{k}={v}" for k, v in sorted(params.items())) if params else "")
        headers = {"If-None-Match": etags.tags[key]} if etags is not None and key in etags.tags else {}
        try:
            resp = self.client.request("GET", url, params=params, headers=headers, label=label)
        except ConnectorError as e:
            raise self._explain(e, what, config_named) from None
        if resp.status_code == 304:
            return None, resp
        body = json_of(resp)
        if etags is not None and resp.headers.get("ETag"):
            etags.tags[key] = resp.headers["ETag"]
        return body, resp

    def _rest_pages(self, path: str, params: dict[str, Any], what: str = "", label: str | None = None,
                    etags: _Etags | None = None, kind: str = "items", config_named: bool = False,
                    ) -> Iterator[list[dict]]:
        """Pages of a Link-paginated list; the first page may be conditional (None on 304 ends it)."""
        data, resp = self.rest_get(path, params, etags=etags, label=label, what=what, config_named=config_named)
        while True:
            if data is None:
                return
            yield _check_list(data, kind, f"GET {urlsplit(resp.url).path}")
            nxt = resp.links.get("next", {}).get("url")
            if not nxt:
                return
            data, resp = self.rest_get(nxt, label=label, what=what)

    def _rest_repo(self, name: str, etags: _Etags | None) -> dict[str, Any]:
        """The repository object (GitHub follows a rename or transfer with a 301 to the new place)."""
        if name.lower() in self._repo_objects:
            return self._repo_objects[name.lower()]
        data, _ = self.rest_get(f"/repos/{name}", etags=etags, label="GET /repos/{o}/{r}",
                                what=f"repository {name}", config_named=True)
        if data is None:  # 304: unchanged since the last run, but this process has not seen it yet
            data, _ = self.rest_get(f"/repos/{name}", label="GET /repos/{o}/{r}", what=f"repository {name}",
                                    config_named=True)
        _dig(data, "full_name", f"GET /repos/{name}")
        self._repo_objects[data["full_name"].lower()] = data
        return data


class _TooMany(Exception):
    """The search matched more than GitHub serves (1,000): go repository by repository."""


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"repositor{'y' if len(names) == 1 else 'ies'} {shown}"


def _discard(landing: Landing) -> None:
    """Remove an extract that failed on a page it could not trust: none of its pages may be loaded."""
    shutil.rmtree(landing.directory, ignore_errors=True)


def _first_message(errors: list[dict]) -> str:
    return " ".join(str(errors[0].get("message", "")).split())[:120]


def _transient(errors: list[dict]) -> bool:
    """GitHub's GraphQL says so in the body (status 200) when a query timed out or failed on its side."""
    text = " ".join(str(e.get("message", "")) for e in errors).lower()
    return all(not e.get("type") or e.get("type") in ("TIMEOUT", "SERVICE_UNAVAILABLE") for e in errors) and any(
        w in text for w in ("something went wrong", "timeout", "timed out", "try again", "temporarily"))


def _saml_message(what: str, sso: str | None) -> str:
    url = ""
    if sso and "url=" in sso:
        url = " at " + sso.split("url=", 1)[1].split(";")[0].strip()
    return (f"GitHub {what or 'organisation'} enforces SAML single sign-on: authorise GITHUB_TOKEN for that "
            f"organisation (token settings -> Configure SSO){url}")


class _Run:
    """One repository's extract: fetches pages, checks them, maps them, lands them, tracks the cursor.
    `key` is the partition (landing, cursor); `name` is GitHub's full_name, used in every record."""

    def __init__(self, source: GitHubSource, landing: Landing, key: str, name: str, since: datetime | None,
                 progress: Progress | None) -> None:
        self.source, self.landing, self.key, self.name = source, landing, key, name
        self.since, self.progress = since, progress
        self.settings = source.settings
        self.max_updated: str | None = None
        self._max_ts: datetime | None = None
        self.etags: _Etags | None = None
        self.requests: Counter = Counter()  # this repository's requests by endpoint (HttpClient.tally)
        self._seen: dict[str, set[int]] = {"pull_requests": set(), "issues": set()}
        self._repo_landed = False

    @property
    def owner_name(self) -> tuple[str, str]:
        owner, name = self.name.split("/")
        return owner, name

    def land_repository(self, node: dict[str, Any], where: str) -> None:
        """Land the repository object once; its nameWithOwner becomes the name used in every record."""
        full = _dig(node, "nameWithOwner", where)
        if not isinstance(full, str) or full.count("/") != 1:
            raise InvalidPayloadError(f"{where}: GitHub's answer names the repository {full!r}; {REPORT_IT}")
        self.name = full
        self.source._learn(self.key, full)
        if not self._repo_landed:
            self.landing.write_page("repositories", [gq.map_repository(node)])
            self._repo_landed = True

    def _note_updated(self, value: str | None) -> None:
        if value:
            ts = _parse_ts(value)
            if self._max_ts is None or ts > self._max_ts:
                self._max_ts, self.max_updated = ts, value

    def _fresh(self, item: dict[str, Any]) -> bool:
        return self.since is None or _parse_ts(item["updated_at"]) >= self.since

    def _land(self, stream: str, items: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
        """Land one page of pulls or issues (first occurrence only) with their timeline events."""
        seen = self._seen[stream]
        fresh = [i for i in items if i["number"] not in seen]
        seen.update(i["number"] for i in fresh)
        numbers = {i["number"] for i in fresh}
        for i in fresh:
            self._note_updated(i.get("updated_at"))
        self.landing.write_page(stream, fresh)
        self.landing.write_page("timeline_events", [e for e in events if e["issue_number"] in numbers])
        if self.progress:
            self.progress({"repository": self.key, "stream": stream, "records": dict(self.landing.counts),
                           "pages": sum(self.landing.pages.values()), "requests": sum(self.requests.values())})

    def _wrap(self, number: int, event: dict[str, Any]) -> dict[str, Any]:
        return timeline_record(self.name, number, event)

    # -- GraphQL -----------------------------------------------------------------------------------
    def graphql(self) -> None:
        s = self.settings
        size = s.page_size or 50
        want_pulls, want_issues = True, True
        pr_after = issue_after = None
        path = urlsplit(s.graphql_url).path
        while want_pulls or want_issues:
            owner, name = self.owner_name
            variables = {"owner": owner, "name": name, "withPulls": want_pulls, "prFirst": size, "prAfter": pr_after,
                         "withIssues": want_issues, "issueFirst": size, "issueAfter": issue_after,
                         "since": _iso(self.since) if self.since else None, "tlFirst": s.timeline_page_size}
            data, size = self._with_smaller_pages(gq.REPO_PAGE, variables, size, ("prFirst", "issueFirst"),
                                                  "graphql pulls", f"repository {self.name}", config_named=True)
            repo = data.get("repository")
            if repo is None:
                raise NotFoundError(f"GitHub: repository {self.name} not found, or GITHUB_TOKEN cannot see it; "
                                    "check the name in sources.github")
            self.land_repository(repo, f"POST {path} (repository {self.name})")
            if want_pulls:
                where = f"POST {path} (pull requests of {self.name}, page after {pr_after or 'the start'})"
                conn = _dig(repo, "pullRequests", where)
                nodes = [n for n in check_items(_dig(conn, "nodes", where), "pull request", where, graphql=True)
                         if n]
                fresh = [n for n in nodes if self._fresh({"updated_at": n["updatedAt"]})]
                self._land_graphql("pull_requests", fresh)
                want_pulls = bool(_dig(conn, "pageInfo", where).get("hasNextPage")) and len(fresh) == len(nodes)
                pr_after = conn["pageInfo"].get("endCursor")
            if want_issues:
                where = f"POST {path} (issues of {self.name}, page after {issue_after or 'the start'})"
                conn = _dig(repo, "issues", where)
                nodes = [n for n in check_items(_dig(conn, "nodes", where), "issue", where, graphql=True) if n]
                self._land_graphql("issues", nodes)
                want_issues = bool(_dig(conn, "pageInfo", where).get("hasNextPage"))
                issue_after = conn["pageInfo"].get("endCursor")
            size = min(size * 2, s.page_size or 50)  # grow back after a 502 shrank it

    def _land_graphql(self, stream: str, nodes: list[dict[str, Any]]) -> None:
        api = self.settings.api_url
        kind = "pull request" if stream == "pull_requests" else "issue"
        mapper = gq.map_pull if stream == "pull_requests" else gq.map_issue
        items = [mapper(n, self.name, api) for n in nodes]
        items_by_id = {n["id"]: n["number"] for n in nodes}
        events: list[dict[str, Any]] = []
        pending: list[tuple[str, str]] = []  # (node id, cursor) of timelines that need more pages
        path = urlsplit(self.settings.graphql_url).path
        for n in nodes:
            tl = n["timelineItems"]
            events += [self._wrap(n["number"], e) for e in map(gq.map_timeline_item, tl["nodes"]) if e]
            if (tl.get("pageInfo") or {}).get("hasNextPage"):
                pending.append((n["id"], tl["pageInfo"].get("endCursor")))
        while pending:
            batch, pending = pending[:10], pending[10:]
            query = gq.timelines_query(len(batch))
            variables: dict[str, Any] = {"first": self.settings.timeline_page_size}
            for i, (node_id, after) in enumerate(batch):
                variables[f"id{i}"], variables[f"after{i}"] = node_id, after
            what = f"timelines of {self.name} {', '.join('#' + str(items_by_id[b[0]]) for b in batch)}"
            data, _ = self._with_smaller_pages(query, variables, self.settings.timeline_page_size, ("first",),
                                               "graphql timelines", what)
            for i, (node_id, _after) in enumerate(batch):
                number = items_by_id[node_id]
                where = f"POST {path} (the timeline of {kind} {self.name}#{number})"
                node = data.get(f"t{i}")
                tl = (node or {}).get("timelineItems") or (node or {}).get("issueTimeline")
                if not isinstance(tl, dict) or not isinstance(tl.get("nodes"), list):
                    raise InvalidPayloadError(f"{where}: GitHub's answer lacks the rest of the timeline; "
                                              f"nothing of this repository's {kind}s is landed; {REPORT_IT}")
                events += [self._wrap(number, e) for e in map(gq.map_timeline_item, tl["nodes"]) if e]
                if (tl.get("pageInfo") or {}).get("hasNextPage"):
                    pending.append((node_id, tl["pageInfo"].get("endCursor")))
        self._land(stream, items, events)

    def _with_smaller_pages(self, query: str, variables: dict[str, Any], size: int, keys: tuple[str, ...],
                            label: str, what: str, config_named: bool = False) -> tuple[dict, int]:
        """GitHub answers 502 when a page is too heavy to build in time: retry with half the page; once at
        one item, retry with backoff up to `max_retries` times."""
        http, attempt, failures = self.settings.http, 0, 0
        while True:
            try:
                return self.source.graphql(query, {**variables, **{k: size for k in keys}}, label, what,
                                           retry_5xx=False, config_named=config_named), size
            except ApiError as e:
                if e.status not in (502, 504) or attempt >= http.max_retries:
                    raise
                failures += 1
                if size > 1:
                    size = max(size // 2, 1)
                else:
                    attempt += 1
                time.sleep(min(http.backoff_max_s, http.backoff_base_s * 2 ** min(failures - 1, 10)))

    # -- REST --------------------------------------------------------------------------------------
    def rest(self) -> None:
        src, s = self.source, self.settings
        # Conditional requests only on incremental runs: a full run must get every page's body.
        self.etags = _Etags(Path(self.landing.root) / "github" / "_etags" / f"{partition_dir(self.key)}.json")
        cond = self.etags if self.since is not None else None
        repo_obj = src._rest_repo(self.name, cond)
        self.name = repo_obj["full_name"]
        src._learn(self.key, self.name)
        self.landing.write_page("repositories", [repo_obj])
        size = s.page_size or 100
        what = f"repository {self.name}"
        pulls_params = {"state": "all", "sort": "updated", "direction": "desc", "per_page": size}
        with ThreadPoolExecutor(max_workers=max(s.http.max_in_flight, 1)) as pool:
            for page in src._rest_pages(f"/repos/{self.name}/pulls", pulls_params, what, "GET pulls", cond,
                                        kind="pull requests", config_named=True):
                page = check_items(page, "pull request", f"GET /repos/{self.name}/pulls", graphql=False)
                fresh = [p for p in page if self._fresh(p)]
                self._land("pull_requests", fresh, self._rest_timelines(pool, fresh, cond, "pull request"))
                if len(fresh) < len(page):
                    break
            issue_params: dict[str, Any] = {"state": "all", "sort": "updated", "direction": "desc",
                                            "per_page": size}
            if self.since:
                issue_params["since"] = _iso(self.since)
            for page in src._rest_pages(f"/repos/{self.name}/issues", issue_params, what, "GET issues", cond,
                                        kind="issues", config_named=True):
                issues = [i for i in page if "pull_request" not in i]
                issues = check_items(issues, "issue", f"GET /repos/{self.name}/issues", graphql=False)
                self._land("issues", issues, self._rest_timelines(pool, issues, cond, "issue"))

    def _rest_timelines(self, pool: ThreadPoolExecutor, items: list[dict[str, Any]],
                        etags: _Etags | None, kind: str) -> list[dict[str, Any]]:
        def one(number: int) -> list[dict[str, Any]]:
            out = []
            path = f"/repos/{self.name}/issues/{number}/timeline"
            for page in self.source._rest_pages(path, {"per_page": 100}, f"the timeline of {kind} {self.name}#{number}",
                                                "GET timeline", etags, kind="timeline events"):
                out += [self._wrap(number, e) for e in page if e.get("event") not in gq.UNUSED_EVENTS]
            return out

        def counted(number: int) -> list[dict[str, Any]]:
            with self.source.client.tally(self.requests):  # a worker thread: its own tally block, same counter
                return one(number)

        return [e for events in pool.map(counted, [i["number"] for i in items]) for e in events]


__all__ = ["ExtractResult", "GitHubSettings", "GitHubSource", "check_items", "connect", "is_bot", "matches"]
