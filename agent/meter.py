"""Turns a stream of observations into samples that account for every second honestly.

A reading holds from the moment it is observed until the next one. Time is kept in integer
milliseconds so that sums are exact; a reading whose state is ``None`` (not observable) adds
to no state, so it stays *unknown* downstream instead of being guessed as idle or in use.
Samples are cut at wall-clock interval boundaries and whenever the user or category changes,
so each sample belongs to exactly one user and category.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from labmeter.contract import Sample


@dataclass(frozen=True)
class Reading:
    """What a source sees at one instant."""

    state: str | None
    user: str | None = None
    category: str = "unknown"
    apps: frozenset[str] = frozenset()
    metrics: dict[str, float] = field(default_factory=dict)


UNKNOWN = Reading(state=None)


class Meter:
    def __init__(
        self, interval_s: int, start_ms: int, *, kind: str | None = None, seq: int = 0
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self.interval_ms = interval_s * 1000
        self.kind = kind
        self.seq = seq
        self._reading = UNKNOWN
        self._t = start_ms  # time up to which everything is accounted
        self._cut = start_ms  # start of the open sample
        self._state_ms: dict[str, int] = defaultdict(int)
        self._apps_ms: dict[str, int] = defaultdict(int)

    @property
    def reading(self) -> Reading:
        return self._reading

    @property
    def accounted_until(self) -> int:
        return self._t

    def _account(self, until: int) -> None:
        span = until - self._t
        if span <= 0:
            return
        if self._reading.state is not None:
            self._state_ms[self._reading.state] += span
        for app in self._reading.apps:
            self._apps_ms[app] += span
        self._t = until

    def _close(self, ts: int) -> Sample | None:
        if ts <= self._cut:
            return None
        reading = self._reading
        sample = Sample(
            ts=ts,
            seq=self.seq,
            interval_s=(ts - self._cut) / 1000,
            state_s={k: v / 1000 for k, v in self._state_ms.items() if v},
            category=reading.category,
            user=reading.user,
            kind=self.kind,
            state=reading.state,
            apps_s={k: v / 1000 for k, v in self._apps_ms.items() if v},
            metrics=dict(reading.metrics),
        )
        self.seq += 1
        self._cut = ts
        self._state_ms.clear()
        self._apps_ms.clear()
        return sample

    def observe(self, t_ms: int, reading: Reading) -> list[Sample]:
        """Account time up to ``t_ms`` to the previous reading, then switch to ``reading``."""
        out: list[Sample] = []
        if t_ms < self._t:
            # The wall clock went backwards: account nothing rather than count a second twice.
            self._reading = reading
            return out
        boundary = (self._cut // self.interval_ms + 1) * self.interval_ms
        while boundary <= t_ms:
            self._account(boundary)
            if (sample := self._close(boundary)) is not None:
                out.append(sample)
            boundary += self.interval_ms
        self._account(t_ms)
        previous = self._reading
        if (reading.user, reading.category) != (previous.user, previous.category) and (
            sample := self._close(t_ms)
        ) is not None:
            out.append(sample)
        self._reading = reading
        return out

    def flush(self, t_ms: int) -> list[Sample]:
        """Close everything up to ``t_ms`` (agent stopping): the last sample may be short."""
        out = self.observe(t_ms, self._reading)
        if (sample := self._close(t_ms)) is not None:
            out.append(sample)
        return out
