"""What the sandbox itself serves: requests per second per common endpoint (Jira and GitHub), one client on a
kept-alive connection to `flowlens sandbox` in its own process, each page asked for once (first) and then again
(repeat: the same pages a second client or a re-run reads), and the server's CPU milliseconds per request (which a
busy machine does not inflate as it does the rate). Client benchmarks against the sandbox measure the sandbox
when these are low."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]

MAX_REQUESTS = 300  # per endpoint and pass
MAX_SECONDS = 20.0

Walk = Callable[[requests.Session], Iterator[requests.Response]]


def _cpu_s(pid: int) -> float:
    """CPU seconds (user and system) a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rate(session: requests.Session, walk: Walk, pid: int) -> tuple[float, float]:
    """(requests per second, server CPU milliseconds per request) while walking (every answer must be 200), at
    most MAX_REQUESTS or MAX_SECONDS. The CPU figure holds on a busy machine, where the rate drops."""
    started, cpu, n = time.perf_counter(), _cpu_s(pid), 0
    for r in walk(session):
        if r.status_code != 200:
            raise RuntimeError(f"{r.request.method} {r.url}: {r.status_code} {r.text[:200]}")
        n += 1
        if n >= MAX_REQUESTS or time.perf_counter() - started > MAX_SECONDS:
            break
    return round(n / (time.perf_counter() - started), 1), round((_cpu_s(pid) - cpu) * 1000 / n, 2)


def _each(urls: list[str], **params) -> Walk:
    def walk(s: requests.Session) -> Iterator[requests.Response]:
        for url in urls:
            yield s.get(url, params=params, timeout=120)
    return walk


def _link_pages(url: str, **params) -> Walk:
    """GitHub's paged list, following Link rel=next."""
    def walk(s: requests.Session) -> Iterator[requests.Response]:
        r = s.get(url, params=params, timeout=120)
        yield r
        while "next" in r.links:
            r = s.get(r.links["next"]["url"], timeout=120)
            yield r
    return walk


def _token_pages(url: str, **params) -> Walk:
    """Jira's search/jql, following nextPageToken."""
    def walk(s: requests.Session) -> Iterator[requests.Response]:
        p = dict(params)
        while True:
            r = s.get(url, params=p, timeout=120)
            yield r
            token = r.json().get("nextPageToken")
            if not token:
                return
            p["nextPageToken"] = token
    return walk


def _graphql_pages(url: str, query: str, **variables) -> Walk:
    def walk(s: requests.Session) -> Iterator[requests.Response]:
        after = None
        while True:
            r = s.post(url, json={"query": query, "variables": {**variables, "after": after}}, timeout=120)
            yield r
            page = r.json()["data"]["repository"]["pullRequests"]
            if not page["pageInfo"]["hasNextPage"]:
                return
            after = page["pageInfo"]["endCursor"]
    return walk


def _measure(figures: dict, prefix: str, session: requests.Session, shapes: dict[str, Walk], pid: int) -> None:
    for name, walk in shapes.items():
        figures[f"{prefix}_{name}_rps"], figures[f"{prefix}_{name}_server_cpu_ms"] = _rate(session, walk, pid)
        figures[f"{prefix}_{name}_repeat_rps"], figures[f"{prefix}_{name}_repeat_server_cpu_ms"] = _rate(
            session, walk, pid)


PULLS_QUERY = """query($owner: String!, $name: String!, $after: String) { repository(owner: $owner, name: $name) {
  pullRequests(first: 50, after: $after, orderBy: {field: UPDATED_AT, direction: ASC}) {
    pageInfo { hasNextPage endCursor }
    nodes { number title state updatedAt author { login }
      timelineItems(first: 100) { totalCount nodes { __typename ... on ReviewRequestedEvent { createdAt }
        ... on PullRequestReview { state submittedAt author { login } } } } } } } }"""
FIELDS = "summary,status,assignee,reporter,issuetype,project,created,updated,resolutiondate,labels"


