"""Runs a machine source against its simulated device and compares its seconds with the truth.

Two checks: the seconds the real Meter accounts per state equal, to the millisecond, those of
the readings the source gave; and those readings track the device's own timeline, that is,
wherever they disagree with the truth, the truth changed at most one detection latency
before. The second is local, so a state misread for longer than the latency anywhere fails,
however the totals happen to balance.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from labmeter.agent.meter import Meter
from labmeter.agent.sources import SourceEvent
from labmeter.simulators.devices.base import Device, now_ms
from tests.helpers import utc_ms

# Added to every detection latency: thread scheduling on a busy 2-core machine.
SLACK_S = 0.2
# The Meter's clock: the run replayed from one minute into an hour, so that its hourly cut
# never falls inside a few seconds of test, whatever the wall clock says (a run across a
# real hour boundary would cut a user's sample in two).
METER_EPOCH_MS = utc_ms("2025-11-25T09:01+00:00")

Timeline = list[tuple[int, str | None]]  # (epoch ms, state or None = unknown)


def at(timeline: Timeline, t: int) -> str | None:
    """The state holding at ``t`` (None before the first entry)."""
    i = bisect.bisect_right([e[0] for e in timeline], t)
    return timeline[i - 1][1] if i else None


def seconds(timeline: Timeline, start: int, end: int) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    points = [(start, at(timeline, start))] + [e for e in timeline if start < e[0] < end]
    for (t, state), (t_next, _) in zip(points, [*points[1:], (end, None)], strict=True):
        out[state or "unknown"] += (t_next - t) / 1000
    return dict(out)


@dataclass
class Outcome:
    start: int
    end: int
    truth: Timeline  # mapped to labmeter states
    seen: Timeline  # the states of the source's readings, as polled
    measured: dict[str, float]  # per state, from the Meter's samples ("unknown": the rest)
    events: list[SourceEvent] = field(default_factory=list)
    samples: list[Any] = field(default_factory=list)

    @property
    def truth_s(self) -> dict[str, float]:
        return seconds(self.truth, self.start, self.end)

    def assert_tracks(
        self, latency_s: float, lost_s: float | None = None, step_ms: int = 5
    ) -> None:
        """Every disagreement lies within ``latency_s`` after a change of the true state, or
        within ``lost_s`` after the device fell silent (a silence is only noticed by timeout)."""
        lost_s = latency_s if lost_s is None else lost_s
        changes = [
            (t, s) for (t, s), (_, p) in zip(self.truth[1:], self.truth, strict=False) if s != p
        ]
        times = [t for t, _ in changes]
        bad: list[tuple[int, str | None, str | None]] = []
        for t in range(self.start, self.end, step_ms):
            truth, seen = at(self.truth, t), at(self.seen, t)
            if truth == seen:
                continue
            i = bisect.bisect_right(times, t)
            allowed = (lost_s if changes[i - 1][1] is None else latency_s) if i else 0.0
            if not i or t - times[i - 1] > allowed * 1000:
                bad.append((t - self.start, truth, seen))
        assert not bad, (
            f"{len(bad) * step_ms} ms misread beyond the latency, first at +{bad[0][0]} ms: "
            f"truth {bad[0][1]}, seen {bad[0][2]}; truth {self.fmt(self.truth_s)}, "
            f"measured {self.fmt(self.measured)}"
        )

    def assert_meter_matches_readings(self) -> None:
        seen = seconds(self.seen, self.start, self.end)
        for state in set(seen) | set(self.measured):
            assert abs(seen.get(state, 0.0) - self.measured.get(state, 0.0)) < 0.01, state

    @staticmethod
    def fmt(d: dict[str, float]) -> str:
        return "{" + ", ".join(f"{k}: {v:.2f}" for k, v in sorted(d.items())) + "}"


def run_against(
    source: Any,
    device: Device,
    timeline: list[tuple[float, Callable[[], None]]],
    *,
    poll_s: float,
    mapping: Callable[[str], str] = lambda s: s,
    settle_s: float = 0.0,
) -> Outcome:
    """Poll ``source`` every ``poll_s`` into a real Meter while ``device`` plays ``timeline``."""
    time.sleep(settle_s)  # let the source connect and see a first report
    start = now_ms()
    meter = Meter(3600, METER_EPOCH_MS)

    def meter_ms(t: int) -> int:
        return METER_EPOCH_MS + t - start

    player = threading.Thread(target=device.run, args=(timeline,), daemon=True)
    player.start()
    samples = []
    events: list[SourceEvent] = []
    seen: Timeline = []
    t = start
    while player.is_alive():
        reading = source.poll()
        seen.append((t, reading.state))
        samples += meter.observe(meter_ms(t), reading)
        events += source.drain_events()
        time.sleep(poll_s)
        t = now_ms()
    end = t
    samples += meter.flush(meter_ms(end))
    events += source.drain_events()
    measured: dict[str, float] = defaultdict(float)
    for sample in samples:
        for state, secs in sample.state_s.items():
            measured[state] += secs
    measured["unknown"] = (end - start) / 1000 - sum(measured.values())
    truth = [(t, mapping(s) if s is not None else None) for t, s in device.truth]
    return Outcome(start, end, truth, seen, dict(measured), events, samples)
