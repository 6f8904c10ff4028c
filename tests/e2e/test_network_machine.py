"""The whole agent (runner, scheduler, meter, queue, publisher) on an OPC UA machine, through
real Mosquitto, the collector and InfluxDB, in real time: the cable pulled mid-job is unknown
time, never idle, and the job is counted again from what the machine says after."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest

from labmeter.agent.runner import run_agent
from labmeter.collector.service import Collector
from labmeter.config import AgentConfig, Config
from labmeter.contract import STATES
from labmeter.influx import InfluxV1
from labmeter.simulators.devices.opcua_machine import HELD_TAG, OpcUaMachine
from tests.agent.sources.harness import seconds
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_an_opcua_machine_through_the_whole_pipeline(
    config: Config, influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    machine = OpcUaMachine().start()  # OPC 40001-1, and a PLC tag for a held program
    collector = Collector(config, influx)
    collector.start()
    assert collector.connected.wait(10)
    agent = AgentConfig(
        site=uid, lab="lab-fab", device="mill-1", kind="cnc", source="opcua", interval_s=1,
        poll_s=0.1, pseudonym_secret="s" * 16, queue_path=str(tmp_path / "queue.db"),
        options={"endpoint": machine.endpoint, "publish_ms": 50, "keepalive_count": 2,
                 "timeout_s": 1.0, "reconnect_s": 0.05, "reconnect_max_s": 0.2,
                 "tags": [{"node_id": machine.tag(HELD_TAG), "map": {"true": "paused"}}]},
    )  # fmt: skip
    stop = threading.Event()
    runner = threading.Thread(
        target=run_agent, args=(dataclasses.replace(config, agent=agent), stop)
    )
    truth: list[tuple[int, str | None]] = []

    def step(what: str) -> None:
        machine.apply(what)
        if what == "disconnect":
            truth.append((now_ms(), None))
        elif what == "reconnect":
            truth.append((now_ms(), machine.state))
        else:
            truth.append((now_ms(), what))

    try:
        runner.start()
        time.sleep(1.5)  # the agent connects and sees the machine idle
        step("idle")
        for what, hold in (("setup", 1.0), ("in_use", 1.5), ("paused", 1.0), ("in_use", 1.0),
                           ("disconnect", 1.5), ("reconnect", 1.0), ("alarm", 1.0),
                           ("idle", 1.0)):  # fmt: skip
            step(what)
            time.sleep(hold)
        end = now_ms()
        stop.set()
        runner.join(timeout=20)

        def written() -> float:
            rows = influx.query("SELECT sum(interval_s) FROM sample")
            return float(rows[0].values[0][1]) if rows else 0.0

        wait_for(lambda: written() * 1000 >= end - truth[0][0], timeout=30)
    finally:
        stop.set()
        collector.stop()
        machine.stop()
    # Whole one-second samples from the first step on, up to the last whole second.
    start, stop_ms = truth[0][0] // 1000 * 1000 + 1000, (end - 1000) // 1000 * 1000
    fields = ", ".join(f"sum({s}_s)" for s in STATES)
    query = f"SELECT {fields} FROM sample WHERE time >= {start}ms AND time < {stop_ms}ms"
    row = influx.query(query)[0].values[0][1:]
    measured = {s: float(v) for s, v in zip(STATES, row, strict=True) if v}
    want = seconds(truth, start, stop_ms)
    # Each change is seen up to a publish, a settle and a poll late; the reconnect up to a
    # backoff and a session set-up: a second per state covers both on a busy machine.
    for state in (set(want) | set(measured)) - {"unknown"}:
        got = measured.get(state, 0.0)
        assert abs(got - want.get(state, 0.0)) <= 1.0, (state, measured, want)
    assert want["unknown"] >= 1.4  # the cable pulled for 1.5 s: unknown, not idle
