"""The landing area: raw pages as fetched, one JSON-lines file per page, written atomically.

Layout: `<root>/<source>/<partition>/<extract_id>/<stream>-<seq>.jsonl`, and `_manifest.json`
written last when the extract completed. The load (the single warehouse writer) reads every page,
but advances a partition's cursor only from a complete manifest, in the same transaction.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MANIFEST = "_manifest.json"


def partition_dir(partition: str) -> str:
    """A file-system-safe folder name for a partition ("org/repo" -> "org__repo")."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", partition.replace("/", "__"))


def new_extract_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:8]


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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
        path = self.directory / f"{stream}-{self.pages[stream]:06d}.jsonl"
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
