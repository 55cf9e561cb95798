"""GitHub connector: pull requests with their review requests, reviews and decisions, and issues, landed
incrementally as REST-shaped pages. GraphQL by default (few requests), REST where GraphQL is unavailable.

`connect(GitHubSettings.from_env())` -> `GitHubSource`: `discover_repositories()`, `extract_repository(...)`.
Streams: `pull_requests`, `timeline_events`, `issues`, `repositories` (see README_github.md).
"""

from __future__ import annotations

import fnmatch
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from connectors import github_graphql as gq
from connectors.http import (
    RETRY_STATUSES,
    ApiError,
    AuthError,
    ConnectorError,
    HttpClient,
    HttpSettings,
    NotFoundError,
)
from connectors.landing import Landing, partition_dir, write_atomic

DEFAULT_API_URL = "https://api.github.com"
REPOS_PER_QUERY = 50  # repository objects asked for beside one search page
TOKEN_HINT = "Check GITHUB_TOKEN: export a valid token (classic: repo, read:org scopes; fine-grained: read access)."

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
    repository: str
    records: dict[str, int]
    pages: dict[str, int]
    requests: int
    cursor: dict[str, Any]
    manifest: Path | None = None


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
    return GitHubSource(settings)


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
                                 service="GitHub", auth_hint=TOKEN_HINT)
        self.client.session.headers.update({"Accept": "application/vnd.github+json",
                                            "X-GitHub-Api-Version": "2022-11-28"})
        self._repo_objects: dict[str, dict[str, Any]] = {}  # REST discovery's repo objects, reused
        self._org_repos: dict[str, set[str]] = {}  # lower-case org -> every repository discovery listed
        self._discovered: list[str] = []

    # -- discovery -------------------------------------------------------------------------------
    def discover_repositories(self) -> list[str]:
        """Repositories to sync ("org/repo"): configured ones plus the organisations' (all the token's
        organisations when neither is configured), filtered by include/exclude, archived ones skipped."""
        s = self.settings
        found: dict[str, bool] = {}  # full name -> archived
        if s.organizations or not s.repositories:
            fetch = self._org_repos_graphql if s.api == "graphql" else self._org_repos_rest
            for name, archived in fetch(s.organizations or None):
                found[name] = archived
                self._org_repos.setdefault(name.split("/")[0].lower(), set()).add(name.lower())
        for name in s.repositories:
            found.setdefault(name, False)
        self._discovered = sorted(n for n, archived in found.items()
                                  if not archived and matches(n, s.include, s.exclude))
        return list(self._discovered)

    def _org_repos_graphql(self, orgs: list[str] | None) -> Iterator[tuple[str, bool]]:
        pending: list[tuple[str, str | None]] = []
        if orgs is None:
            after = None
            while True:
                data = self.graphql(gq.VIEWER_ORGS, {"after": after}, label="graphql discovery")
                conn = data["viewer"]["organizations"]
                for org in conn["nodes"]:
                    repos = org["repositories"]
                    yield from ((r["nameWithOwner"], bool(r["isArchived"])) for r in repos["nodes"])
                    if repos["pageInfo"]["hasNextPage"]:
                        pending.append((org["login"], repos["pageInfo"]["endCursor"]))
                if not conn["pageInfo"]["hasNextPage"]:
                    break
                after = conn["pageInfo"]["endCursor"]
        else:
            pending = [(o, None) for o in orgs]
        for login, after in pending:
            while True:
                data = self.graphql(gq.ORG_REPOS, {"login": login, "after": after}, label="graphql discovery",
                                    what=f"organisation {login}")
                repos = data["organization"]["repositories"]
                yield from ((r["nameWithOwner"], bool(r["isArchived"])) for r in repos["nodes"])
                if not repos["pageInfo"]["hasNextPage"]:
                    break
                after = repos["pageInfo"]["endCursor"]

    def _org_repos_rest(self, orgs: list[str] | None) -> Iterator[tuple[str, bool]]:
        if orgs is None:
            orgs = [o["login"] for page in self._rest_pages("/user/orgs", {"per_page": 100}, what="your organisations")
                    for o in page]
        for org in orgs:
            for page in self._rest_pages(f"/orgs/{org}/repos", {"per_page": 100, "type": "all"},
                                         what=f"organisation {org}"):
                for repo in page:
                    self._repo_objects[repo["full_name"]] = repo
                    yield repo["full_name"], bool(repo.get("archived"))

    # -- extraction ------------------------------------------------------------------------------
    def extract_repository(self, landing_root: str | Path, repo: str, cursor: dict | None,
                           progress: Progress | None = None) -> ExtractResult:
        """Land the repository's pull requests, issues and their timelines updated since the cursor."""
        if repo.count("/") != 1:
            raise ConnectorError(f"GitHub repository {repo!r} must be written 'org/repo'")
        landing = Landing(Path(landing_root), "github", repo)
        since = self._since(cursor)
        before = self.client.log.total
        run = _Run(self, landing, repo, since, progress)
        if self.settings.api == "graphql":
            run.graphql()
        else:
            run.rest()
        new_cursor = {"updated": run.max_updated} if run.max_updated else dict(cursor or {})
        requests = self.client.log.total - before
        manifest = landing.finish(new_cursor, api=self.settings.api, requests=requests,
                                  since=_iso(since) if since else None)
        if run.etags is not None:
            run.etags.save()
        return ExtractResult(landing.extract_id, repo, dict(landing.counts), dict(landing.pages), requests,
                             new_cursor, manifest)

    def extract_repositories(self, landing_root: str | Path, cursors: Mapping[str, dict | None],
                             progress: Progress | None = None, parallel: int = 4,
                             ) -> dict[str, ExtractResult | Exception]:
        """Extract many repositories, each into its own partition with its own manifest and cursor. GraphQL
        incremental runs share `search(type: ISSUE)` queries across repositories (each filtered by its own
        cursor); full syncs, REST mode and searches over 1,000 results go repository by repository, `parallel`
        at a time. A repository's value is its ExtractResult, or the exception that failed it."""
        out: dict[str, ExtractResult | Exception] = {}
        alone = [r for r, c in cursors.items() if self.settings.api != "graphql" or not (c or {}).get("updated")]
        for group in self._search_groups({r: c for r, c in cursors.items() if r not in alone}):
            try:
                out.update(self._extract_searched(Path(landing_root), {r: cursors[r] for r in group}, progress))
            except _TooMany:
                alone += group
            except ConnectorError:
                alone += group  # e.g. one repository gone: repository by repository, each its own error

        def one(repo: str) -> ExtractResult | Exception:
            try:
                return self.extract_repository(landing_root, repo, cursors[repo], progress)
            except ConnectorError as e:
                return e
        with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(alone) or 1))) as pool:
            out.update(zip(alone, pool.map(one, alone)))
        return {r: out[r] for r in cursors}

    def _search_groups(self, cursors: Mapping[str, dict | None]) -> Iterator[list[str]]:
        """Repositories in groups whose search string stays within GitHub's 256 characters."""
        room = gq.SEARCH_MAX_CHARS - len(" updated:>=2000-01-01T00:00:00Z sort:updated-desc")
        group: list[str] = []
        used = 0
        for token, repos in self._qualifiers(list(cursors)):
            if group and used + len(token) + 1 > room:
                yield group
                group, used = [], 0
            group += repos
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

    def _extract_searched(self, root: Path, cursors: dict[str, dict | None],
                          progress: Progress | None) -> dict[str, ExtractResult]:
        """One search (paged) for a group of repositories, landed per repository."""
        before = self.client.log.total
        repos = list(cursors)
        sinces = {r: self._since(cursors[r]) for r in repos}
        runs = {r: _Run(self, Landing(root, "github", r), r, sinces[r], progress) for r in repos}
        by_lower = {r.lower(): r for r in repos}
        q = self._search_string(repos, min(sinces.values()))
        s = self.settings
        size, after, first_page = s.page_size or 50, None, True
        landed_repos = set()
        while True:
            n_repos = min(len(repos), REPOS_PER_QUERY) if first_page else 0
            variables: dict[str, Any] = {"q": q, "after": after, "tlFirst": s.timeline_page_size}
            for i, r in enumerate(repos[:n_repos]):
                variables[f"o{i}"], variables[f"n{i}"] = r.split("/")
            data, size = runs[repos[0]]._with_smaller_pages(gq.search_query(n_repos), variables, size, ("first",),
                                                            "graphql search", f"search {q}")
            conn = data["search"]
            if first_page and conn["issueCount"] > gq.SEARCH_MAX_RESULTS:
                raise _TooMany()
            for i, r in enumerate(repos[:n_repos]):
                if data.get(f"r{i}"):
                    runs[r].landing.write_page("repositories", [gq.map_repository(data[f"r{i}"])])
                    landed_repos.add(r)
            first_page = False
            split: dict[str, dict[str, list]] = {}
            for node in conn["nodes"]:
                repo = by_lower.get(((node or {}).get("repository") or {}).get("nameWithOwner", "").lower())
                if repo is None or _parse_ts(node["updatedAt"]) < sinces[repo]:
                    continue  # another repository of the organisation, or older than this one's cursor
                stream = "pull_requests" if node["__typename"] == "PullRequest" else "issues"
                split.setdefault(repo, {}).setdefault(stream, []).append(gq.unalias_issue(node))
            for repo, streams in split.items():
                for stream, nodes in streams.items():
                    runs[repo]._land_graphql(stream, nodes)
            if not conn["pageInfo"]["hasNextPage"]:
                break
            after = conn["pageInfo"]["endCursor"]
            size = min(size * 2, s.page_size or 50)
        rest = [r for r in repos if r not in landed_repos]
        for start in range(0, len(rest), REPOS_PER_QUERY):
            batch = rest[start:start + REPOS_PER_QUERY]
            variables = {k: v for i, r in enumerate(batch) for k, v in zip((f"o{i}", f"n{i}"), r.split("/"))}
            data = self.graphql(gq.search_query(len(batch), with_search=False), variables, "graphql repositories")
            for i, r in enumerate(batch):
                runs[r].landing.write_page("repositories", [gq.map_repository(data[f"r{i}"])])
        total = self.client.log.total - before
        out = {}
        for i, r in enumerate(repos):
            run, cursor = runs[r], cursors[r]
            new_cursor = {"updated": run.max_updated} if run.max_updated else dict(cursor or {})
            requests = total // len(repos) + (1 if i < total % len(repos) else 0)
            manifest = run.landing.finish(new_cursor, api="graphql", requests=requests, since=_iso(sinces[r]),
                                          search=q, shared_with=[o for o in repos if o != r])
            out[r] = ExtractResult(run.landing.extract_id, r, dict(run.landing.counts), dict(run.landing.pages),
                                   requests, new_cursor, manifest)
        return out

    def _since(self, cursor: dict | None) -> datetime | None:
        value = (cursor or {}).get("updated")
        if not value:
            return None
        return _parse_ts(value) - timedelta(minutes=self.settings.overlap_minutes)

    # -- GraphQL ---------------------------------------------------------------------------------
    def graphql(self, query: str, variables: dict[str, Any], label: str = "graphql", what: str = "") -> dict:
        """POST one query; raises a one-line ConnectorError on GraphQL errors (NOT_FOUND, scopes, SAML).
        A 502 is raised as ApiError(status=502) unretried: the caller retries with a smaller page."""
        attempt = 0
        while True:
            try:
                resp = self.client.request("POST", self.settings.graphql_url, json={"query": query,
                                           "variables": variables}, label=label, ok=frozenset({200}),
                                           retry_on=RETRY_STATUSES - {502, 504})
            except ConnectorError as e:
                raise self._explain(e, what) from None
            body = resp.json()
            errors = body.get("errors") or []
            rate = (body.get("data") or {}).get("rateLimit")
            if rate:
                self._note_graphql_budget(rate)
            if not errors:
                return body["data"]
            types = {e.get("type") for e in errors}
            if "RATE_LIMITED" in types and attempt < self.settings.http.max_retries:
                attempt += 1
                self._wait_reset(resp.headers.get("x-ratelimit-reset"), attempt)
                continue
            raise self._graphql_error(errors, resp.headers, what) from None

    def _note_graphql_budget(self, rate: dict[str, Any]) -> None:
        remaining = rate.get("remaining")
        if remaining is None or remaining >= self.settings.http.low_budget or not rate.get("resetAt"):
            return
        reset_in = max((_parse_ts(rate["resetAt"]).timestamp() - time.time()), 0.0)
        self.client._pause(reset_in + 1 if remaining <= 0 else reset_in / max(remaining, 1))

    def _wait_reset(self, reset: str | None, attempt: int) -> None:
        wait = max(float(reset) - time.time(), 0.0) + 1 if reset and reset.isdigit() else \
            self.settings.http.secondary_min_wait_s * 2 ** (attempt - 1)
        self.client._pause(wait)

    def _graphql_error(self, errors: list[dict], headers: Mapping[str, str], what: str) -> ConnectorError:
        first = errors[0]
        kind, message = first.get("type"), " ".join(str(first.get("message", "")).split())[:300]
        if kind == "NOT_FOUND":
            return NotFoundError(f"GitHub: {what or 'object'} not found, or GITHUB_TOKEN cannot see it "
                                 f"({message}); check the name in sources.github")
        if kind == "INSUFFICIENT_SCOPES":
            return AuthError(f"GITHUB_TOKEN lacks the scopes this needs ({message}); add them to the token")
        if "SAML" in message or headers.get("x-github-sso"):
            return AuthError(_saml_message(what, headers.get("x-github-sso")))
        return ApiError(f"GitHub GraphQL error{' on ' + what if what else ''}: {kind or ''} {message}".strip())

    def _explain(self, e: ConnectorError, what: str) -> ConnectorError:
        """Turn 403/404 into the user's actual problem: SSO, scopes, or a wrong name."""
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
        if status == 404:
            return NotFoundError(f"GitHub: {what or 'resource'} not found, or GITHUB_TOKEN cannot see it (404); "
                                 f"check the name in sources.github")
        return e

    # -- REST --------------------------------------------------------------------------------------
    def rest_get(self, path: str, params: dict[str, Any] | None = None, etags: _Etags | None = None,
                 label: str | None = None, what: str = "") -> tuple[Any, Any]:
        """GET with an optional ETag (If-None-Match); returns (json or None on 304, response)."""
        url = self.client.url(path)
        key = url + ("?" + "&".join(f"{k}={v}" for k, v in sorted(params.items())) if params else "")
        headers = {"If-None-Match": etags.tags[key]} if etags is not None and key in etags.tags else {}
        try:
            resp = self.client.request("GET", url, params=params, headers=headers, label=label)
        except ConnectorError as e:
            raise self._explain(e, what) from None
        if resp.status_code == 304:
            return None, resp
        if etags is not None and resp.headers.get("ETag"):
            etags.tags[key] = resp.headers["ETag"]
        return resp.json(), resp

    def _rest_pages(self, path: str, params: dict[str, Any], what: str = "", label: str | None = None,
                    etags: _Etags | None = None) -> Iterator[list[dict]]:
        """Pages of a Link-paginated list; the first page may be conditional (None on 304 ends it)."""
        data, resp = self.rest_get(path, params, etags=etags, label=label, what=what)
        while True:
            if data is None:
                return
            yield data
            nxt = resp.links.get("next", {}).get("url")
            if not nxt:
                return
            data, resp = self.rest_get(nxt, label=label, what=what)

    def _rest_repo(self, repo: str, etags: _Etags | None) -> dict[str, Any] | None:
        if repo in self._repo_objects:
            return self._repo_objects[repo]
        data, _ = self.rest_get(f"/repos/{repo}", etags=etags, label="GET /repos/{o}/{r}", what=f"repository {repo}")
        return data


