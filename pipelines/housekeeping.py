"""Housekeeping at the start of each run, under the run lock (pipelines/lock.py), so nothing else is writing:

- temporary files a killed run left behind: `published/.flowlens.duckdb.*.tmp` (and its `.wal`), a landing
  page's `.NAME.*.tmp`, DuckDB's spill folder `warehouse.duckdb.tmp/`;
- landing extracts older than `housekeeping.landing_days` whose every page is loaded (the warehouse keeps
  their rows; `flowlens run --full-refresh` fetches anew rather than reading old pages);
- Dagster run history (runs and their event logs) older than `housekeeping.run_history_days`;
- runs of `flowlens run` that a killed process left "started": marked failed, and the `warehouse` pool slot they
  claimed freed (nothing else frees it without a daemon; the next run would wait for it forever).
A retention of 0 keeps everything.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from landing_format import extracts


@dataclass
class Tidied:
    temp_files: list[str] = field(default_factory=list)  # relative to the home
    extracts: int = 0
    runs: int = 0
    dead_runs: list[str] = field(default_factory=list)  # run ids


def temp_files(home: Path) -> list[Path]:
    """What a run that died mid-write leaves: never part of a finished file."""
    found = [*(home / "published").glob(".*.tmp"), *(home / "published").glob(".*.tmp.wal")]
    landing = home / "landing"
    if landing.exists():
        found += landing.rglob(".*.tmp")
    spill = home / "warehouse.duckdb.tmp"
    if spill.is_dir():
        found.append(spill)
    return sorted(found)


def _extract_time(extract_id: str) -> datetime | None:
    try:
        return datetime.strptime(extract_id.split("-", 1)[0], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _loaded_pages(warehouse: Path) -> set[str] | None:
    if not warehouse.exists():
        return None
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        if not con.execute("select count(*) from duckdb_tables() where schema_name = 'raw' "
                           "and table_name = 'loaded_files'").fetchone()[0]:
            return None
        return {r[0] for r in con.execute("select path from raw.loaded_files").fetchall()}
    finally:
        con.close()


def prune_landing(home: Path, days: int, now: datetime | None = None) -> int:
    """Remove extract folders older than `days` whose pages are all loaded; returns how many."""
    if days <= 0:
        return 0
    root = home / "landing"
    loaded = _loaded_pages(home / "warehouse.duckdb")
    if loaded is None or not root.exists():
        return 0
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    gone = 0
    for ext in list(extracts(root)):
        at = _extract_time(ext.extract_id)
        if at is None or at >= cutoff or not all(str(p.relative_to(root)) in loaded for p in ext.pages):
            continue
        shutil.rmtree(ext.directory, ignore_errors=True)
        gone += 1
    return gone


def prune_runs(instance: Any, days: int, now: datetime | None = None) -> int:
    """Delete finished Dagster runs (and their event logs) created more than `days` ago; returns how many."""
    if days <= 0:
        return 0
    import dagster as dg

    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    finished = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
    records = instance.get_run_records(filters=dg.RunsFilter(created_before=cutoff, statuses=finished))
    for r in records:
        instance.delete_run(r.dagster_run.run_id)
    return len(records)


TRIGGER = ("flowlens/trigger", "flowlens run")


def end_dead_runs(instance: Any) -> list[str]:
    """Runs of `flowlens run` still "started" while we hold the run lock: their process died. Mark them failed and
    free every concurrency slot they claimed; returns their run ids."""
    import dagster as dg

    alive = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
             dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.CANCELING]
    records = instance.get_run_records(filters=dg.RunsFilter(statuses=alive, tags=dict([TRIGGER])))
    for r in records:
        run = r.dagster_run
        instance.report_run_failed(run, "the process running it died (killed or crashed): the next "
                                        "`flowlens run` found it unfinished under the run lock")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    return [r.dagster_run.run_id for r in records]


def tidy(home: Path, landing_days: int, run_history_days: int, instance: Any = None,
         now: datetime | None = None) -> Tidied:
    out = Tidied()
    for p in temp_files(home):
        (shutil.rmtree if p.is_dir() else Path.unlink)(p)
        out.temp_files.append(str(p.relative_to(home)))
    out.extracts = prune_landing(home, landing_days, now)
    if instance is not None:
        out.dead_runs = end_dead_runs(instance)
        out.runs = prune_runs(instance, run_history_days, now)
    return out
