"""A scripted hour of a networked printer, through the real agent, Mosquitto, the collector and
InfluxDB, on a pinned clock.

The printer's emulator speaks its real protocol on loopback and the source's real client code
asks it; only time is the script's: each second of the hour the test sets the clock, plays the
script's step, lets the source ask the printer when its own schedule (``query_s``, backoff)
says so, and ticks the agent at that time. Seconds per state read back from InfluxDB must lie
within one sample interval of the script's.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from labmeter.agent.runner import Agent
from labmeter.collector.service import Collector
from labmeter.config import AgentConfig, Config
from labmeter.contract import STATES
from labmeter.influx import InfluxV1
from labmeter.simulators.devices.printer import PrinterModel
from tests.helpers import pinned_collector, utc_ms, wait_for

T0 = utc_ms("2025-11-25T09:00+00:00")  # a Tuesday morning, pinned
INTERVAL_S = 60
SECRET = "printer-test-secret-2026"
# (second of the hour, step): a job heated, printed, paused, printed, cut off from the network
# and back mid-job, then an error, idle and the printer switched off.
SCRIPT: list[tuple[int, str]] = [
    (0, "idle"), (300, "heating"), (600, "printing"), (1500, "paused"), (1800, "printing"),
    (2100, "down"), (2400, "up"), (2700, "error"), (3000, "idle"), (3300, "off"),
]  # fmt: skip
HOUR_S = 3600


class Clock:
    """The test's clock: what every part reads as now."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


class Printer(Protocol):
    model: PrinterModel

    def apply(self, phase: str) -> None: ...


@dataclass
class Driver:
    """How a test plays the script on one emulator and lets its source ask."""

    printer: Printer
    down: Callable[[], None]
    up: Callable[[], None]
    ask: Callable[[int], None]  # the source's turn at this ms (its own schedule decides)
    off_seen: bool  # whether the protocol tells a printer switched off from one unreachable


@dataclass
class HourResult:
    measured: dict[str, float]
    expected: dict[str, float]
    samples: int
    substates: set[str]
    events: list[dict[str, Any]] = field(default_factory=list)


def expected_seconds(truth: list[tuple[int, str | None]], start: int, end: int) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    points = [(t, s) for t, s in truth if t < end]
    for (t, state), (t_next, _) in zip(points, [*points[1:], (end, None)], strict=True):
        a, b = max(t, start), min(t_next, end)
        if b > a:
            out[state or "unknown"] += (b - a) / 1000
    return dict(out)


def agent_config(
    config: Config, uid: str, tmp_path: Path, source: str, options: dict[str, Any]
) -> Config:
    agent = AgentConfig(
        site=uid, lab="lab-fab", device="printer-1", kind="printer3d", source=source,
        interval_s=INTERVAL_S, poll_s=1.0, pseudonym_secret=SECRET,
        queue_path=str(tmp_path / "queue.db"), options=options,
        queue_max_age_days=36500,  # the pinned hour lies in the past: keep its rows
    )  # fmt: skip
    return dataclasses.replace(config, agent=agent)


def play(
    agent: Agent,
    driver: Driver,
    clock: Clock,
    script: list[tuple[int, str]],
    start_s: int,
    end_s: int,
) -> None:
    """Play ``script`` from second ``start_s`` to ``end_s`` of the hour, ticking ``agent``."""
    steps = dict(script)
    for s in range(start_s, end_s):
        clock.ms = T0 + s * 1000
        step = steps.get(s)
        if step == "down":
            driver.down()
        elif step == "up":
            driver.up()
        elif step is not None:
            driver.printer.apply(step)
        driver.ask(clock.ms)
        agent.tick(wall=clock.ms, mono=s * 1000)
        if s % INTERVAL_S == 0:
            agent.pump()


def read_back(influx: InfluxV1, site: str, made: int) -> tuple[dict[str, float], set[str]]:
    fields = ", ".join(f"sum({s}_s)" for s in STATES)

    def count() -> int:
        rows = influx.query(f"SELECT count(seq) FROM sample WHERE site = '{site}'")
        return int(rows[0].values[0][1]) if rows else 0

    wait_for(lambda: count() >= made, timeout=60)
    rows = influx.query(f"SELECT {fields} FROM sample WHERE site = '{site}'")
    values = rows[0].values[0][1:]
    measured = {s: float(v or 0.0) for s, v in zip(STATES, values, strict=True)}
    subs = influx.query(f"SELECT substate FROM sample WHERE site = '{site}'")
    substates = {str(v[1]) for v in subs[0].values if v[1]} if subs else set()
    return measured, substates


def events(influx: InfluxV1, site: str) -> list[dict[str, Any]]:
    rows = influx.query(f"SELECT * FROM event WHERE site = '{site}'")
    if not rows:
        return []
    return [dict(zip(rows[0].columns, v, strict=True)) for v in rows[0].values]


def run_hour(
    config: Config,
    influx: InfluxV1,
    uid: str,
    tmp_path: Path,
    *,
    source_name: str,
    options: dict[str, Any],
    make: Callable[[AgentConfig, Clock], Any],
    drive: Callable[[Any, Clock], Driver],
    clock: Clock,
) -> HourResult:
    """The whole hour through one agent; the source is built by ``make`` on the test's clock."""
    cfg = agent_config(config, uid, tmp_path, source_name, options)
    collector = Collector(pinned_collector(config, T0 + HOUR_S * 1000), influx)
    collector.start()
    source = make(cfg.agent, clock)
    driver = drive(source, clock)
    agent = Agent(cfg, source, clocks=(T0, 0))
    agent.publisher.start()
    try:
        play(agent, driver, clock, SCRIPT, 0, HOUR_S)
        clock.ms = T0 + HOUR_S * 1000
        agent.stop(wall=clock.ms)
        made = agent.meter.seq
        measured, substates = read_back(influx, uid, made)
        found = events(influx, uid)
    finally:
        collector.stop()
    truth = driver.printer.model.expected(driver.off_seen)
    expected = expected_seconds(truth, T0, T0 + HOUR_S * 1000)
    return HourResult(measured, expected, made, substates, found)


def assert_within_one_interval(result: HourResult) -> None:
    for state in STATES:
        got, want = result.measured.get(state, 0.0), result.expected.get(state, 0.0)
        assert abs(got - want) <= INTERVAL_S, (state, result.measured, result.expected)
    observed = sum(result.measured.values())
    unknown = result.expected.get("unknown", 0.0)
    assert abs(observed - (HOUR_S - unknown)) <= INTERVAL_S, (observed, result.expected)
