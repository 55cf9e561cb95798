"""What the emulators keep between requests, per store: rendered answers by request shape, and fragments
(a query's hits, a rendered history, a repository's counts). Dropped when the store changes: `advance()`
calls `invalidate`, and a changed clock or item count is noticed on the next request."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sandbox.model import Store

T = TypeVar("T")
MAX_RESPONSE_BYTES = 128 * 1024 * 1024  # rendered answers kept, least recently used dropped first


class StoreCache:
    def __init__(self, fingerprint: tuple) -> None:
        self.fingerprint = fingerprint
        self.fragments: dict[Hashable, Any] = {}
        self.responses: OrderedDict[Hashable, Any] = OrderedDict()
        self.response_bytes = 0
        self.lock = threading.Lock()

    def fragment(self, key: Hashable, build: Callable[[], T]) -> T:
        """`build()` once per key while the store stays as it is."""
        try:
            return self.fragments[key]
        except KeyError:
            value = self.fragments[key] = build()
            return value

    def response(self, key: Hashable, build: Callable[[], Any], size: Callable[[Any], int]) -> Any:
        """A rendered answer by request shape (least recently used dropped past MAX_RESPONSE_BYTES)."""
        with self.lock:
            hit = self.responses.get(key)
            if hit is not None:
                self.responses.move_to_end(key)
                return hit
        value = build()
        n = size(value)
        with self.lock:
            if key not in self.responses and n <= MAX_RESPONSE_BYTES // 4:
                self.responses[key] = value
                self.response_bytes += n
                while self.response_bytes > MAX_RESPONSE_BYTES:
                    _, old = self.responses.popitem(last=False)
                    self.response_bytes -= size(old)
        return value


_CACHES: dict[int, StoreCache] = {}
_LOCK = threading.Lock()


def _fingerprint(store: Store) -> tuple:
    return (store.now, id(store.jira_issues), len(store.jira_issues), id(store.github_pulls), len(store.github_pulls),
            len(store.github_issues), len(store.github_repos))


def of(store: Store) -> StoreCache:
    """The store's cache, new if the store changed since it was made."""
    fp = _fingerprint(store)
    cache = _CACHES.get(id(store))
    if cache is None or cache.fingerprint != fp:
        with _LOCK:
            cache = _CACHES.get(id(store))
            if cache is None or cache.fingerprint != fp:
                cache = _CACHES[id(store)] = StoreCache(fp)
                while len(_CACHES) > 4:  # a test session builds many stores; keep the last few
                    del _CACHES[next(iter(_CACHES))]
    return cache


def invalidate(store: Store) -> None:
    """Forget everything rendered from `store` (call after changing it in place)."""
    with _LOCK:
        _CACHES.pop(id(store), None)
