"""`flowlens run --full-refresh [jira|github]`: re-extract everything of a source and replace what was loaded.

The request travels as a run tag, so the schedule and the UI can ask for it too (tag `flowlens/full_refresh`
with `jira,github`, `jira` or `github`). The extract then starts without a cursor (and reconciles every Jira
project), and the load lets each partition's new complete extract replace every row loaded for it before
(pipelines/warehouse.py `load(replace=...)`). A full refresh that fails part-way replaces nothing of the
partitions it did not finish: run it again.
"""

from __future__ import annotations

from typing import Any

TAG = "flowlens/full_refresh"
SOURCES = ("jira", "github")


def parse(value: str | None) -> tuple[str, ...]:
    """`--full-refresh` (all), `--full-refresh jira`, `jira,github`: the sources, in order; ValueError else."""
    if value is None or value.strip() in ("", "all"):
        return SOURCES
    names = tuple(dict.fromkeys(v.strip().lower() for v in value.split(",") if v.strip()))
    bad = [n for n in names if n not in SOURCES]
    if bad:
        raise ValueError(f"--full-refresh: unknown source {bad[0]!r}; say jira, github, or nothing for both")
    return names


def tags(sources: tuple[str, ...] | None) -> dict[str, str]:
    return {TAG: ",".join(sources)} if sources else {}


def sources(context: Any) -> set[str]:
    """The sources this Dagster run fully refreshes (from its tags)."""
    run = getattr(context, "run", None)
    value = (getattr(run, "tags", None) or {}).get(TAG)
    return set(parse(value)) if value is not None else set()


def cursors(context: Any, source: str, stored: dict) -> dict:
    """The stored cursors, or none for a source being fully refreshed."""
    return {} if source in sources(context) else stored
