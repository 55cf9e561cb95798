"""Jira connector: every issue, its complete changelog, links and JSM approvals, incrementally.

Writes raw pages to the landing area (streams `issues`, `changelogs`, `approvals`, `issue_ids`; and
`statuses`, `fields`, `myself`, `link_types` under `_site`). Knows nothing of Dagster or the warehouse.
Endpoints, quirks and choices: README_jira.md beside this file.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jira

from connectors.http import (
    ApiError,
    AuthError,
    ConnectorError,
    HttpClient,
    HttpSettings,
    InvalidPayloadError,
    NotFoundError,
)
from connectors.jira_client import call, open_client
from connectors.jira_pages import (
    iter_approval_pages,
    iter_bulk_changelog_pages,
    iter_issue_changelog_pages,
    iter_project_pages,
    iter_search_pages,
)
from connectors.jira_time import normalize_created, parse_time, since_clause, user_zone
from landing_format import Landing, approval_record, changelog_record, remote_links_record

BASE_FIELDS = ["key", "summary", "project", "issuetype", "status", "assignee", "reporter", "created", "updated",
               "resolution", "resolutiondate", "priority", "labels", "issuelinks", "parent"]
CUSTOM_FIELD_NAMES = ("team", "sprint", "flagged", "epic link")
APPROVALS_TYPE = "sd-approvals"  # JSM's Approvals field: schema type, and the end of schema.custom
BULK_MAX_ISSUES = 1000
APPROVALS_PATH = "/rest/servicedeskapi/request/{key}/approval"
REMOTE_LINKS_PATH = "/rest/api/{v}/issue/{key}/remotelink"
MAX_JQL_CHARS = 6000  # one search's JQL (a GET URL): more projects than fit go in further searches


class UnknownProjectError(ApiError):
    pass


class JqlError(ApiError):
    pass


@dataclass
class JiraSettings:
    url: str
    email: str | None = None
    api_token: str | None = field(default=None, repr=False)
    pat: str | None = field(default=None, repr=False)
    # OAuth 1.0a (Data Center application link): consumer_key, key_cert (RSA private key, PEM), access_token,
    # access_token_secret. Needs `pip install flowlens[oauth]` (RSA-SHA1 signing).
    oauth: dict[str, str] | None = field(default=None, repr=False)
    kerberos: bool = False  # Data Center behind Kerberos/SPNEGO; needs `pip install flowlens[kerberos]`
    kerberos_mutual: str = "OPTIONAL"  # or DISABLED
    projects: list[str] = field(default_factory=list)
    jql: str | None = None
    overlap_minutes: int = 10
    page_size: int = 100
    remote_links: bool = True  # one GET issue/{key}/remotelink per changed issue: no bulk endpoint lists them
    http: HttpSettings = field(default_factory=HttpSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> JiraSettings:
        """Settings from JIRA_URL and JIRA_EMAIL + JIRA_API_TOKEN (Cloud), JIRA_PAT (Data Center), the
        JIRA_OAUTH_* variables (OAuth 1.0a) or JIRA_KERBEROS=1."""
        values: dict[str, Any] = {"url": environ.get("JIRA_URL", "").strip(),
                                  "email": environ.get("JIRA_EMAIL") or None,
                                  "api_token": environ.get("JIRA_API_TOKEN") or None,
                                  "pat": environ.get("JIRA_PAT") or None,
                                  "oauth": _oauth_from_env(environ),
                                  "kerberos": environ.get("JIRA_KERBEROS", "").strip().lower() in ("1", "true", "yes"),
                                  "kerberos_mutual": environ.get("JIRA_KERBEROS_MUTUAL", "OPTIONAL").strip().upper()}
        values.update({k: v for k, v in overrides.items() if v is not None})
        if not values["url"]:
            raise ConnectorError("JIRA_URL is not set: set it to your Jira site, e.g. https://your-domain.atlassian.net")
        if not (values["pat"] or (values["email"] and values["api_token"]) or values["oauth"] or values["kerberos"]):
            missing = "JIRA_API_TOKEN" if values["email"] else "JIRA_EMAIL" if values["api_token"] else None
            raise ConnectorError("No Jira credentials" + (f" ({missing} is not set)" if missing else "") +
                                 ": set JIRA_EMAIL and JIRA_API_TOKEN (Jira Cloud) or JIRA_PAT (Jira Data Center); "
                                 "JIRA_OAUTH_* or JIRA_KERBEROS=1 for sites that require those")
        return cls(**values)

    def auth(self) -> tuple[dict[str, Any], str, tuple[str, ...]]:
        """`jira.JIRA`'s auth keyword(s), the hint naming the variables to fix when refused, the secrets to
        keep out of every message."""
        if self.pat:
            return {"token_auth": self.pat}, "Check JIRA_PAT.", (self.pat,)
        if self.email and self.api_token:
            return ({"basic_auth": (self.email, self.api_token)}, "Check JIRA_EMAIL and JIRA_API_TOKEN.",
                    (self.api_token,))
        if self.oauth:
            return ({"oauth": dict(self.oauth)}, "Check the JIRA_OAUTH_* variables and the application link.",
                    (self.oauth.get("access_token_secret", ""), self.oauth.get("access_token", "")))
        if self.kerberos:
            return ({"kerberos": True, "kerberos_options": {"mutual_authentication": self.kerberos_mutual}},
                    "Check your Kerberos ticket (klist) and JIRA_URL's host name.", ())
        raise ConnectorError("No Jira credentials: set JIRA_EMAIL and JIRA_API_TOKEN or JIRA_PAT")


def _oauth_from_env(environ: Mapping[str, str]) -> dict[str, str] | None:
    """JIRA_OAUTH_CONSUMER_KEY, JIRA_OAUTH_ACCESS_TOKEN, JIRA_OAUTH_ACCESS_TOKEN_SECRET and the private key
    (JIRA_OAUTH_PRIVATE_KEY as PEM text, or JIRA_OAUTH_PRIVATE_KEY_FILE); None when none is set."""
    names = {"consumer_key": "JIRA_OAUTH_CONSUMER_KEY", "access_token": "JIRA_OAUTH_ACCESS_TOKEN",
             "access_token_secret": "JIRA_OAUTH_ACCESS_TOKEN_SECRET"}
    values = {k: environ.get(v, "").strip() for k, v in names.items()}
    key = environ.get("JIRA_OAUTH_PRIVATE_KEY", "").strip()
    key_file = environ.get("JIRA_OAUTH_PRIVATE_KEY_FILE", "").strip()
    if not any(values.values()) and not key and not key_file:
        return None
    if key_file and not key:
        try:
            key = Path(key_file).read_text()
        except OSError as e:
            raise ConnectorError(f"JIRA_OAUTH_PRIVATE_KEY_FILE: cannot read {key_file} ({e.strerror}): "
                                 "point it at the application link's RSA private key (PEM)") from None
    missing = [names[k] for k, v in values.items() if not v] + ([] if key else ["JIRA_OAUTH_PRIVATE_KEY_FILE"])
    if missing:
        raise ConnectorError(f"Jira OAuth is half configured: {', '.join(missing)} not set")
    return {**values, "key_cert": key}


@dataclass
class ExtractResult:
    extract_id: str
    records: dict[str, int]
    pages: dict[str, int]
    requests: int
    cursor: dict[str, Any]
    gaps: list[dict] = field(default_factory=list)  # optional endpoints the site lacked or refused


def connect(settings: JiraSettings) -> JiraSource:
    """Open a source through `jira.JIRA`: serverInfo decides Cloud vs Data Center, /myself gives the user's time
    zone. Every request, the package's and the bulk paths', goes through one routed `HttpClient`."""
    kwargs, hint, secrets = settings.auth()
    try:
        client, http = open_client(settings.url, kwargs, settings.http, hint, secrets)
    except ImportError as e:  # the auth method's extra is not installed
        extra = "kerberos" if settings.kerberos and not settings.oauth else "oauth"
        raise ConnectorError(f"Jira {extra} authentication needs {e.name}: pip install 'flowlens[{extra}]'") from None
    try:
        info = call(client, client.server_info)
    except NotFoundError:
        raise ConnectorError(f"{settings.url} does not look like a Jira site (GET /rest/api/2/serverInfo: 404): "
                             "check JIRA_URL") from None
    except (ApiError, InvalidPayloadError) as e:
        raise ConnectorError(f"{settings.url} did not answer like a Jira site ({e}): check JIRA_URL") from None
    if not isinstance(info, dict) or not (info.get("deploymentType") or info.get("versionNumbers")):
        raise InvalidPayloadError(f"GET /rest/api/2/serverInfo: 200 without deploymentType or versionNumbers "
                                  f"({str(info)[:80]!r}): {settings.url} does not look like Jira; check JIRA_URL")
    cloud = str(info.get("deploymentType", "")).lower() == "cloud"
    client._options["rest_api_version"] = "3" if cloud else "2"  # what the package's calls use from here
    myself = call(client, client.myself)
    if not isinstance(myself, dict):
        raise InvalidPayloadError(f"GET /rest/api/{3 if cloud else 2}/myself: 200 with {str(myself)[:80]!r}, not a "
                                  "user; check JIRA_URL")
    return JiraSource(settings, http, cloud, info, myself, jira_client=client)


class JiraSource:
    """A connected Jira site; extracts the site-wide streams and one project at a time."""

    def __init__(self, settings: JiraSettings, client: HttpClient, cloud: bool, server_info: dict,
                 myself: dict, jira_client: jira.JIRA | None = None) -> None:
        self.settings = settings
        self.client = client  # our HttpClient: the bulk paths (search, changelogs, approvals)
        self.jira = jira_client  # the package's client: catalogues (fields, projects, statuses, link types)
        self.cloud = cloud
        self.version = 3 if cloud else 2
        self.server_info = server_info
        self.myself = myself
        self.zone = user_zone(myself.get("timeZone"))
        self._fields: list[dict] | None = None
        self._fields_lock = threading.Lock()
        self._bulk_ok = cloud  # bulkfetch is Cloud-only; a 404 turns it off
        self._issue_changelog_ok = True
        self._approvals_ok = True  # JSM's servicedeskapi; a site without it, or refusing it, turns it off
        self._remote_links_ok = True  # issue/{key}/remotelink; a site without it, or refusing it, turns it off
        self.gaps: dict[str, dict] = {}  # optional endpoint -> what the site refused (see `_optional`)
        self.on_gap: Callable[[dict], None] | None = None  # told once per gap, e.g. to print one line

    @property
    def deployment(self) -> str:
        return "cloud" if self.cloud else "datacenter"

    # -- site --------------------------------------------------------------------------------------
    def fields(self) -> list[dict]:
        """The site's fields; none (and a gap) when the site refuses the listing: custom fields are then
        not asked for."""
        with self._fields_lock:  # project groups start in parallel: one request, not one per thread
            if self._fields is None:
                self._fields = self._optional(
                    "field", "fields", "custom fields (Team, Sprint, Flagged, Epic Link, Approvals) are not read: "
                    "teams, sprints, flags, epics and field approvals are missing", [],
                    lambda: self._catalogue("field", lambda j: j.fields()))
            return self._fields

    def _optional(self, path: str, name: str, what: str, default: Any, read: Callable[[], Any]) -> Any:
        """Read an optional endpoint; when the site lacks it (404) or denies it (403), go on with `default`
        and record a gap `{"endpoint", "status", "what", "error"}` (landed in the manifests, listed by
        core.source_gaps, named by the `sources_complete` check)."""
        endpoint = path if path.startswith("/") else f"/rest/api/{self.version}/{path}"
        try:
            return read()
        except (NotFoundError, ApiError) as e:
            status = 404 if isinstance(e, NotFoundError) else e.status
            if status not in (403, 404):
                raise
            self._gap(f"GET {endpoint}", status, f"{name} unavailable: {what}", str(e))
            return default

    def _gap(self, endpoint: str, status: int | None, what: str, error: str) -> None:
        if endpoint in self.gaps:
            return
        gap = {"endpoint": endpoint, "status": status, "what": what, "error": error}
        self.gaps[endpoint] = gap
        if self.on_gap:
            self.on_gap(gap)
    def _catalogue(self, path: str, read: Callable[[jira.JIRA], Any]) -> Any:
        """A site catalogue through `jira.JIRA` (tests may build a source without one: plain HTTP then)."""
        if self.jira is not None:
            return call(self.jira, lambda: read(self.jira))
        return self.client.get_json(f"/rest/api/{self.version}/{path}")

    def custom_fields(self) -> dict[str, list[str]]:
        """Custom field ids by lower-case name (Team, Sprint, Flagged, Epic Link), ids vary by site; and
        `approvals`: JSM's Approvals field, found by its schema (its name is localised)."""
        return custom_field_ids(self.fields())

    def discover_projects(self) -> list[str]:
        if self.jira is not None:
            return [p.raw["key"] for p in call(self.jira, self.jira.projects) if p.raw.get("key")]
        return [p["key"] for page in iter_project_pages(self.client, self.cloud) for p in page if p.get("key")]

    def check_scope(self, project_keys: list[str]) -> None:
        """Search one issue with the extract's own JQL over these projects (one request): an unknown project
        raises UnknownProjectError, a JQL the site refuses JqlError, before anything is extracted."""
        if project_keys:
            jql = self.projects_jql(dict.fromkeys(project_keys))
            next(self._searched(project_keys, iter_search_pages(self.client, self.cloud, jql, ["id"], 1)), None)

    def extract_site(self, landing_root: str | Path) -> ExtractResult:
        """Land statuses, fields, the user and link types under the `_site` partition."""
        before = self.client.log.total
        landing = Landing(Path(landing_root), "jira", "_site")
        landing.write_page("statuses", self._catalogue("status", lambda j: [s.raw for s in j.statuses()]))
        self._fields = None
        landing.write_page("fields", self.fields())
        landing.write_page("myself", [self.myself])
        link_types = self._optional(
            "issueLinkType", "link types", "issue linking is disabled or hidden on this site; links on issues "
            "still load, link type names come from the issues", [],
            lambda: self._catalogue("issueLinkType", lambda j: [t.raw for t in j.issue_link_types()]))
        landing.write_page("link_types", link_types.get("issueLinkTypes", []) if isinstance(link_types, dict)
                           else link_types)
        gaps = list(self.gaps.values())
        landing.finish({}, deployment=self.deployment, server_version=self.server_info.get("version"),
                       **({"gaps": gaps} if gaps else {}))
        return ExtractResult(landing.extract_id, dict(landing.counts), dict(landing.pages),
                             self.client.log.total - before, {}, gaps)

    # -- `flowlens check` ---------------------------------------------------------------------------
    def probe(self, projects: list[str] | None = None) -> list[dict]:
        """Call every endpoint a run calls, once and small; one dict per endpoint: `endpoint`, `ok`, `optional`,
        `status` and a one-line `message` (what fails, or what the run does without it)."""
        v, out = self.version, []
        out.append({"endpoint": "GET /rest/api/2/serverInfo", "ok": True, "optional": False, "status": 200,
                    "message": f"{self.deployment} {self.server_info.get('version', '')}".strip()})
        out.append({"endpoint": f"GET /rest/api/{v}/myself", "ok": True, "optional": False, "status": 200,
                    "message": f"time zone {self.zone}"})

        def one(endpoint: str, optional: bool, fn: Callable[[], Any], without: str = "") -> Any:
            try:
                value = fn()
            except ConnectorError as e:
                status = getattr(e, "status", None) or (404 if isinstance(e, NotFoundError) else
                                                        401 if isinstance(e, AuthError) else None)
                out.append({"endpoint": endpoint, "ok": False, "optional": optional, "status": status,
                            "message": str(e) + (f"; without it, {without}" if optional and without else "")})
                return None
            out.append({"endpoint": endpoint, "ok": True, "optional": optional, "status": 200, "message": ""})
            return value

        one(f"GET /rest/api/{v}/field", True, lambda: self._catalogue("field", lambda j: j.fields()),
            "custom fields (Team, Sprint, Flagged, Epic Link, Approvals) are not read")
        one(f"GET /rest/api/{v}/status", False, lambda: self._catalogue("status", lambda j: j.statuses()))
        one(f"GET /rest/api/{v}/issueLinkType", True,
            lambda: self._catalogue("issueLinkType", lambda j: j.issue_link_types()),
            "link type names come from the issues")
        keys = list(projects or [])
        if not keys:
            keys = one(f"GET /rest/api/{v}/project", False, self.discover_projects) or []
        if not keys:
            return out
        search = "GET /rest/api/3/search/jql" if self.cloud else "GET /rest/api/2/search"
        issues = one(search, False, lambda: next(self._searched(keys, iter_search_pages(
            self.client, self.cloud, self.projects_jql({k: None for k in keys}), ["key", "project"], 10)), []))
        if not issues:
            return out
        first = issues[0]
        if self.cloud:
            one("POST /rest/api/3/changelog/bulkfetch", True,
                lambda: next(iter_bulk_changelog_pages(self.client, [str(first["id"])], 1), None),
                "long changelogs are read one issue at a time")
        one(f"GET /rest/api/{v}/issue/{{key}}/changelog", True,
            lambda: next(iter_issue_changelog_pages(self.client, v, first["key"], 1), None),
            f"long changelogs are read with GET /rest/api/{v}/issue/{{key}}?expand=changelog")
        one(f"GET /rest/api/{v}/issue/{{key}}/remotelink", True,
            lambda: self.client.get_json(self.remote_links_path.replace("{key}", first["key"]),
                                         label=f"GET {self.remote_links_path}"),
            "pull requests link to issues by the keys they name only")

        def is_desk(i: dict) -> bool:
            return str(((i.get("fields") or {}).get("project") or {}).get("projectTypeKey", "")).lower() == \
                "service_desk"

        desk = next((i for i in issues if is_desk(i)), None)
        seen = {_project_of(i) for i in issues}
        for k in [k for k in keys if k not in seen][:10]:  # a service-desk project the first page missed
            if desk is not None:
                break
            page = next(iter_search_pages(self.client, self.cloud, self.project_jql(k), ["key", "project"], 1), [])
            desk = next((i for i in page if is_desk(i)), None)
        if desk is not None:
            one(f"GET {APPROVALS_PATH}", True, lambda: next(iter_approval_pages(self.client, desk["key"], 1), None),
                "approval waits of service-desk projects are missing")
        return out

    # -- one project -------------------------------------------------------------------------------
    def project_jql(self, project_key: str, cursor: dict | None = None) -> str:
        clauses = [f'project = "{project_key}"']
        if self.settings.jql:
            user = re.sub(r"(?is)\s+order\s+by\s+.*$", "", self.settings.jql.strip())
            if user:
                clauses.append(f"({user})")
        since = since_clause(cursor, self.settings.overlap_minutes, self.zone)
        if since:
            clauses.append(since)
        return " AND ".join(clauses) + " ORDER BY updated ASC"

    def projects_jql(self, cursors: Mapping[str, dict | None]) -> str:
        """One search over several projects, each since its own cursor:
        `(project = "A" AND updated >= "a") OR (project = "B") ... ORDER BY updated ASC`."""
        if len(cursors) == 1:
            return self.project_jql(*next(iter(cursors.items())))
        parts = []
        for key, cursor in cursors.items():
            since = since_clause(cursor, self.settings.overlap_minutes, self.zone)
            parts.append(f'(project = "{key}" AND {since})' if since else f'project = "{key}"')
        where = "(" + " OR ".join(parts) + ")"
        if self.settings.jql:
            user = re.sub(r"(?is)\s+order\s+by\s+.*$", "", self.settings.jql.strip())
            if user:
                where += f" AND ({user})"
        return where + " ORDER BY updated ASC"

    def iter_issue_pages(self, project_key: str, cursor: dict | None = None) -> Iterator[list[dict]]:
        """Search pages of the project's issues (changed since the cursor), changelog embedded."""
        yield from self._iter_search(self.project_jql(project_key, cursor), [project_key])

    def _iter_search(self, jql: str, keys: list[str]) -> Iterator[list[dict]]:
        custom = [i for ids in self.custom_fields().values() for i in ids]
        yield from self._searched(keys, iter_search_pages(
            self.client, self.cloud, jql, BASE_FIELDS + custom, self.settings.page_size, expand="changelog"))

    def iter_issue_id_pages(self, project_key: str) -> Iterator[list[dict]]:
        """The reconcile listing: {"id","key"} of every issue in scope, in large pages."""
        jql = self.project_jql(project_key).replace(" ORDER BY updated ASC", " ORDER BY key ASC")
        for page in self._searched([project_key], iter_search_pages(self.client, self.cloud, jql, ["id", "key"],
                                                                   5000 if self.cloud else 1000)):
            # fields=id alone gives ids only on Cloud; asking for the key too keeps the 5000-per-page limit.
            yield [{"id": str(i["id"]), "key": i.get("key") or (i.get("fields") or {}).get("key")} for i in page]

    def _searched(self, keys: list[str], pages: Iterator[list[dict]]) -> Iterator[list[dict]]:
        """Turn Jira's 400s on a search into a one-line unknown-project or JQL error."""
        try:
            yield from pages
        except ApiError as e:
            if e.status != 400:
                raise
            body = e.body if isinstance(e.body, dict) else {}
            msg = "; ".join(body.get("errorMessages") or []) or \
                "; ".join(f"{k}: {v}" for k, v in (body.get("errors") or {}).items()) or str(e)
            msg = " ".join(msg.split())
            bad = [k for k in keys if re.search(rf"(?<![A-Za-z0-9_]){re.escape(k)}(?![A-Za-z0-9_])", msg)]
            where = "GET /rest/api/3/search/jql" if self.cloud else "GET /rest/api/2/search"
            if re.search(r"project", msg, re.IGNORECASE) and bad:
                raise UnknownProjectError(f"{where}: 400: Jira does not know project {bad[0]!r} (or these "
                                          f"credentials may not browse it): {msg.rstrip('.')}. Check the project keys "
                                          "in flowlens.toml (sources.jira.projects)", 400, body) from None
            what = f"project {keys[0]}" if len(keys) == 1 else f"projects {', '.join(keys)}"
            raise JqlError(f"{where}: 400: Jira refused the JQL for {what}: {msg.rstrip('.')}. Check "
                           "sources.jira.jql in flowlens.toml", 400, body) from None

    def extract_project(self, landing_root: str | Path, project_key: str, cursor: dict | None,
                        reconcile: bool = False, progress: Callable[[dict], None] | None = None) -> ExtractResult:
        """Land the project's changed issues with complete changelogs and approvals; the new cursor in the manifest."""
        result = self.extract_projects(landing_root, {project_key: cursor}, {project_key} if reconcile else (),
                                       progress)[project_key]
        if isinstance(result, Exception):
            raise result
        return result

    def extract_projects(self, landing_root: str | Path, cursors: Mapping[str, dict | None],
                         reconcile: Iterable[str] = (), progress: Callable[[dict], None] | None = None,
                         ) -> dict[str, ExtractResult | Exception]:
        """Extract several projects with one search (each since its own cursor) and one bulkfetch, landing
        each project in its own partition with its own manifest and cursor. A project's value is its
        ExtractResult, or the exception that failed it. Requests serve them all: split evenly."""
        root, wanted = Path(landing_root), set(reconcile)
        # Incremental projects share searches; a project's first sync pages alone, in parallel with the others.
        groups = [[k] for k, c in cursors.items() if not c]
        groups += _groups([k for k, c in cursors.items() if c], lambda k: len(k) + 60, MAX_JQL_CHARS)
        out: dict[str, ExtractResult | Exception] = {}
        with ThreadPoolExecutor(max_workers=max(min(len(groups), self.settings.http.max_in_flight), 1)) as pool:
            for part in pool.map(lambda g: self._extract_isolated(root, {k: cursors[k] for k in g}, wanted,
                                                                  progress), groups):
                out.update(part)
        return out

    def _extract_isolated(self, root: Path, cursors: dict[str, dict | None], reconcile: set[str],
                          progress: Callable[[dict], None] | None) -> dict[str, ExtractResult | Exception]:
        """One search group; one bad project key must not fail the others (retried alone, before landing)."""
        try:
            return self._extract_group(root, cursors, reconcile, progress)
        except (UnknownProjectError, JqlError) as e:
            if len(cursors) == 1:
                return {k: e for k in cursors}
            out: dict[str, ExtractResult | Exception] = {}
            for k, cursor in cursors.items():
                try:
                    out.update(self._extract_group(root, {k: cursor}, reconcile, progress))
                except ConnectorError as one:
                    out[k] = one
            return out
        except ConnectorError as e:
            return {k: e for k in cursors}

    def _extract_group(self, root: Path, cursors: dict[str, dict | None], reconcile: set[str],
                       progress: Callable[[dict], None] | None) -> dict[str, ExtractResult]:
        before = self.client.log.total
        keys = list(cursors)
        jql = self.projects_jql(cursors)
        runs = {k: _ProjectRun(self, Landing(root, "jira", k), k, progress) for k in keys}
        by_upper = {k.upper(): k for k in keys}
        with ThreadPoolExecutor(max_workers=max(self.settings.http.max_in_flight, 1)) as pool:
            for run in runs.values():
                run.pool = pool
            for page in self._iter_search(jql, keys):
                split: dict[str, list[dict]] = {}
                for issue in page:
                    split.setdefault(by_upper.get(_project_of(issue).upper(), keys[0]), []).append(issue)
                for k, issues in split.items():
                    runs[k].take_page(issues)
            pending = [p for run in runs.values() for p in run.pending]
            fetched = self.fetch_changelogs(pending) if pending and self._bulk_ok else {}
            for run in runs.values():
                run.finish_changelogs(fetched)
            for run in runs.values():
                run.drain(wait=True)
        for k in keys:
            if k in reconcile:
                for page in self.iter_issue_id_pages(k):
                    runs[k].landing.write_page("issue_ids", page)
                    runs[k].report("issue_ids")
        total = self.client.log.total - before
        out = {}
        for i, k in enumerate(keys):
            run, cursor = runs[k], cursors[k]
            new_cursor = dict(cursor or {})
            if run.max_updated and (parse_time(new_cursor.get("updated")) or run.max_updated) <= run.max_updated:
                new_cursor["updated"] = run.max_updated.astimezone(UTC).isoformat()
            requests = total // len(keys) + (1 if i < total % len(keys) else 0)
            meta: dict[str, Any] = {"grouped_with": [o for o in keys if o != k]} if len(keys) > 1 else {}
            gaps = [g for e, g in self.gaps.items() if e in (f"GET /rest/api/{self.version}/field",
                                                              f"GET {self.remote_links_path}")
                    or (e == f"GET {APPROVALS_PATH}" and run.asked_approvals)]
            if gaps:
                meta["gaps"] = gaps
            run.landing.finish(new_cursor, deployment=self.deployment, jql=self.project_jql(k, cursor),
                               requests=requests, **meta)
            out[k] = ExtractResult(run.landing.extract_id, dict(run.landing.counts), dict(run.landing.pages),
                                   requests, new_cursor, gaps)
        return out

    # -- changelogs and approvals (run in the pool) -----------------------------------------------
    def fetch_changelogs(self, issues: list[tuple[str, str, int]]) -> dict[str, list[dict]]:
        """Complete histories for (id, key, expected total) triples, by issue id; never drops an item."""
        out: dict[str, list[dict]] = {i: [] for i, _, _ in issues}
        if self._bulk_ok:
            try:
                for start in range(0, len(issues), BULK_MAX_ISSUES):
                    batch = [i for i, _, _ in issues[start:start + BULK_MAX_ISSUES]]
                    for page in iter_bulk_changelog_pages(self.client, batch):
                        for log in page:
                            out.setdefault(str(log.get("issueId")), []).extend(log.get("changeHistories") or [])
            except NotFoundError:
                self._bulk_ok = False
                out = {i: [] for i, _, _ in issues}
        return out

    def fetch_issue_changelog(self, issue_id: str, key: str) -> list[dict]:
        """One issue's complete changelog: `issue/{key}/changelog`, else `issue/{key}?expand=changelog`."""
        if self._issue_changelog_ok:
            try:
                return [h for page in iter_issue_changelog_pages(self.client, self.version, key) for h in page]
            except NotFoundError:
                # Older Data Center has no changelog resource; tell that from a deleted issue below.
                self._issue_changelog_ok = False
        try:
            issue = self.client.get_json(f"/rest/api/{self.version}/issue/{key}",
                                         {"fields": "updated", "expand": "changelog"},
                                         label=f"GET /rest/api/{self.version}/issue/{{key}}")
        except NotFoundError:
            return []  # deleted or moved since the search: the reconcile listing will tell
        return (issue.get("changelog") or {}).get("histories") or []

    def fetch_approvals(self, issue_id: str, key: str) -> list[dict]:
        """An issue's JSM approvals; [] when it is no customer request. A site without Service Management
        (404 from Jersey, not JSM's own not-found) or refusing it (403) records a gap and is not asked again."""
        if not self._approvals_ok:
            return []
        try:
            return [approval_record(issue_id, key, a) for page in iter_approval_pages(self.client, key) for a in page]
        except (NotFoundError, ApiError) as e:
            status = _optional_endpoint_refused(e)
            if status is None:
                return []  # JSM's own answer: not a customer request, or deleted since the search
            self._approvals_ok = False
            self._gap(f"GET {APPROVALS_PATH}", status, "Service Management approvals unavailable: JSM "
                      f"{'refuses these credentials' if status == 403 else 'is not on this site'}; approval "
                      "waits of service-desk projects are missing", str(e))
            return []


    @property
    def remote_links_path(self) -> str:
        return REMOTE_LINKS_PATH.replace("{v}", str(self.version))

    def fetch_remote_links(self, issue_id: str, key: str) -> dict | None:
        """An issue's remote links (web links: a pull request's URL links the issue to it), all of them as one
        record. None when the site lacks the resource (404 from the server, not Jira's "issue does not exist")
        or refuses it (403): a gap is recorded once and the site is not asked again."""
        if not self._remote_links_ok:
            return None
        path = self.remote_links_path
        try:
            links = self.client.get_json(path.replace("{key}", key), label=f"GET {path}")
        except (NotFoundError, ApiError) as e:
            status = _optional_endpoint_refused(e)
            if status is None:
                return remote_links_record(issue_id, key, [])  # deleted since the search
            self._remote_links_ok = False
            self._gap(f"GET {path}", status, "remote links unavailable: the site "
                      f"{'refuses them to these credentials' if status == 403 else 'does not offer them'}; pull "
                      "requests link to issues by the keys they name only", str(e))
            return None
        if not isinstance(links, list):
            raise InvalidPayloadError(f"GET {path} of issue {key}: 200 with {str(links)[:80]!r}, not a list of remote "
                                      "links; report it to your Jira admin with the issue key")
        return remote_links_record(issue_id, key, [x for x in links if isinstance(x, dict)])


