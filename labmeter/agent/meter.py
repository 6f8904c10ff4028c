"""Turns a stream of observations into samples that account for every second honestly.

A reading holds from the moment it is observed until the next one, unless a later reading
back-dates its state (``Reading.since_s``) within the meter's look-back window. Time is kept
in integer milliseconds so that sums are exact; a reading whose state is ``None`` (not
observable) adds to no state, so it stays *unknown* downstream, never guessed idle or in use.
Samples are cut at wall-clock interval boundaries and whenever the user or category changes,
so each sample belongs to exactly one user and category.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace

from labmeter.contract import Sample


@dataclass(frozen=True)
class Reading:
    """What a source sees at one instant.

    ``since_s``: the state is known to have held for this long before the observation (a PC
    idle for 200 s has been idle since its last input, not since idleness was noticed); the
    meter back-dates it within its look-back window.
    """

    state: str | None
    user: str | None = None
    category: str = "unknown"
    apps: frozenset[str] = frozenset()
    metrics: dict[str, float] = field(default_factory=dict)
    since_s: float | None = None
    substate: str | None = None  # the machine's own name for ``state`` (SUBSTATE_PATTERN)


UNKNOWN = Reading(state=None)


def _key(reading: Reading) -> tuple[str | None, str]:
    return reading.user, reading.category


class Meter:
    """Accounts a timeline of readings into samples.

    The timeline of the open samples is kept as segments (start, reading) so that a reading
    can still be back-dated; with ``lookback_s`` > 0 a sample is cut only once its end is
    that far in the past, which delays publishing by as much and makes the revision exact.
    """

    def __init__(
        self,
        interval_s: int,
        start_ms: int,
        *,
        kind: str | None = None,
        seq: int = 0,
        lookback_s: float = 0.0,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self.interval_ms = interval_s * 1000
        self.lookback_ms = int(lookback_s * 1000)
        self.kind = kind
        self.seq = seq
        self._t = start_ms  # time up to which the timeline is known
        self._cut = start_ms  # start of the open sample
        self._segments: list[tuple[int, Reading]] = [(start_ms, UNKNOWN)]

    @property
    def reading(self) -> Reading:
        return self._segments[-1][1]

    @property
    def accounted_until(self) -> int:
        return self._t

    def _end(self, index: int) -> int:
        return self._segments[index + 1][0] if index + 1 < len(self._segments) else self._t

    def _switch(self, t_ms: int, reading: Reading) -> None:
        last_start, last = self._segments[-1]
        if last_start == t_ms:
            self._segments[-1] = (t_ms, reading)
        elif reading != last:
            self._segments.append((t_ms, reading))

    def _backdate(self, since_ms: int, now: Reading) -> None:
        """Give ``now``'s state to the known time from ``since_ms`` on; unknown time stays
        unknown. A source that learns of several changes at once reports them one reading at a
        time, oldest first, each back-dated to when it happened."""
        since_ms = max(since_ms, self._cut)
        state = now.state
        out: list[tuple[int, Reading]] = []
        for i, (start, reading) in enumerate(self._segments):
            end = self._end(i)
            if end <= since_ms or reading.state is None or reading.state == state:
                out.append((start, reading))
                continue
            if start < since_ms:
                out.append((start, reading))
                start = since_ms
            out.append((start, replace(reading, state=state, substate=now.substate)))
        self._segments = out

    def _close(self, cut: int) -> Sample:
        """The sample from the open sample's start to ``cut``; the timeline before it is dropped."""
        state_ms: dict[str, int] = defaultdict(int)
        apps_ms: dict[str, int] = defaultdict(int)
        last = self._segments[0][1]
        for i, (start, reading) in enumerate(self._segments):
            span = min(self._end(i), cut) - max(start, self._cut)
            if span <= 0:
                continue
            last = reading
            if reading.state is not None:
                state_ms[reading.state] += span
            for app in reading.apps:
                apps_ms[app] += span
        owner = self._segments[0][1]
        sample = Sample(
            ts=cut,
            seq=self.seq,
            interval_s=(cut - self._cut) / 1000,
            state_s={k: v / 1000 for k, v in state_ms.items() if v},
            category=owner.category,
            user=owner.user,
            kind=self.kind,
            state=last.state,
            apps_s={k: v / 1000 for k, v in apps_ms.items() if v},
            metrics=dict(last.metrics),
            substate=last.substate if last.state is not None else None,
        )
        self.seq += 1
        kept = [
            (max(start, cut), reading)
            for i, (start, reading) in enumerate(self._segments)
            if self._end(i) > cut
        ]
        self._segments = kept or [(cut, self._segments[-1][1])]
        self._cut = cut
        return sample

    def _emit(self, until: int) -> list[Sample]:
        """Cut every sample that ends by ``until``: at interval boundaries and owner changes."""
        out: list[Sample] = []
        until = min(until, self._t)
        while True:
            owner = _key(self._segments[0][1])
            cut = (self._cut // self.interval_ms + 1) * self.interval_ms
            for start, reading in self._segments[1:]:
                if _key(reading) != owner:
                    cut = min(cut, start)
                    break
            if cut > until:
                return out
            out.append(self._close(cut))

    def observe(self, t_ms: int, reading: Reading) -> list[Sample]:
        """The previous reading held until ``t_ms``; ``reading`` holds from then on."""
        if t_ms < self._t:
            # The wall clock went backwards: account nothing rather than count a second twice.
            self._switch(self._t, reading)
            return []
        self._t = t_ms
        self._switch(t_ms, reading)
        if reading.since_s is not None:
            self._backdate(t_ms - int(reading.since_s * 1000), reading)
        return self._emit(t_ms - self.lookback_ms)

    def flush(self, t_ms: int) -> list[Sample]:
        """Close everything up to ``t_ms`` (agent stopping): the last sample may be short."""
        out = self.observe(t_ms, replace(self.reading, since_s=None))
        out.extend(self._emit(self._t))
        if self._t > self._cut:
            out.append(self._close(self._t))
        return out
