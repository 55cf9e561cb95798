"""Progress of a step, through Dagster's own event stream: `emit(context, event)` logs the event (a dict) as a
debug message of the step, `PREFIX` + JSON, so it lands in the run's event log like any other log line (the UI
shows it under the step). `flowlens run` follows the run's event log (`follow`) and prints them (pipelines/run.py
`Progress`); the daemon's runs keep them in their event log. No listeners, no module state but a throttle.

Routine events (a page landed, a stream loaded) are throttled per step and partition; the ones a reader counts
or must see (start, done, failed, note, requests, and every warehouse step but a loaded stream) always go through.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, Self

PREFIX = "flowlens progress "
EVERY_S = 0.5  # at most one routine event per step and partition this often
ALWAYS = {"start", "done", "failed", "note", "requests"}

_last: dict[tuple[str, str, str], float] = {}
_lock = threading.Lock()  # connectors call back from worker threads; one log call at a time per process


def _routine(event: dict) -> bool:
    if "stage" in event:
        return event.get("stage") == "load" and event.get("event") == "stream"
    return event.get("event") not in ALWAYS


def emit(context: Any, event: dict) -> None:
    """One progress event of the step running under `context` (a Dagster execution context)."""
    with _lock:
        try:
            if _routine(event):
                key = (context.run.run_id, str(event.get("stage") or event.get("source")), str(event.get("partition")))
                now = time.monotonic()
                if now - _last.get(key, float("-inf")) < EVERY_S:
                    return
                _last[key] = now
            context.log.debug(PREFIX + json.dumps(event, default=str, separators=(",", ":")))
        except Exception:  # noqa: BLE001, S110 - a broken progress display never fails a step
            pass


def parse(message: str) -> dict | None:
    """The event a log message carries, or None for any other message."""
    if not message.startswith(PREFIX):
        return None
    try:
        event = json.loads(message[len(PREFIX):])
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


class Follow:
    """Reads a run's event log from a thread (polling the instance, as the UI does) and hands each progress
    event to `fn`, in order. `stop()` reads what is left and ends the thread."""

    def __init__(self, instance: Any, run_id: str, fn: Callable[[dict], None], every_s: float = 0.2) -> None:
        self.instance, self.run_id, self.fn, self.every_s = instance, run_id, fn, every_s
        self.cursor: str | None = None
        self._stop = threading.Event()
        self._read = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name=f"progress-{run_id[:8]}", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.drain()
            except Exception:  # noqa: BLE001, S112 - storage busy: read again at the next tick
                continue

    def drain(self) -> None:
        with self._read:
            while True:
                conn = self.instance.get_records_for_run(self.run_id, cursor=self.cursor, limit=1000)
                for record in conn.records:
                    entry = record.event_log_entry
                    event = parse(entry.user_message) if entry.dagster_event is None else None
                    if event is not None:
                        try:
                            self.fn(event)
                        except Exception:  # noqa: BLE001, S110 - a broken display never stops the run
                            pass
                self.cursor = conn.cursor or self.cursor
                if not conn.has_more:
                    return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.drain()