def _optional_endpoint_refused(e: NotFoundError | ApiError) -> int | None:
    """An optional per-issue endpoint's failure: its status when the site lacks the resource (a 404 from the server
    itself, "null for uri") or refuses it (403); None for Jira's own 404 (the issue or request is not there);
    anything else is raised again."""
    status = 404 if isinstance(e, NotFoundError) else e.status
    if status == 404 and "null for uri" not in str(e):
        return None
    if status not in (403, 404):
        raise e
    return status


class _ProjectRun:
    """One project extract: lands search pages, queues changelog and approval fetches, tracks the cursor."""

    def __init__(self, source: JiraSource, landing: Landing, project_key: str,
                 progress: Callable[[dict], None] | None) -> None:
        self.source = source
        self.landing = landing
        self.project_key = project_key
        self.progress = progress
        self.pool: ThreadPoolExecutor | None = None
        self.max_updated: datetime | None = None
        self.pending: list[tuple[str, str, int]] = []  # (id, key, total) whose embedded changelog is short
        self.partial: dict[str, list[dict]] = {}  # embedded histories of those, in case a fetch comes back short
        self.futures: list[Future] = []
        approvals = source.custom_fields().get("approvals", [])
        self.approval_fields = approvals
        self.asked_approvals = False  # some issue's approvals had to come from servicedeskapi

    def report(self, stream: str) -> None:
        if self.progress:
            self.progress({"project": self.project_key, "stream": stream, "records": dict(self.landing.counts),
                           "pages": dict(self.landing.pages), "requests": self.source.client.log.total})

    def take_page(self, issues: list[dict]) -> None:
        complete, approvals = [], []
        for issue in issues:
            issue_id, key = str(issue["id"]), issue.get("key")
            changelog = issue.pop("changelog", None) or {}
            histories = changelog.get("histories") or []
            total = int(changelog.get("total", len(histories)) or 0)
            if total > len(histories):
                self.pending.append((issue_id, key, total))
                self.partial[issue_id] = histories
            else:
                complete.append(_changelog_record(issue_id, key, histories))
            fields = issue.get("fields") or {}
            updated = _issue_time(self.source, key or issue_id, fields)
            if updated and (self.max_updated is None or updated > self.max_updated):
                self.max_updated = updated
            if key and self.source.settings.remote_links:
                self.futures.append(self.pool.submit(self.source.fetch_remote_links, issue_id, key))
            found = self._field_approvals(issue_id, key, fields)
            if found is None:
                self.asked_approvals = True
                self.futures.append(self.pool.submit(self.source.fetch_approvals, issue_id, key))
            else:
                approvals.extend(found)
        self.landing.write_page("issues", issues)
        self.landing.write_page("changelogs", complete)
        for start in range(0, len(approvals), 500):
            self.landing.write_page("approvals", approvals[start:start + 500])
        self.report("issues")
        self.drain(wait=False)

    def _field_approvals(self, issue_id: str, key: str, fields: dict) -> list[dict] | None:
        """The issue's approval records from its Approvals field (taken out of `fields`, so it lands once);
        None when they must be fetched: a service-desk issue whose search result has no usable value."""
        values = [fields.pop(f) for f in self.approval_fields if f in fields]
        if str((fields.get("project") or {}).get("projectTypeKey", "")).lower() != "service_desk":
            return []
        if not values:
            return None  # the site has no such field, or did not return it
        items = next((v for v in values if v), None) or []
        if not isinstance(items, list) or not all(isinstance(a, dict) and a.get("id") is not None for a in items):
            return None  # a shape we do not know: ask servicedeskapi rather than guess
        return [approval_record(issue_id, key, a) for a in items]

    def finish_changelogs(self, fetched: dict[str, list[dict]]) -> None:
        """Land complete changelogs of the issues whose embedded one was short (`fetched` by bulkfetch for
        every project of the search); fetch one by one those still short."""
        if not self.pending:
            return
        short = [(i, k, t) for i, k, t in self.pending if len(_dedupe(fetched.get(i, []))) < t]
        records = [_changelog_record(i, k, fetched[i]) for i, k, t in self.pending if (i, k, t) not in short]
        for start in range(0, len(records), 100):
            self.landing.write_page("changelogs", records[start:start + 100])
        for i, k, t in short:
            self.futures.append(self.pool.submit(self._one_changelog, i, k, fetched.get(i, [])))
        self.report("changelogs")

    def _one_changelog(self, issue_id: str, key: str, already: list[dict]) -> dict:
        histories = self.source.fetch_issue_changelog(issue_id, key)
        return _changelog_record(issue_id, key, histories + already + self.partial.get(issue_id, []))

    def drain(self, wait: bool) -> None:
        """Land what the pool has finished (all of it when `wait`), from this thread only."""
        done, left = [], []
        for f in self.futures:
            (done if wait or f.done() else left).append(f)
        self.futures = left
        approvals, changelogs, remote = [], [], []
        for f in done:
            result = f.result()  # re-raises a worker's ConnectorError here
            if isinstance(result, dict) and "remoteLinks" in result:
                remote.append(result)
            elif isinstance(result, dict):
                changelogs.append(result)
            elif result is not None:
                approvals.extend(result)
        for start in range(0, len(approvals), 500):
            self.landing.write_page("approvals", approvals[start:start + 500])
        for start in range(0, len(remote), 500):
            self.landing.write_page("remote_links", remote[start:start + 500])
        for start in range(0, len(changelogs), 100):
            self.landing.write_page("changelogs", changelogs[start:start + 100])
        if done:
            self.report("approvals")


