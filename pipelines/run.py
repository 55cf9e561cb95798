"""One whole run in-process (`flowlens run`, `flowlens demo`): the same assets the nightly schedule runs.

discover (`sources`) → extract per source over all its partitions → site streams, load, models (with their
checks), publish, report. Progress (per stream, per model, per layer's checks) goes to `out`; failures come
back as one line each.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

# The private instance of `flowlens run` and `flowlens demo` (which `make dev` opens): every warehouse writer in
# the `warehouse` pool, one at a time (DuckDB allows one writing process per file), as in ./dagster.yaml.
INSTANCE_YAML = ("telemetry:\n  enabled: false\nconcurrency:\n  pools:\n    granularity: op\n    default_limit: 1\n"
                 "run_monitoring:\n  enabled: true\n  free_slots_after_run_end_seconds: 300\n")
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
RESOURCES = ("jira", "github", "warehouse")


def run_config(config_path: str | os.PathLike | None, home: str | os.PathLike) -> dict[str, Any]:
    """The run config of `flowlens run`'s jobs: the configuration file and the home, explicitly, as the resources'
    config (it shows in the UI's run config); credentials stay in the environment, read when a resource is used,
    so they never reach the run config or the event log."""
    values = {"config_path": str(Path(config_path).absolute()) if config_path else None,
              "home": str(Path(home).absolute())}
    return {"resources": {name: {"config": values} for name in RESOURCES}, **QUIET}


@dataclass
class RunSummary:
    ok: bool = True
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    records: dict[str, int] = field(default_factory=dict)  # per source
    requests: dict[str, int] = field(default_factory=dict)  # per source
    partitions: dict[str, int] = field(default_factory=dict)
    checks_passed: int = 0
    checks_failed: list[str] = field(default_factory=list)
    loaded_rows: int = 0
    seconds: float = 0.0
    as_of: str = ""
    config_error: str = ""  # a broken configuration found by a step (pipelines/preflight.py): one line, exit 2


def instance_for(home: Path):
    """DAGSTER_HOME's instance when set (runs show in the UI), else a private one under FLOWLENS_HOME/dagster."""
    import dagster as dg

    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    d = home / "dagster"
    d.mkdir(parents=True, exist_ok=True)
    if not (d / "dagster.yaml").exists():
        (d / "dagster.yaml").write_text(INSTANCE_YAML)
    return dg.DagsterInstance.from_config(str(d))


class Progress:
    """One line per stream as pages land (at most every `every_s` per partition), a line per partition, then
    the warehouse steps: load, every model as it is built, checks per layer, publish, report."""

    def __init__(self, out: TextIO, every_s: float = 1.0) -> None:
        self.out, self.every_s = out, every_s
        self.last: dict[tuple[str, str], float] = {}
        self.lock = threading.Lock()
        self.records: dict[str, int] = {}
        self.requests: dict[str, int] = {}
        self.partitions: dict[str, int] = {}

    def __call__(self, e: dict) -> None:
        if "stage" in e:
            with self.lock:
                self.warehouse_step(e)
            return
        src, part = e.get("source", "?"), e.get("partition", "?")
        kind = e.get("event")
        with self.lock:
            if kind == "start":
                return
            if kind == "requests":  # sent outside any partition: connecting, discovery, the site streams
                self.requests[src] = self.requests.get(src, 0) + int(e.get("requests") or 0)
                return
            if kind == "failed":
                self.print(f"  {src} {part}: FAILED: {e.get('error')}")
                return
            if kind == "note":  # e.g. an optional endpoint the site lacks: the run goes on without it
                self.print(f"  {src}: {e.get('message')}")
                return
            if kind == "done":
                recs = e.get("records") or {}
                self.records[src] = self.records.get(src, 0) + sum(recs.values())
                self.requests[src] = self.requests.get(src, 0) + int(e.get("requests") or 0)
                self.partitions[src] = self.partitions.get(src, 0) + 1
                pages = sum((e.get("pages") or {}).values())
                streams = ", ".join(f"{s} {n}" for s, n in sorted(recs.items())) or "nothing changed"
                self.print(f"  {src} {part}: done: {streams} ({pages} pages, {e.get('requests')} requests)")
                return
            now = time.monotonic()
            if now - self.last.get((src, part), 0.0) < self.every_s:
                return
            self.last[(src, part)] = now
            stream = e.get("stream", "")
            items = (e.get("records") or {}).get(stream, 0)
            pages = (e.get("pages") or {}).get(stream, 0)
            self.print(f"  {src} {part}: {stream}: {pages} pages, {items} items, {e.get('requests', 0)} requests")

    def warehouse_step(self, e: dict) -> None:
        """Load (a line per stream, throttled, and a total), each model as it is built, checks, publish, report."""
        stage, kind, secs = e["stage"], e.get("event"), float(e.get("seconds") or 0.0)
        if stage == "load" and kind == "stream":
            now = time.monotonic()
            if now - self.last.get(("load", ""), 0.0) >= self.every_s:
                self.last[("load", "")] = now
                self.print(f"  load: {e.get('streams_done')}/{e.get('streams')} streams, {e.get('table')}: "
                           f"{e.get('rows')} new rows ({secs:.1f} s)")
        elif stage == "load" and kind == "done":
            self.print(f"  load: done: {e.get('streams')} streams, {e.get('rows')} new rows from {e.get('pages')} "
                       f"pages in {secs:.1f} s")
        elif stage == "model" and kind == "start":
            self.print(f"  {e.get('layer')}: building {e.get('models')} models")
        elif stage == "model":
            self.print(f"  {e.get('model')}: {e.get('rows')} rows in {secs:.2f} s")
        elif stage == "checks" and (e.get("passed") or e.get("failed")):
            failed = e.get("failed") or []
            self.print(f"  checks {e.get('layer')}: {e.get('passed')} passed"
                       + (f", {len(failed)} failed: {', '.join(failed)}" if failed else "") + f" ({secs:.1f} s)")
        elif stage == "teams":
            self.print(f"  {e.get('line')}")
        elif stage == "publish" and kind == "done":
            self.print(f"  published {e.get('path')} ({int(e.get('bytes') or 0) / 1e6:.1f} MB, "
                       f"{e.get('tables')} tables) in {secs:.1f} s")
        elif stage == "report":
            self.print(f"  report {e.get('path')} ({e.get('teams')} teams) in {secs:.1f} s")

    def print(self, line: str) -> None:
        print(line, file=self.out, flush=True)


def _failure_lines(result: Any) -> list[str]:
    """One line per failed step: the error's own message, no traceback."""
    lines = []
    for ev in result.all_events:
        if ev.event_type_value == "STEP_FAILURE":
            err = ev.step_failure_data.error
            while err is not None and err.cause is not None and err.cls_name in ("DagsterExecutionStepExecutionError",):
                err = err.cause
            msg = (err.message if err else "failed").strip().splitlines()
            text = next((m for m in msg if m.strip()), "failed")
            text = re.sub(r"^[A-Za-z_][\w.]*(Error|Failure|Exception): ", "", text)
            lines.append(f"{ev.step_key}: {text}")
    return lines


def _config_error(result: Any) -> str:
    """The one line of a step that failed on a broken configuration (its Failure's `config_error`), or ""."""
    for ev in result.all_events:
        data = ev.step_failure_data if ev.event_type_value == "STEP_FAILURE" else None
        md = data.user_failure_data.metadata if data and data.user_failure_data else {}
        if "config_error" in md:
            return str(md["config_error"].value)
    return ""


def source_runs(instance: Any) -> list[Any]:
    """Evaluate the `source_partitions` sensor's logic (pipelines/schedules.py) on the latest `sources`
    materialization, apply its dynamic partition requests as the sensor daemon does, and return its run requests,
    in order."""
    import dagster as dg

    from pipelines.schedules import latest_requests

    result = latest_requests(instance, None, own_run=True)
    if not isinstance(result, dg.SensorResult):
        return []
    for req in result.dynamic_partitions_requests or []:
        if isinstance(req, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
        else:
            for key in req.partition_keys:
                instance.delete_dynamic_partition(req.partitions_def_name, key)
    return list(result.run_requests or [])


def _label(run: Any, instance: Any) -> str:
    """The progress line a launched job starts with ("extracting ..." is benchmarks/bench_reliability.py's)."""
    if run.job_name == "sites":
        return "site streams: Jira statuses, fields, link types; GitHub teams"
    source = run.job_name.removeprefix("extract_")
    keys = instance.get_dynamic_partitions("jira_projects" if source == "jira" else "github_repositories")
    start, end = run.tags["dagster/asset_partition_range_start"], run.tags["dagster/asset_partition_range_end"]
    n = keys.index(end) - keys.index(start) + 1 if start in keys and end in keys else len(keys)
    return f"extracting {source} ({n} {'projects' if source == 'jira' else 'repositories'})"


class Stopped(Exception):
    """The run was stopped by a signal (SIGTERM): the step under way ended as failed (Dagster frees what it held,
    the warehouse's open transaction rolls back); the next run repairs the rest, as after a kill."""


class _Signals:
    """Until `restore()`: SIGTERM interrupts the run as Ctrl-C does, at once. Dagster, while it executes, maps
    SIGTERM to its own SIGINT handler (it ends the step under way and its run as failed, interrupted), so which
    signal came is read from the wakeup fd Python writes every caught signal's number to (`signal.set_wakeup_fd`)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._restore: Callable[[], None] = lambda: None
        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            return
        import socket

        r, w = socket.socketpair()
        r.setblocking(False)
        w.setblocking(False)
        old_fd = signal.set_wakeup_fd(w.fileno(), warn_on_full_buffer=False)
        old_term = signal.signal(signal.SIGTERM, signal.default_int_handler)
        self._r = r

        def restore() -> None:
            signal.signal(signal.SIGTERM, old_term)
            signal.set_wakeup_fd(old_fd)
            r.close()
            w.close()
        self._restore = restore

    def stopped(self) -> str | None:
        """"SIGTERM" or "SIGINT" once either has come, else None."""
        if hasattr(self, "_r"):
            try:
                while data := self._r.recv(64):
                    self.seen += [signal.Signals(b).name for b in data if b in (signal.SIGTERM, signal.SIGINT)]
            except (BlockingIOError, OSError):
                pass
        return ("SIGTERM" if "SIGTERM" in self.seen else self.seen[0]) if self.seen else None

    def restore(self) -> None:
        self._restore()


def run_all(config_path: str | None = None, home: str | os.PathLike | None = None, out: TextIO = sys.stderr,
            as_of: str | None = None, full_refresh: tuple[str, ...] = ()) -> RunSummary:
    """Run everything once; raises ConfigError for a bad flowlens.toml (before anything runs)."""
    import dagster as dg

    from pipelines import housekeeping, progress
    from pipelines import lock as home_lock
    from pipelines.full_refresh import tags as refresh_tags
    from pipelines.preflight import preflight
    from pipelines.resources import Home

    t0 = time.perf_counter()
    paths = Home.from_env(home)
    # A broken configuration stops here, in one line, before any API call (the home checked is this run's).
    cfg = preflight(config_path, {**os.environ, "FLOWLENS_HOME": str(paths.root)} if home else None)
    held = home_lock.acquire(paths.root)  # one run at a time: before any API call and Dagster's storage
    signals = _Signals()
    summary = RunSummary()
    summary.as_of = as_of or os.environ.get("FLOWLENS_AS_OF") or datetime.now(UTC).isoformat()
    from pipelines.definitions import defs

    instance = instance_for(paths.root)
    keep = cfg.housekeeping
    tidied = housekeeping.tidy(paths.root, keep.landing_days, keep.run_history_days, instance)  # under the lock
    if tidied.dead_runs:
        out.write(f"ended {len(tidied.dead_runs)} run(s) a killed process left unfinished; the warehouse is "
                  "repaired by this run\n")
    tags = {"flowlens/as_of": summary.as_of, "flowlens/trigger": "flowlens run"} | refresh_tags(full_refresh)
    show = Progress(out)
    config = run_config(cfg.path or config_path, paths.root)

    def execute(job: str, what: str, extra: dict[str, str] | None = None) -> Any:
        from dagster._core.utils import make_new_run_id

        out.write(f"{what}\n")
        out.flush()
        run_id = make_new_run_id()
        with progress.Follow(instance, run_id, show):  # the run's own event log, read as it is written
            result = defs.resolve_job_def(job).execute_in_process(
                instance=instance, tags=tags | (extra or {}), run_config=config, raise_on_error=False, run_id=run_id)
        for ev in result.get_asset_check_evaluations():
            if ev.passed:
                summary.checks_passed += 1
            else:
                name = f"{ev.asset_key.to_user_string()}:{ev.check_name}"
                summary.checks_failed.append(name + (" (warning)" if ev.severity.value == "WARN" else ""))
        if sig := signals.stopped():  # Dagster ended the interrupted step and its run as failed; no job follows
            raise Stopped(f"stopped by {sig}")
        if not result.success:
            summary.ok = False
            summary.errors += _failure_lines(result) or [f"{job} failed"]
            summary.config_error = summary.config_error or _config_error(result)
        return result

    try:
        r = execute("discover", "discovering sources")
        for mat in r.get_asset_materialization_events() if r.success else []:
            skipped = mat.materialization.metadata.get("skipped")
            if skipped is not None and skipped.value != "none":
                summary.notes.append(str(skipped.value))
                out.write(f"  {skipped.value}\n")
        if r.success:  # what the nightly's `source_partitions` sensor does after `sources`, evaluated here
            for run in source_runs(instance):
                execute(run.job_name, _label(run, instance), run.tags)
        if summary.ok:
            r = execute("refresh", "loading, building the models, checking, publishing")
            for mat in r.get_asset_materialization_events():
                if mat.asset_key == dg.AssetKey("load"):
                    md = mat.materialization.metadata
                    summary.loaded_rows = int(md["new_rows"].value) if "new_rows" in md else 0
    except KeyboardInterrupt:  # the signal came between two jobs
        raise Stopped(f"stopped by {signals.stopped() or 'SIGINT'}") from None
    finally:
        signals.restore()
        held.release()
    summary.records, summary.requests, summary.partitions = show.records, show.requests, show.partitions
    summary.seconds = time.perf_counter() - t0
    return summary


def format_summary(s: RunSummary, home: Path) -> str:
    parts = [f"{src}: {s.partitions.get(src, 0)} partitions, {s.records.get(src, 0)} records, "
             f"{s.requests.get(src, 0)} API requests" for src in sorted(s.partitions)]
    lines = [("run finished" if s.ok else "run FAILED") + f" in {s.seconds:.1f} s (as_of {s.as_of})"]
    lines += [f"  {p}" for p in parts]
    lines.append(f"  loaded {s.loaded_rows} new raw rows; checks: {s.checks_passed} passed"
                 + (f", {len(s.checks_failed)} failed: {', '.join(s.checks_failed)}" if s.checks_failed else ""))
    if s.ok:
        lines.append(f"  published {home / 'published' / 'flowlens.duckdb'}; report {home / 'report.html'}")
    lines += [f"  error: {e}" for e in s.errors]
    return "\n".join(lines)

