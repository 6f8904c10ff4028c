"""Events stamped when a source sees them, not when the runner drains them a poll later."""

from __future__ import annotations

import threading
import time

from labmeter.agent.sources import SourceEvent


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


class JobEdges:
    """``job_start`` when a power reading begins a running spell, ``job_end`` (with the state
    it fell to) when the spell ends: for sources that see power, not jobs."""

    def __init__(self, events: EventLog) -> None:
        self.events = events
        self.in_job = False

    def update(self, state: str) -> None:
        if (state == "in_use") == self.in_job:
            return
        self.in_job = not self.in_job
        if self.in_job:
            self.events.add(stamped("job_start", {}))
        else:
            self.events.add(stamped("job_end", {"reason": state}))
