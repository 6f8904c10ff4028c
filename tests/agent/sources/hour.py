"""A networked machine's scripted hour through the whole agent, real Mosquitto, the real
collector and InfluxDB; the seconds per state read back from InfluxDB against the script.

The script (``simulators/devices/script.py``: a job, a pause, an alarm, setup, a disconnect
in the middle of a job and a reconnect while it still runs) plays at ``SPEED`` times real
time from a pinned Monday morning; the agent is driven by hand (``Agent.tick``) on the same
scaled clock, so nothing depends on the hour the test runs at. The agent starts a lead-in
after the machine (the source connects meanwhile) and measures the hour that follows.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labmeter.agent.runner import Agent
from labmeter.collector.service import Collector
from labmeter.config import AgentConfig, Config
from labmeter.contract import STATES
from labmeter.influx import InfluxV1
from labmeter.simulators.devices.network import ScaledClock
from labmeter.simulators.devices.script import HOUR, HOUR_S, Step, play, truth
from tests.helpers import pinned_collector, utc_ms, wait_for

# The hour in a minute: a reconnect's handshake (half a second on a busy 2-core machine) is
# half a sample interval of the script's time at this speed, not a whole one.
SPEED = 60.0
START_MS = utc_ms("2026-03-02T09:00+01:00")  # the hour measured: a Monday morning, pinned
LEAD_S = 240.0  # script seconds before it: the source connects and sees the machine
INTERVAL_S = 60
POLL_S = 20.0  # script seconds; ticks come every ~3 (TICK_REAL_S), well within a poll
TICK_REAL_S = 0.05


@dataclass
class HourResult:
    measured: dict[str, float]  # seconds per state from InfluxDB; "unknown": the rest
    truth: dict[str, float]
    samples: int
    substates: dict[str, set[str]]  # state -> the substates stored with it
    events: list[tuple[str, str]]  # (type, reason)

    def assert_within(self, tolerance_s: float = INTERVAL_S) -> None:
        for state in set(self.truth) | set(self.measured):
            got, want = self.measured.get(state, 0.0), self.truth.get(state, 0.0)
            assert abs(got - want) <= tolerance_s, (
                f"{state}: measured {got:.0f} s, script {want:.0f} s; "
                f"measured {self.measured}, script {self.truth}"
            )


# Each source's silence timeout is 3 s of real time (3 * SPEED script seconds): a thread that
# a busy machine leaves unscheduled for a second is no silent machine. Pulling the cable resets
# the connection, which every source notices at once, whatever its timeout.


def agent_config(
    config: Config, uid: str, tmp_path: Any, source: str, options: dict[str, Any]
) -> Config:
    agent = AgentConfig(
        site=uid, lab="lab-fab", device="machine-1", kind="cnc", source=source,
        interval_s=INTERVAL_S, poll_s=POLL_S, pseudonym_secret="s" * 16,
        queue_path=str(tmp_path / "queue.db"), options=options,
        queue_max_age_days=36500,  # the queue reckons age by the wall clock; the hour is pinned
    )  # fmt: skip
    return dataclasses.replace(config, agent=agent)


def hour_clock() -> ScaledClock:
    """The script's clock: it starts now, ``LEAD_S`` before the pinned hour."""
    return ScaledClock(START_MS - int(LEAD_S * 1000), SPEED)


def run_hour(
    config: Config,
    influx: InfluxV1,
    clock: ScaledClock,
    make_source: Callable[[ScaledClock], Any],
    apply: Callable[[str], None],
    steps: tuple[Step, ...] = HOUR,
) -> HourResult:
    """Play ``steps`` on the machine (``apply``) and measure it with ``make_source``'s source."""
    end_ms = START_MS + HOUR_S * 1000
    config = pinned_collector(config, end_ms)
    collector = Collector(config, influx)
    collector.start()
    assert collector.connected.wait(10)
    stop = threading.Event()
    shifted = [(LEAD_S + at, what) for at, what in steps]
    player = threading.Thread(
        target=play, args=(clock, shifted, apply, stop, LEAD_S + HOUR_S), daemon=True
    )
    source = make_source(clock)
    try:
        player.start()
        clock.wait_until(LEAD_S, stop)
        begin = clock.wall_ms()
        agent = Agent(config, source, clocks=(begin, begin))
        agent.publisher.start()
        seq0 = agent.meter.seq
        while clock.monotonic() < LEAD_S + HOUR_S:
            now = clock.wall_ms()
            agent.tick(now, now)
            agent.pump()
            time.sleep(TICK_REAL_S)
        agent.stop(wall=end_ms)
        samples = agent.meter.seq - seq0

        def written() -> int:
            rows = influx.query("SELECT count(seq) FROM sample")
            return rows[0].values[0][1] if rows else 0

        wait_for(lambda: written() == samples, timeout=30)
    finally:
        stop.set()
        player.join(timeout=10)
        collector.stop()
    fields = ", ".join(f"sum({s}_s)" for s in STATES)
    row = influx.query(f"SELECT {fields}, sum(interval_s) FROM sample")[0].values[0][1:]
    measured = {s: float(v or 0.0) for s, v in zip(STATES, row, strict=False) if v}
    measured["unknown"] = float(row[-1]) - sum(measured.values())
    substates: dict[str, set[str]] = {}
    for _, state, sub in influx.query("SELECT state, substate FROM sample")[0].values:
        if state is not None and sub is not None:
            substates.setdefault(state, set()).add(sub)
    rows = influx.query('SELECT seq, "type", d_reason FROM event')
    events = [(e[2], e[3] or "") for e in rows[0].values] if rows else []
    start_s = (begin - START_MS) / 1000
    return HourResult(measured, truth(steps, HOUR_S, start_s), samples, substates, events)