def _issue_time(source: JiraSource, key: str, fields: dict) -> datetime:
    """The issue's `updated`; an issue without it or its status, or with a time in a format Jira does not write,
    fails the search in one line naming the issue (never a bare ValueError, never a cursor moved on a guess)."""
    where = "GET /rest/api/3/search/jql" if source.cloud else "GET /rest/api/2/search"
    for name in ("status", "updated"):
        if not fields.get(name):
            raise InvalidPayloadError(f"{where}: issue {key} came without fields.{name}, which every issue has: the "
                                      "answer is damaged (or a plugin hides the field); run again, and report it "
                                      "to your Jira admin with the issue key if it persists")
    value = fields["updated"]
    try:
        return parse_time(value)
    except (TypeError, ValueError):
        raise InvalidPayloadError(f"{where}: issue {key}: fields.updated {str(value)[:40]!r} is not a time as Jira's "
                                  "REST API writes it (ISO 8601 with an offset, e.g. 2024-01-15T10:30:00.000+0530, or "
                                  "epoch milliseconds); a proxy or plugin may rewrite answers: report it with the "
                                  "issue key") from None


def _project_of(issue: dict) -> str:
    """The issue's project key: `fields.project.key`, else the key's prefix."""
    key = ((issue.get("fields") or {}).get("project") or {}).get("key")
    return str(key or str(issue.get("key", "")).rsplit("-", 1)[0])


