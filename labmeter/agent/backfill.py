"""Time an agent outage left without samples, filled afterwards from the machine's own history.

While the agent is down nothing is observed and no sample is made: that time is unknown. Some
machines keep a job history (Moonraker's ``server/history/list``). On the agent's next start
such a source is told the outage (from the end of the last sample the queue holds to the new
start) and, once it reaches the machine, hands back the spans its history vouches for.

They go out as ordinary samples, so that utilisation sums them, each carrying the metric
``filled_s``: the seconds of that sample taken from the machine's history and not observed.
A fill sample holds filled seconds only (it covers outage time, which no other sample covers),
so ``filled_s`` equals its observed seconds and an evaluator subtracts the one from the other
to get what the agent saw itself. The smallest mark that says this per second and survives the
wire, the collector and InfluxDB unchanged (the metric lands in ``device_metrics`` at the
sample's own time), rather than a new state or channel in the contract.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from labmeter.agent.meter import UNKNOWN, Meter, Reading
from labmeter.contract import Sample

FILLED_METRIC = "filled_s"


@dataclass(frozen=True)
class Filled:
    """A span of the outage whose state the machine's history tells."""

    start_ms: int
    end_ms: int
    state: str
    substate: str | None = None


@dataclass(frozen=True)
class Outage:
    """The agent's own gap: from the end of its last queued sample to its start."""

    start_ms: int
    end_ms: int


def fill_samples(
    spans: Iterable[Filled], outage: Outage, interval_s: int, kind: str | None, seq: int
) -> list[Sample]:
    """Samples for the filled spans within the outage, cut at the interval boundaries as live
    samples are, numbered from ``seq``; the rest of the outage stays unknown (no sample)."""
    meter = Meter(interval_s, outage.start_ms, kind=kind)
    out: list[Sample] = []
    t = outage.start_ms
    for span in sorted(spans, key=lambda s: s.start_ms):
        a, b = max(span.start_ms, t), min(span.end_ms, outage.end_ms)
        if b <= a:
            continue  # outside the outage, or overlapping a span already placed
        out += meter.observe(a, Reading(span.state, substate=span.substate))
        out += meter.observe(b, UNKNOWN)
        t = b
    out += meter.flush(outage.end_ms)
    kept = [s for s in out if s.observed_s > 0]
    return [
        replace(s, seq=seq + i, metrics={FILLED_METRIC: round(s.observed_s, 3)})
        for i, s in enumerate(kept)
    ]