class _Served:
    """`flowlens sandbox` in its own process (a client in this one would share its interpreter lock)."""

    def __init__(self, scale: str, deployment: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "sandbox", "--scale", scale, "--port", "0",
                                      "--jira-deployment", deployment], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        self.env: dict[str, str] = {}
        for line in self.proc.stdout:  # the export lines, then it serves
            name, _, value = line.removeprefix("export ").strip().partition("=")
            self.env[name] = value
            if name == "GITHUB_TOKEN":  # the last line this needs
                break
        if "JIRA_URL" not in self.env:
            raise RuntimeError(f"flowlens sandbox --scale {scale} did not start")
        self.url = self.env["JIRA_URL"]

    def session(self, kind: str) -> requests.Session:
        s = requests.Session()
        s.trust_env = False  # no proxy, netrc or CA lookups per request: measure the server, not the client
        if kind == "github":
            s.headers["Authorization"] = f"token {self.env['GITHUB_TOKEN']}"
        elif "JIRA_PAT" in self.env:
            s.headers["Authorization"] = f"Bearer {self.env['JIRA_PAT']}"
        else:
            s.auth = (self.env["JIRA_EMAIL"], self.env["JIRA_API_TOKEN"])
        return s

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def run(scale: str) -> dict:
    figures: dict = {}
    sb = _Served(scale, "cloud")
    try:
        s, g = sb.session("jira"), sb.session("github")
        base = f"{sb.url}/rest/api/3"
        project = s.get(f"{base}/project").json()[0]["key"]
        jql = f"project = {project} ORDER BY key ASC"
        keys = [i["key"] for i in s.get(f"{base}/search/jql", params={"jql": jql, "fields": "key",
                                                                      "maxResults": 5000}).json()["issues"]]
        _measure(figures, "jira", s, {
            "search_jql_page": _token_pages(f"{base}/search/jql", jql=jql, fields=FIELDS, expand="changelog",
                                            maxResults=100),
            "issue_all_fields": _each([f"{base}/issue/{k}" for k in keys]),
            "changelog": _each([f"{base}/issue/{k}/changelog" for k in keys]),
            "comments": _each([f"{base}/issue/{k}/comment" for k in keys])}, sb.proc.pid)
        api = sb.env["GITHUB_API_URL"]
        org = g.get(f"{api}/user/orgs").json()[0]["login"]
        repos = [r["full_name"] for r in g.get(f"{api}/orgs/{org}/repos", params={"per_page": 100}).json()]
        repo = max(repos, key=lambda r: g.get(f"{api}/repos/{r}").json()["open_issues_count"])
        numbers = [p["number"] for p in g.get(f"{api}/repos/{repo}/pulls",
                                              params={"state": "all", "per_page": 100}).json()]
        r = f"{api}/repos/{repo}"
        owner, name = repo.split("/")
        _measure(figures, "github", g, {
            "pulls_page": _link_pages(f"{r}/pulls", state="all", per_page=100),
            "issues_page": _link_pages(f"{r}/issues", state="all", per_page=100),
            "pull": _each([f"{r}/pulls/{n}" for n in numbers]),
            "reviews": _each([f"{r}/pulls/{n}/reviews" for n in numbers], per_page=100),
            "timeline": _each([f"{r}/issues/{n}/timeline" for n in numbers], per_page=100),
            "issue_events": _each([f"{r}/issues/{n}/events" for n in numbers], per_page=100),
            "graphql_pulls_page": _graphql_pages(f"{sb.url}/api/graphql", PULLS_QUERY, owner=owner, name=name)},
                 sb.proc.pid)
        figures["jira_issues_in_project"], figures["github_pulls_walked"] = len(keys), len(numbers)
    finally:
        sb.close()
    sb = _Served(scale, "datacenter")
    try:
        s = sb.session("jira")
        pages = [f"{sb.url}/rest/api/2/search?startAt={n}" for n in range(0, len(keys), 100)]
        _measure(figures, "jira_dc", s, {"search_page": _each(pages, jql=jql, fields=FIELDS, expand="changelog",
                                                               maxResults=100)}, sb.proc.pid)
    finally:
        sb.close()
    return figures
