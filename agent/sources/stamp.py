"""Events stamped when a source sees them, not when the runner drains them a poll later."""

from __future__ import annotations

import threading
import time

from agent.sources import SourceEvent


def stamped(
    type: str,
    data: dict[str, str | int | float | bool] | None = None,
    user: str | None = None,
    category: str = "unknown",
) -> SourceEvent:
    return SourceEvent(type, data or {}, user, category, ts_ms=time.time_ns() // 1_000_000)


class EventLog:
    """Events a source's reader thread records until the runner drains them; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[SourceEvent] = []

    def add(self, event: SourceEvent) -> None:
        with self._lock:
            self._events.append(event)

    def drain(self) -> list[SourceEvent]:
        with self._lock:
            events, self._events = self._events, []
        return events
