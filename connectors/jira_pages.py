"""Jira's paged endpoints as generators of pages: search, changelogs, approvals, projects."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.http import HttpClient


def iter_search_pages(client: HttpClient, cloud: bool, jql: str, fields: list[str], page_size: int,
                      expand: str | None = None) -> Iterator[list[dict[str, Any]]]:
    """Issues matching `jql`, one list per page. Cloud: `search/jql` + nextPageToken; DC: `search` + startAt."""
    params: dict[str, Any] = {"jql": jql, "fields": ",".join(fields), "maxResults": page_size}
    if expand:
        params["expand"] = expand
    if cloud:
        token = None
        while True:
            page = client.get_json("/rest/api/3/search/jql", {**params, **({"nextPageToken": token} if token else {})},
                                   label="GET /rest/api/3/search/jql")
            issues = page.get("issues") or []
            if issues:
                yield issues
            token = page.get("nextPageToken")
            if not token or page.get("isLast") is True:
                return
    start = 0
    while True:
        page = client.get_json("/rest/api/2/search", {**params, "startAt": start}, label="GET /rest/api/2/search")
        issues = page.get("issues") or []
        if issues:
            yield issues
        # The server may cap maxResults below what we asked: step by what it actually returned.
        start = int(page.get("startAt", start)) + len(issues)
        if not issues or start >= int(page.get("total", 0)):
            return


def iter_bulk_changelog_pages(client: HttpClient, issue_ids: list[str],
                              page_size: int = 10000) -> Iterator[list[dict[str, Any]]]:
    """Cloud `POST changelog/bulkfetch` for up to 1000 issues: pages of {"issueId","changeHistories"}."""
    body: dict[str, Any] = {"issueIdsOrKeys": issue_ids, "maxResults": page_size}
    while True:
        page = client.post_json("/rest/api/3/changelog/bulkfetch", body, label="POST /rest/api/3/changelog/bulkfetch")
        logs = page.get("issueChangeLogs") or []
        if logs:
            yield logs
        token = page.get("nextPageToken")
        if not token or not logs:
            return
        body = {**body, "nextPageToken": token}


def iter_issue_changelog_pages(client: HttpClient, version: int, key: str,
                               page_size: int = 100) -> Iterator[list[dict[str, Any]]]:
    """`GET issue/{key}/changelog` (startAt/isLast): pages of histories, oldest first."""
    start = 0
    while True:
        page = client.get_json(f"/rest/api/{version}/issue/{key}/changelog", {"startAt": start, "maxResults": page_size},
                               label=f"GET /rest/api/{version}/issue/{{key}}/changelog")
        values = page.get("values") or []
        if values:
            yield values
        start = int(page.get("startAt", start)) + len(values)
        total = page.get("total")
        if not values or page.get("isLast") is True or (total is not None and start >= int(total)):
            return


def iter_approval_pages(client: HttpClient, key: str, limit: int = 50) -> Iterator[list[dict[str, Any]]]:
    """JSM `GET request/{key}/approval` (start/limit/isLastPage): pages of approvals."""
    start = 0
    while True:
        page = client.get_json(f"/rest/servicedeskapi/request/{key}/approval", {"start": start, "limit": limit},
                               label="GET /rest/servicedeskapi/request/{key}/approval")
        values = page.get("values") or []
        if values:
            yield values
        start = int(page.get("start", start)) + len(values)
        if not values or page.get("isLastPage", True):
            return


def iter_project_pages(client: HttpClient, cloud: bool, page_size: int = 50) -> Iterator[list[dict[str, Any]]]:
    """Projects the credentials can see. Cloud: `project/search` (paged); DC: `project` (one list)."""
    if not cloud:
        projects = client.get_json("/rest/api/2/project", label="GET /rest/api/2/project")
        if projects:
            yield projects
        return
    start = 0
    while True:
        page = client.get_json("/rest/api/3/project/search", {"startAt": start, "maxResults": page_size},
                               label="GET /rest/api/3/project/search")
        values = page.get("values") or []
        if values:
            yield values
        start = int(page.get("startAt", start)) + len(values)
        if not values or page.get("isLast", True):
            return
