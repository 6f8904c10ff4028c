"""Runs a machine source against its simulated device and compares seconds with the truth."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.meter import Meter
from agent.sources import SourceEvent
from simulators.devices.base import Device, now_ms


@dataclass
class Outcome:
    measured: dict[str, float]  # state -> seconds the meter accounted ("unknown" for the rest)
    truth: dict[str, float]  # state -> seconds the device really spent ("unknown": unobservable)
    events: list[SourceEvent] = field(default_factory=list)
    samples: list[Any] = field(default_factory=list)
    touches: dict[str, int] = field(default_factory=dict)

    def assert_close(self, latency_s: float) -> None:
        """Each change of the true state may be seen up to ``latency_s`` late, which moves at
        most that much time between the two states it touches."""
        for state in set(self.measured) | set(self.truth):
            budget = latency_s * max(1, self.touches.get(state, 0))
            got, want = self.measured.get(state, 0.0), self.truth.get(state, 0.0)
            assert abs(got - want) <= budget, (
                f"{state}: measured {got:.2f}s, truth {want:.2f}s (budget {budget:.2f}s); "
                f"measured={self.fmt(self.measured)} truth={self.fmt(self.truth)}"
            )

    @staticmethod
    def fmt(d: dict[str, float]) -> str:
        return "{" + ", ".join(f"{k}: {v:.2f}" for k, v in sorted(d.items())) + "}"


def integrate(
    truth: list[tuple[int, str | None]], start: int, end: int, mapping: Callable[[str], str]
) -> tuple[dict[str, float], dict[str, int]]:
    """Seconds per (mapped) state between ``start`` and ``end``, and how many changes touched
    each state ("unknown" stands for None)."""
    out: dict[str, float] = defaultdict(float)
    touches: dict[str, int] = defaultdict(int)
    current: str | None = None
    t = start
    for at, state in sorted(truth, key=lambda e: e[0]):
        if at > start:
            if at >= end:
                break
            out[current if current is not None else "unknown"] += (at - t) / 1000
            t = at
        mapped = mapping(state) if state is not None else None
        if at > start and mapped != current:
            touches[current or "unknown"] += 1
            touches[mapped or "unknown"] += 1
        current = mapped
    out[current if current is not None else "unknown"] += (end - t) / 1000
    return dict(out), dict(touches)


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
    meter = Meter(3600, start)
    player = threading.Thread(target=device.run, args=(timeline,), daemon=True)
    player.start()
    samples = []
    events: list[SourceEvent] = []
    while player.is_alive():
        samples += meter.observe(now_ms(), source.poll())
        events += source.drain_events()
        time.sleep(poll_s)
    end = now_ms()
    samples += meter.flush(end)
    events += source.drain_events()
    measured: dict[str, float] = defaultdict(float)
    for sample in samples:
        for state, seconds in sample.state_s.items():
            measured[state] += seconds
    measured["unknown"] = (end - start) / 1000 - sum(measured.values())
    truth, touches = integrate(device.truth, start, end, mapping)
    return Outcome(dict(measured), truth, events, samples, touches)
