"""Values computed at most once per key every few seconds, however many requests ask.

Twenty clients polling the same live board or the same window would otherwise each read the
same plan, the same raw samples of the window's edges and the same last points from InfluxDB:
the first request computes, the others that arrive meanwhile wait for its answer, and later
ones within ``ttl_s`` take it as it is. A failure is not kept: the next request tries again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Recent(Generic[K, V]):
    """At most ``max_keys`` values, each for ``ttl_s`` seconds after it was asked for first."""

    def __init__(
        self, ttl_s: float, max_keys: int = 64, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.max_keys = max_keys
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[K, tuple[float, Future[V]]] = {}

    def get(self, key: K, compute: Callable[[], V]) -> V:
        now = self.clock()
        with self._lock:
            found = self._entries.get(key)
            if found is not None and found[0] > now:
                future = found[1]
                mine = False
            else:
                future = Future()
                self._entries[key] = (now + self.ttl_s, future)
                mine = True
                if len(self._entries) > self.max_keys:
                    self._evict(now)
        if not mine:
            return future.result()
        try:
            value = compute()
        except BaseException as exc:
            with self._lock:
                if self._entries.get(key, (0.0, None))[1] is future:
                    del self._entries[key]
            future.set_exception(exc)
            raise
        future.set_result(value)
        return value

    def _evict(self, now: float) -> None:
        """The expired entries, then the oldest, down to ``max_keys`` (under the lock)."""
        for key in [k for k, (expires, _f) in self._entries.items() if expires <= now]:
            del self._entries[key]
        while len(self._entries) > self.max_keys:
            del self._entries[next(iter(self._entries))]
