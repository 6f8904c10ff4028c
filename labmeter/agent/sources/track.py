"""What a networked machine said, when, and which of its changes the meter has not heard yet.

The networked sources (opcua, mtconnect, ur, s7) talk to their machine on a thread of their
own and tell a ``Track`` each state they learn, with the moment it began when the machine
says so (an MTConnect timestamp) or the moment it arrived. ``poll()`` hands the meter one
change at a time, oldest first, each back-dated to when it happened (``Reading.since_s``), so
changes between two polls are not lost; the source's ``lookback_s`` keeps samples open long
enough for that. A machine that stops answering is unobserved from its last answer on, never
idle; one that answers again is counted from what it reports after.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from labmeter.agent.clock import Clock
from labmeter.agent.meter import Reading
from labmeter.agent.sources import SourceEvent

JOB_STATES = ("in_use", "paused")  # a job goes on through a pause


@dataclass(frozen=True)
class Seen:
    """One state of the machine: the contract's state, the machine's own name for it, and the
    program it runs (shown by ``agent check``, never published: a file name may name a
    person)."""

    state: str | None
    substate: str | None = None
    program: str | None = None


def _seen(seen: Seen | None) -> bool:
    """A state is known (not nothing yet, not unobserved, not a value nobody could map)."""
    return seen is not None and seen.state is not None


class Track:
    """Thread-safe: the source's thread writes, the runner's poll reads."""

    def __init__(self, clock: Clock, timeout_s: float) -> None:
        self.clock = clock
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._pending: deque[tuple[float, Seen]] = deque()
        self._current: Seen | None = None  # what the meter will hold once pending is heard
        self._known: Seen | None = None  # the last state reported on this connection
        self._last_answer: float | None = None
        self._last_at = float("-inf")  # changes are kept in order
        self._events: list[SourceEvent] = []
        self._in_job = False
        self.counters = {"changes": 0, "silences": 0, "disconnects": 0}

    # --- the source's thread -----------------------------------------------------------------

    def answered(self, at: float | None = None) -> None:
        """The machine answered (a heartbeat, a keep-alive, any reply): it is observed."""
        now = self.clock.monotonic() if at is None else at
        with self._lock:
            self._last_answer = now
            if (
                not _seen(self._current)
                and self._known is not None
                and self._known != self._current
            ):
                self._change(now, self._known)  # heard again after a silence: as it said

    def report(self, seen: Seen, at: float | None = None) -> None:
        """The machine's state, holding since ``at`` (``clock.monotonic()`` time; now if
        None). A report is also an answer."""
        now = self.clock.monotonic()
        with self._lock:
            self._last_answer = now
            self._known = seen
            if seen != self._current:
                self._change(now if at is None else min(at, now), seen)

    def lost(self, reason: str) -> None:
        """The connection ended: unobserved from the last answer on; nothing known after it."""
        with self._lock:
            self._known = None
            if _seen(self._current):
                self.counters["disconnects"] += 1
                self._unobserved(reason)

    # --- the runner's thread -----------------------------------------------------------------

    def reading(self, metrics: dict[str, float] | None = None) -> Reading:
        """The next change the meter has not heard (back-dated), else the state now."""
        now = self.clock.monotonic()
        metrics = {**(metrics or {}), **{f"track_{k}": float(v) for k, v in self.counters.items()}}
        with self._lock:
            last = self._last_answer
            if _seen(self._current) and (last is None or now - last > self.timeout_s):
                self.counters["silences"] += 1
                self._unobserved("silent")
            if self._pending:
                at, seen = self._pending.popleft()
                return Reading(
                    seen.state, metrics=metrics, since_s=max(0.0, now - at), substate=seen.substate
                )
            current = self._current
        if current is None:
            return Reading(None, metrics=metrics)
        return Reading(current.state, metrics=metrics, substate=current.substate)

    def drain_events(self) -> list[SourceEvent]:
        with self._lock:
            events, self._events = self._events, []
        return events

    @property
    def now(self) -> Seen | None:
        """The latest state (``agent check``), pending or not."""
        with self._lock:
            return self._current

    # --- with the lock held ------------------------------------------------------------------

    def _unobserved(self, reason: str) -> None:
        at = self._last_answer if self._last_answer is not None else self.clock.monotonic()
        self._change(at, Seen(None), reason="unobserved")
        self._events.append(self._event(at, "source_error", {"reason": reason}))

    def _change(self, at: float, seen: Seen, reason: str | None = None) -> None:
        at = max(at, self._last_at)
        self._last_at = at
        previous = self._current
        self._current = seen
        self._pending.append((at, seen))
        self.counters["changes"] += 1
        if seen.state == "alarm" and (previous is None or previous.state != "alarm"):
            self._events.append(self._event(at, "alarm", {}))
        if seen.state == "in_use" and not self._in_job:
            self._in_job = True
            self._events.append(self._event(at, "job_start", {}))
        elif seen.state not in JOB_STATES and self._in_job:
            self._in_job = False
            why = reason or seen.state or "unobserved"
            self._events.append(self._event(at, "job_end", {"reason": why}))

    def _event(
        self, at: float, type: str, data: dict[str, str | int | float | bool]
    ) -> SourceEvent:
        ago_ms = round((self.clock.monotonic() - at) * 1000)
        return SourceEvent(type, data, ts_ms=self.clock.wall_ms() - max(0, ago_ms))
