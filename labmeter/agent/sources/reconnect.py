"""Reconnect delays for networked sources: doubling from the first, capped, with jitter."""

from __future__ import annotations

import random


class Backoff:
    """A machine that refuses or drops connections is retried ever more slowly (up to
    ``max_s``), each delay jittered by a quarter so that agents restarted together do not
    knock together; a connection that worked starts the series over."""

    def __init__(self, first_s: float, max_s: float) -> None:
        self.first_s = first_s
        self.max_s = max(max_s, first_s)
        self._next = first_s
        self.attempts = 0

    def delay(self) -> float:
        """The wait before the next attempt."""
        self.attempts += 1
        base = self._next
        self._next = min(self._next * 2, self.max_s)
        return base * random.uniform(0.75, 1.0)

    def reset(self) -> None:
        self._next = self.first_s
