"""The landing area's format: the contract between who writes it (the connectors, and the sandbox's page
writer `sandbox/gen_pages.py`) and who reads it (the load, `pipelines/warehouse.py`).

Layout under the landing root:

    <source>/<partition folder>/<extract id>/<stream>-<seq>.jsonl   one page: one JSON object per line
    <source>/<partition folder>/<extract id>/_manifest.json         written last, once the extract completed

- `source`: `jira` or `github`. A page of stream `s` loads into the raw table `raw.<source>__<s>`.
- partition folder: `partition_dir(partition)` of a Jira project key (`PAY`), a repository (`org/repo` ->
  `org__repo`), or `_site` for a source's site-wide streams. Files beside the extract folders
  (`_runs.json`, `github/_etags/*.json`) are the writers' own state, not pages.
- extract id: `new_extract_id()`, a UTC timestamp that sorts in time order, then a random suffix.
- `seq`: the page's number within its stream in this extract, from 1, six digits (`issues-000001.jsonl`).
- Every file is written atomically (`write_atomic`: a dot-named temporary file renamed into place), so a
  reader sees whole pages or none; it ignores dot-files.
- The manifest (`MANIFEST_KEYS`, plus whatever the writer adds: `api`, `jql`, `requests`, `gaps`, ...):
  `source`, `partition`, `extract_id`, `finished_at`, `complete`, `cursor` (what the load stores for the
  next incremental extract once these pages are in), `records` and `pages` per stream. An extract folder
  without a manifest did not finish: its pages load, its cursor does not advance.

Records per stream (as the APIs answer, unless noted):

| source | stream | one record |
|---|---|---|
| jira | `issues` | an IssueBean from search, with the fields asked for, the Approvals field taken out |
| jira | `changelogs` | `changelog_record`: the issue's whole history, each history once, by (created, id) |
| jira | `approvals` | `approval_record`: one JSM approval of an issue |
| jira | `remote_links` | `remote_links_record`: all current remote links (web links) of one issue, `[]` when none |
| jira | `issue_ids` | `{"id", "key"}` of every issue a full extract saw (deletions are what is missing) |
| jira | `statuses`, `fields`, `myself`, `link_types` | the site's (partition `_site`) |
| github | `repositories` | the REST repository |
| github | `pull_requests`, `issues` | the REST pull request / issue |
| github | `teams`, `team_members` | the organisations' teams, and one record per team member with name and email, each stamped `seen_at` (the run's as_of) (partition `_site`) |
| github | `timeline_events` | `timeline_record`: one REST timeline event (the kinds in `TIMELINE_EVENTS`, and from REST-mode extracts any kind the connector does not know) |

GitHub records keep at least the fields of `COMPACT` (a REST-mode extract lands whole REST objects; a
GraphQL-mode one maps its nodes to exactly these; `compact()` cuts a REST object down to them).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MANIFEST = "_manifest.json"
MANIFEST_KEYS = ("source", "partition", "extract_id", "finished_at", "complete", "cursor", "records", "pages")
SITE = "_site"
PAGE_GLOB = "*.jsonl"
# The REST timeline event kinds the warehouse reads: what a GraphQL-mode extract lands.
TIMELINE_EVENTS = frozenset({"reviewed", "review_requested", "review_request_removed", "review_dismissed",
                             "ready_for_review", "convert_to_draft", "assigned", "unassigned", "labeled",
                             "unlabeled", "merged", "closed", "reopened"})

_USER = {"login": 1, "id": 1, "node_id": 1, "type": 1, "html_url": 1}
_TEAM = {"id": 1, "node_id": 1, "slug": 1, "name": 1, "html_url": 1}
_LABEL = {"name": 1, "color": 1}
_EVENT = {"id": 1, "node_id": 1, "event": 1, "actor": _USER, "created_at": 1}
_REQUEST = {**_EVENT, "review_requester": _USER, "requested_reviewer": _USER, "requested_team": _TEAM}
# The fields of each GitHub record that the load can rely on: 1 a value, {...} an object, [{...}] a list of them.
COMPACT: dict[str, dict] = {
    "repositories": {"id": 1, "node_id": 1, "name": 1, "full_name": 1, "private": 1, "fork": 1, "archived": 1,
                     "html_url": 1, "owner": {"login": 1, "node_id": 1, "type": 1}, "default_branch": 1,
                     "created_at": 1, "updated_at": 1, "pushed_at": 1},
    "pull_requests": {"url": 1, "id": 1, "node_id": 1, "html_url": 1, "number": 1, "state": 1, "locked": 1,
                      "title": 1, "user": _USER, "created_at": 1, "updated_at": 1, "closed_at": 1, "merged_at": 1,
                      "assignee": _USER, "assignees": [_USER], "requested_reviewers": [_USER],
                      "requested_teams": [_TEAM], "labels": [_LABEL], "draft": 1, "head": {"ref": 1}, "body": 1,
                      "base": {"ref": 1, "repo": {"full_name": 1}}, "merged": 1, "merged_by": _USER},
    "issues": {"url": 1, "id": 1, "node_id": 1, "html_url": 1, "number": 1, "title": 1, "user": _USER, "state": 1,
               "state_reason": 1, "locked": 1, "labels": [_LABEL], "assignee": _USER, "assignees": [_USER],
               "created_at": 1, "updated_at": 1, "closed_at": 1},
    # timeline events by kind
    "reviewed": {"id": 1, "node_id": 1, "event": 1, "user": _USER, "body": 1, "state": 1, "submitted_at": 1,
                 "commit_id": 1, "author_association": 1},
    "review_requested": _REQUEST, "review_request_removed": _REQUEST,
    "review_dismissed": {**_EVENT, "dismissed_review": {"state": 1, "review_id": 1, "dismissal_message": 1,
                                                        "dismissal_commit_id": 1}},
    "ready_for_review": _EVENT, "convert_to_draft": _EVENT, "reopened": _EVENT,
    "assigned": {**_EVENT, "assignee": _USER}, "unassigned": {**_EVENT, "assignee": _USER},
    "labeled": {**_EVENT, "label": _LABEL}, "unlabeled": {**_EVENT, "label": _LABEL},
    "merged": {**_EVENT, "commit_id": 1}, "closed": {**_EVENT, "state_reason": 1},
}


def compact(record: Any, shape: Any) -> Any:
    """`record` cut down to `shape` (a COMPACT entry); keys the record lacks stay absent."""
    if isinstance(shape, dict) and isinstance(record, dict):
        return {k: compact(record[k], sub) for k, sub in shape.items() if k in record}
    if isinstance(shape, list) and isinstance(record, list):
        return [compact(r, shape[0]) for r in record]
    return record


def partition_dir(partition: str) -> str:
    """A file-system-safe folder name for a partition ("org/repo" -> "org__repo")."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", partition.replace("/", "__"))