def custom_field_ids(fields: Iterable[dict]) -> dict[str, list[str]]:
    """From a `/field` listing: custom field ids by lower-case name, and JSM's Approvals under `approvals`."""
    found: dict[str, list[str]] = {}
    for f in fields:
        fid = str(f.get("id", ""))
        if not fid.startswith("customfield_"):
            continue
        name = str(f.get("name", "")).strip().lower()
        if _is_approvals_field(f):
            found.setdefault("approvals", []).append(fid)
        elif name in CUSTOM_FIELD_NAMES:
            found.setdefault(name, []).append(fid)
    return found


def _groups(keys: list[str], size: Callable[[str], int], limit: int) -> Iterator[list[str]]:
    """Consecutive groups of keys whose summed size stays within `limit` (each group at least one key)."""
    group: list[str] = []
    used = 0
    for k in keys:
        if group and used + size(k) > limit:
            yield group
            group, used = [], 0
        group.append(k)
        used += size(k)
    if group:
        yield group


def _is_approvals_field(f: dict) -> bool:
    """JSM's Approvals field by schema (`...:sd-approvals`); by its English name only when it has no schema."""
    schema = f.get("schema")
    if not isinstance(schema, dict):
        return str(f.get("name", "")).strip().lower() == "approvals"
    return schema.get("type") == APPROVALS_TYPE or str(schema.get("custom", "")).endswith(":" + APPROVALS_TYPE)


