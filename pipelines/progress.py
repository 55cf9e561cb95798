"""Progress of a running extract, for `flowlens run` (in-process): listeners get one dict per event."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Listener = Callable[[dict], None]
_listeners: list[Listener] = []
_lock = threading.Lock()


def subscribe(fn: Listener) -> Callable[[], None]:
    """Add a listener; returns the function that removes it."""
    with _lock:
        _listeners.append(fn)

    def unsubscribe() -> None:
        with _lock:
            if fn in _listeners:
                _listeners.remove(fn)
    return unsubscribe


def emit(context: Any, event: dict) -> None:
    """One progress event of the step running under `context` (a Dagster execution context)."""
    with _lock:
        listeners = list(_listeners)
    for fn in listeners:
        try:
            fn(event)
        except Exception:  # noqa: BLE001, S110 - a broken progress display never fails an extract
            pass