def new_extract_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:8]


def page_name(stream: str, seq: int) -> str:
    return f"{stream}-{seq:06d}.jsonl"


def stream_of(page: Path) -> str:
    """The stream a page file belongs to ("issues-000001.jsonl" -> "issues")."""
    return page.name.rsplit("-", 1)[0]


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def changelog_record(issue_id: str, key: str | None, histories: list[dict]) -> dict:
    return {"issueId": issue_id, "issueKey": key, "changeHistories": histories}


def approval_record(issue_id: str, key: str | None, approval: dict) -> dict:
    return {"issueId": issue_id, "issueKey": key, "approval": approval}


def remote_links_record(issue_id: str, key: str | None, links: list[dict]) -> dict:
    return {"issueId": issue_id, "issueKey": key, "remoteLinks": links}


def timeline_record(repository: str, number: int, event: dict) -> dict:
    return {"repository": repository, "issue_number": number, "event": event}


@dataclass
class Landing:
    """Writes one extract's pages for one source partition (a Jira project, a GitHub repository)."""

    root: Path
    source: str  # "jira" | "github"
    partition: str  # "ABC", "org/repo", or "_site" for site-wide streams
    extract_id: str = field(default_factory=new_extract_id)
    counts: Counter = field(default_factory=Counter)  # records landed per stream
    pages: Counter = field(default_factory=Counter)  # pages landed per stream

    @property
    def directory(self) -> Path:
        return Path(self.root) / self.source / partition_dir(self.partition) / self.extract_id

    def write_page(self, stream: str, records: Iterable[dict[str, Any]]) -> Path | None:
        """Land one page of records; returns the file, or None for an empty page."""
        lines = [json.dumps(r, separators=(",", ":"), ensure_ascii=False) for r in records]
        if not lines:
            return None
        self.directory.mkdir(parents=True, exist_ok=True)
        self.pages[stream] += 1
        path = self.directory / page_name(stream, self.pages[stream])
        write_atomic(path, ("\n".join(lines) + "\n").encode())
        self.counts[stream] += len(lines)
        return path

    def finish(self, cursor: dict[str, Any], **metadata: Any) -> Path:
        """Mark the extract complete; `cursor` is what the load stores once these pages are in."""
        self.directory.mkdir(parents=True, exist_ok=True)
        manifest = {
            "source": self.source,
            "partition": self.partition,
            "extract_id": self.extract_id,
            "finished_at": datetime.now(UTC).isoformat(),
            "complete": True,
            "cursor": cursor,
            "records": dict(self.counts),
            "pages": dict(self.pages),
            **metadata,
        }
        path = self.directory / MANIFEST
        write_atomic(path, json.dumps(manifest, indent=1).encode())
        return path


@dataclass
class Extract:
    """One extract folder as a reader finds it."""

    source: str
    partition: str
    extract_id: str
    directory: Path
    manifest: dict[str, Any] | None  # None: the extract did not finish
    pages: list[Path]  # in stream and page order


def extracts(root: Path) -> Iterator[Extract]:
    """Every extract folder under the landing root, by source, partition folder and extract id."""
    root = Path(root)
    if not root.exists():
        return
    for source_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for part_dir in sorted(p for p in source_dir.iterdir() if p.is_dir()):
            for ext_dir in sorted(p for p in part_dir.iterdir() if p.is_dir()):
                man_path = ext_dir / MANIFEST
                manifest = json.loads(man_path.read_text()) if man_path.exists() else None
                partition = (manifest or {}).get("partition") or part_dir.name.replace("__", "/")
                yield Extract(source_dir.name, partition, ext_dir.name, ext_dir, manifest,
                              sorted(ext_dir.glob(PAGE_GLOB)))