def _dedupe(histories: list[dict]) -> list[dict]:
    """Histories by id, each once, ordered by (created, id); `created` epoch millis become ISO."""
    seen: dict[str, dict] = {}
    for h in histories:
        hid = str(h.get("id"))
        if hid not in seen:
            seen[hid] = {**h, "created": normalize_created(h.get("created"))}

    def order(h: dict) -> tuple:
        created = parse_time(h.get("created"))
        hid = str(h.get("id"))
        return (created or datetime.min.replace(tzinfo=UTC), int(hid) if hid.isdigit() else 0, hid)

    return sorted(seen.values(), key=order)


def _changelog_record(issue_id: str, key: str | None, histories: list[dict]) -> dict:
    try:
        return changelog_record(issue_id, key, _dedupe(histories))
    except (TypeError, ValueError):
        bad = next((h for h in histories if not _time_ok(h.get("created"))), {})
        raise InvalidPayloadError(f"changelog of issue {key or issue_id}: history {bad.get('id')} has created "
                                  f"{str(bad.get('created'))[:40]!r}, not a time as Jira's REST API writes it (ISO 8601 "
                                  "with an offset, or epoch milliseconds); report it with the issue key") from None


def _time_ok(value: Any) -> bool:
    try:
        parse_time(value)
    except (TypeError, ValueError):
        return False
    return True


__all__ = ["ExtractResult", "JiraSettings", "JiraSource", "JqlError", "UnknownProjectError", "connect"]