class _TooMany(Exception):
    """The search matched more than GitHub serves (1,000): go repository by repository."""


def _saml_message(what: str, sso: str | None) -> str:
    url = ""
    if sso and "url=" in sso:
        url = " at " + sso.split("url=", 1)[1].split(";")[0].strip()
    return (f"GitHub {what or 'organisation'} enforces SAML single sign-on: authorise GITHUB_TOKEN for that "
            f"organisation (token settings -> Configure SSO){url}")


class _Run:
    """One repository's extract: fetches pages, maps them, lands them, tracks the cursor."""

    def __init__(self, source: GitHubSource, landing: Landing, repo: str, since: datetime | None,
                 progress: Progress | None) -> None:
        self.source, self.landing, self.repo, self.since, self.progress = source, landing, repo, since, progress
        self.settings = source.settings
        self.max_updated: str | None = None
        self._max_ts: datetime | None = None
        self.etags: _Etags | None = None
        self._seen: dict[str, set[int]] = {"pull_requests": set(), "issues": set()}

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
            self.progress({"repository": self.repo, "stream": stream, "records": dict(self.landing.counts),
                           "pages": sum(self.landing.pages.values()),
                           "requests": self.source.client.log.total})

    def _wrap(self, number: int, event: dict[str, Any]) -> dict[str, Any]:
        return {"repository": self.repo, "issue_number": number, "event": event}

    # -- GraphQL -----------------------------------------------------------------------------------
    def graphql(self) -> None:
        s = self.settings
        owner, name = self.repo.split("/")
        size = s.page_size or 50
        want_pulls, want_issues = True, True
        pr_after = issue_after = None
        repo_landed = False
        while want_pulls or want_issues:
            variables = {"owner": owner, "name": name, "withPulls": want_pulls, "prFirst": size, "prAfter": pr_after,
                         "withIssues": want_issues, "issueFirst": size, "issueAfter": issue_after,
                         "since": _iso(self.since) if self.since else None, "tlFirst": s.timeline_page_size}
            data, size = self._with_smaller_pages(gq.REPO_PAGE, variables, size, ("prFirst", "issueFirst"),
                                                  "graphql pulls", f"repository {self.repo}")
            repo = data.get("repository")
            if repo is None:
                raise NotFoundError(f"GitHub: repository {self.repo} not found, or GITHUB_TOKEN cannot see it; "
                                    "check the name in sources.github")
            if not repo_landed:
                self.landing.write_page("repositories", [gq.map_repository(repo)])
                repo_landed = True
            if want_pulls:
                conn = repo["pullRequests"]
                nodes = [n for n in conn["nodes"] if n and self._fresh({"updated_at": n["updatedAt"]})]
                self._land_graphql("pull_requests", nodes)
                stop = len(nodes) < len(conn["nodes"])
                want_pulls = conn["pageInfo"]["hasNextPage"] and not stop
                pr_after = conn["pageInfo"].get("endCursor")
            if want_issues:
                conn = repo["issues"]
                self._land_graphql("issues", [n for n in conn["nodes"] if n])
                want_issues = conn["pageInfo"]["hasNextPage"]
                issue_after = conn["pageInfo"].get("endCursor")
            size = min(size * 2, s.page_size or 50)  # grow back after a 502 shrank it

    def _land_graphql(self, stream: str, nodes: list[dict[str, Any]]) -> None:
        api = self.settings.api_url
        mapper = gq.map_pull if stream == "pull_requests" else gq.map_issue
        items = [mapper(n, self.repo, api) for n in nodes]
        items_by_id = {n["id"]: n["number"] for n in nodes}
        events: list[dict[str, Any]] = []
        pending: list[tuple[str, str]] = []  # (node id, cursor) of timelines that need more pages
        for n in nodes:
            tl = n["timelineItems"]
            events += [self._wrap(n["number"], e) for e in map(gq.map_timeline_item, tl["nodes"]) if e]
            if tl["pageInfo"]["hasNextPage"]:
                pending.append((n["id"], tl["pageInfo"]["endCursor"]))
        while pending:
            batch, pending = pending[:10], pending[10:]
            query = gq.timelines_query(len(batch))
            variables: dict[str, Any] = {"first": self.settings.timeline_page_size}
            for i, (node_id, after) in enumerate(batch):
                variables[f"id{i}"], variables[f"after{i}"] = node_id, after
            data, _ = self._with_smaller_pages(query, variables, self.settings.timeline_page_size, ("first",),
                                               "graphql timelines", f"repository {self.repo}")
            for i, (node_id, _after) in enumerate(batch):
                node = data.get(f"t{i}") or {}
                tl = node.get("timelineItems") or node.get("issueTimeline")
                if tl is None:
                    continue
                number = items_by_id[node_id]
                events += [self._wrap(number, e) for e in map(gq.map_timeline_item, tl["nodes"]) if e]
                if tl["pageInfo"]["hasNextPage"]:
                    pending.append((node_id, tl["pageInfo"]["endCursor"]))
        self._land(stream, items, events)

    def _with_smaller_pages(self, query: str, variables: dict[str, Any], size: int, keys: tuple[str, ...],
                            label: str, what: str) -> tuple[dict, int]:
        """GitHub answers 502 when a page is too heavy to build in time: retry with half the page; once at
        one item, retry with backoff up to `max_retries` times."""
        http, attempt, failures = self.settings.http, 0, 0
        while True:
            try:
                return self.source.graphql(query, {**variables, **{k: size for k in keys}}, label, what), size
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
        self.etags = _Etags(Path(self.landing.root) / "github" / "_etags" / f"{partition_dir(self.repo)}.json")
        cond = self.etags if self.since is not None else None
        repo_obj = src._rest_repo(self.repo, cond)
        if repo_obj is not None:
            self.landing.write_page("repositories", [repo_obj])
        size = s.page_size or 100
        what = f"repository {self.repo}"
        pulls_params = {"state": "all", "sort": "updated", "direction": "desc", "per_page": size}
        with ThreadPoolExecutor(max_workers=max(s.http.max_in_flight, 1)) as pool:
            for page in src._rest_pages(f"/repos/{self.repo}/pulls", pulls_params, what, "GET pulls", cond):
                fresh = [p for p in page if self._fresh(p)]
                self._land("pull_requests", fresh, self._rest_timelines(pool, fresh, cond))
                if len(fresh) < len(page):
                    break
            issue_params: dict[str, Any] = {"state": "all", "sort": "updated", "direction": "desc",
                                            "per_page": size}
            if self.since:
                issue_params["since"] = _iso(self.since)
            for page in src._rest_pages(f"/repos/{self.repo}/issues", issue_params, what, "GET issues", cond):
                issues = [i for i in page if "pull_request" not in i]
                self._land("issues", issues, self._rest_timelines(pool, issues, cond))

    def _rest_timelines(self, pool: ThreadPoolExecutor, items: list[dict[str, Any]],
                        etags: _Etags | None) -> list[dict[str, Any]]:
        def one(number: int) -> list[dict[str, Any]]:
            out = []
            for page in self.source._rest_pages(f"/repos/{self.repo}/issues/{number}/timeline", {"per_page": 100},
                                                f"repository {self.repo}", "GET timeline", etags):
                out += [self._wrap(number, e) for e in page if e.get("event") in gq.TIMELINE_EVENTS]
            return out

        return [e for events in pool.map(one, [i["number"] for i in items]) for e in events]


__all__ = ["ExtractResult", "GitHubSettings", "GitHubSource", "connect", "is_bot", "matches"]
