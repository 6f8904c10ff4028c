"""Gaps in observation: suspend (wall clock jumped past the monotonic clock) and stalls.

Linux's ``CLOCK_MONOTONIC`` (Python's ``time.monotonic``) stops while the machine sleeps and
the wall clock does not, so their difference between two polls is the time spent suspended.
Nobody was observed meanwhile: that time is *unknown*, never idle and never in use.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def mono_ms() -> int:
    return time.monotonic_ns() // 1_000_000


@dataclass(frozen=True)
class Gap:
    """Unobserved time from ``start_ms`` (wall clock) up to the poll that noticed it."""

    start_ms: int
    reason: str  # "suspend" or "stall"


class GapDetector:
    """Compares consecutive polls' wall and monotonic clocks; pure, so tests drive it."""

    def __init__(self, poll_ms: int, wall: int, mono: int, tolerance_ms: int = 2000) -> None:
        self.poll_ms = poll_ms
        self.tolerance_ms = max(tolerance_ms, poll_ms)
        self._wall = wall
        self._mono = mono

    def check(self, wall: int, mono: int) -> Gap | None:
        """Call once per poll; a gap means the time since ``Gap.start_ms`` was not observed."""
        d_wall, d_mono = wall - self._wall, mono - self._mono
        last = self._wall
        self._wall, self._mono = wall, mono
        # The last reading is trusted for one poll period (or the awake time, if shorter).
        start = last + min(self.poll_ms, max(d_mono, 0))
        if d_wall - d_mono > self.tolerance_ms:
            return Gap(start, "suspend")
        if d_wall > 3 * self.poll_ms:
            # Awake but not polled (stopped process, starved CPU, clock stepped forward).
            return Gap(last + self.poll_ms, "stall")
        return None


@dataclass(frozen=True)
class Clock:
    """Where a networked source reads the time: the real clocks, or a test's accelerated ones
    (an hour of a machine's script played in seconds, the agent seeing the script's time)."""

    wall_ms: Callable[[], int] = wall_ms
    monotonic: Callable[[], float] = time.monotonic


REAL_CLOCK = Clock()
