"""Jira's paged endpoints as generators of pages: search, changelogs, approvals, projects."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.http import HttpClient, InvalidPayloadError


def _need(page: Any, key: str, where: str, at: str) -> list:
    """The page's list under `key`; a page without it (`{}`, a proxy's JSON, a renamed field) fails in one line
    naming the request and the page, rather than ending the paging early as if nothing were left."""
    if isinstance(page, dict) and isinstance(page.get(key), list):
        return page[key]
    shown = " ".join(str(page).split())[:80]
    raise InvalidPayloadError(f"{where} ({at}): 200 without `{key}` ({shown!r}); the answer is damaged: run again, "
                              "and report it to your Jira admin if it persists")


def _at(what: str, exc: InvalidPayloadError) -> InvalidPayloadError:
    """A damaged answer's message with the page it was (JSON that did not parse, an HTML page), after the
    request: "GET /rest/api/2/search (search page 2, startAt=100): 200 with a body that is not JSON ..."."""
    where, sep, rest = str(exc).partition(": ")
    return InvalidPayloadError(f"{where} ({what}): {rest}" if sep else f"{exc} ({what})")


def iter_search_pages(client: HttpClient, cloud: bool, jql: str, fields: list[str], page_size: int,
                      expand: str | None = None) -> Iterator[list[dict[str, Any]]]:
    """Issues matching `jql`, one list per page. Cloud: `search/jql` + nextPageToken; DC: `search` + startAt."""
    params: dict[str, Any] = {"jql": jql, "fields": ",".join(fields), "maxResults": page_size}
    if expand:
        params["expand"] = expand
    if cloud:
        token, n = None, 0
        while True:
            n += 1
            at = f"search page {n}" + (" after a page token" if token else "")
            try:
                page = client.get_json("/rest/api/3/search/jql",
                                       {**params, **({"nextPageToken": token} if token else {})},
                                       label="GET /rest/api/3/search/jql")
            except InvalidPayloadError as e:
                raise _at(at, e) from None
            issues = _need(page, "issues", "GET /rest/api/3/search/jql", at)
            if issues:
                yield issues
            token = page.get("nextPageToken")
            if not token or page.get("isLast") is True:
                return
    start, n = 0, 0
    while True:
        n += 1
        at = f"search page {n}, startAt={start}"
        try:
            page = client.get_json("/rest/api/2/search", {**params, "startAt": start}, label="GET /rest/api/2/search")
        except InvalidPayloadError as e:
            raise _at(at, e) from None
        issues = _need(page, "issues", "GET /rest/api/2/search", at)
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
        at = f"changelogs of {len(issue_ids)} issues" + (" after a page token" if "nextPageToken" in body else "")
        try:
            page = client.post_json("/rest/api/3/changelog/bulkfetch", body,
                                    label="POST /rest/api/3/changelog/bulkfetch")
        except InvalidPayloadError as e:
            raise _at(at, e) from None
        logs = _need(page, "issueChangeLogs", "POST /rest/api/3/changelog/bulkfetch", at)
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
        at = f"issue {key}, startAt={start}"
        try:
            page = client.get_json(f"/rest/api/{version}/issue/{key}/changelog",
                                   {"startAt": start, "maxResults": page_size},
                                   label=f"GET /rest/api/{version}/issue/{{key}}/changelog")
        except InvalidPayloadError as e:
            raise _at(at, e) from None
        values = _need(page, "values", f"GET /rest/api/{version}/issue/{key}/changelog", at)
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
        at = f"request {key}, start={start}"
        try:
            page = client.get_json(f"/rest/servicedeskapi/request/{key}/approval", {"start": start, "limit": limit},
                                   label="GET /rest/servicedeskapi/request/{key}/approval")
        except InvalidPayloadError as e:
            raise _at(at, e) from None
        values = _need(page, "values", f"GET /rest/servicedeskapi/request/{key}/approval", at)
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
