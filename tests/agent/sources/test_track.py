"""Changes a networked source learns between two polls reach the meter in order, back-dated."""

from __future__ import annotations

from labmeter.agent.clock import Clock
from labmeter.agent.meter import Meter
from labmeter.agent.sources.track import Seen, Track


class FakeTime:
    """A hand-driven clock: the Track's time is an input here."""

    def __init__(self) -> None:
        self.t = 0.0

    def clock(self) -> Clock:
        return Clock(wall_ms=lambda: 1_000_000 + int(self.t * 1000), monotonic=lambda: self.t)


def seconds(samples: list) -> dict[str, float]:
    out: dict[str, float] = {}
    for sample in samples:
        for state, secs in sample.state_s.items():
            out[state] = out.get(state, 0.0) + secs
    return out


def test_three_changes_between_two_polls_are_each_counted_from_when_they_happened() -> None:
    now = FakeTime()
    track = Track(now.clock(), timeout_s=30)
    meter = Meter(60, 1_000_000, lookback_s=40)
    samples = []
    track.report(Seen("idle", "READY"))
    samples += meter.observe(1_000_000, track.reading())
    # Between two polls 10 s apart: setup at 2 s, in use at 5 s, paused at 7 s, learnt at 9 s
    # (an MTConnect poll: each observation with its timestamp).
    now.t = 9.0
    track.report(Seen("setup"), at=2.0)
    track.report(Seen("in_use"), at=5.0)
    track.report(Seen("paused", "FEED_HOLD"), at=7.0)
    for t in (10.0, 11.0, 12.0, 13.0):  # one change a poll, oldest first
        now.t = t
        track.answered()
        samples += meter.observe(1_000_000 + int(t * 1000), track.reading())
    samples += meter.flush(1_020_000)
    assert seconds(samples) == {"idle": 2.0, "setup": 3.0, "in_use": 2.0, "paused": 13.0}
    assert samples[-1].substate == "FEED_HOLD"


def test_silence_is_unobserved_from_the_last_answer_and_the_state_returns_with_answers() -> None:
    now = FakeTime()
    track = Track(now.clock(), timeout_s=5)
    meter = Meter(60, 1_000_000, lookback_s=10)
    samples = []
    track.report(Seen("in_use"))
    for t in range(0, 20):  # answers until 4 s, then silence until 12 s
        now.t = float(t)
        if t <= 4 or t >= 12:
            track.answered()
        samples += meter.observe(1_000_000 + t * 1000, track.reading())
    samples += meter.flush(1_020_000)
    # in use 0-4 and 12-20; the silence from the last answer (4 s) to the next (12 s) unknown
    assert seconds(samples) == {"in_use": 12.0}
    events = [(e.type, e.data.get("reason")) for e in track.drain_events()]
    assert events == [("job_start", None), ("job_end", "unobserved"),
                      ("source_error", "silent"), ("job_start", None)]  # fmt: skip
