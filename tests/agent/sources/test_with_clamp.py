"""A machine's protocol (OPC UA) with a clamp on its supply: conflicts are counted, not hidden."""

from __future__ import annotations

import time
from pathlib import Path

from labmeter.agent.sources.clamp.with_clamp import WithClamp
from labmeter.config import AgentConfig
from labmeter.simulators.devices.clamp import ClampDevice
from labmeter.simulators.devices.network import ScaledClock
from labmeter.simulators.devices.opcua_machine import OpcUaMachine
from tests.helpers import utc_ms, wait_for


def test_in_use_by_protocol_while_the_clamp_says_off_is_a_conflict(tmp_path: Path) -> None:
    machine = OpcUaMachine().start()
    clamp = ClampDevice(tmp_path / "ttyCLAMP", period_s=0.05).start()
    # A clock pinned 5 s into a minute: the conflict seconds start over at each interval.
    clock = ScaledClock(utc_ms("2026-03-02T09:00:05+01:00"))
    source = WithClamp(AgentConfig(interval_s=60, options={
        "machine": "opcua", "endpoint": machine.endpoint, "publish_ms": 50,
        "clamp": {"port": clamp.path, "off_below_a": 0.3, "run_above_a": 4.0, "timeout_s": 1.0},
    }), clock.clock())  # fmt: skip
    try:
        clamp.set_state("in_use")
        machine.set_state("in_use")
        wait_for(lambda: source.poll().metrics.get("clamp_state") == 2.0, timeout=5)
        assert source.poll().metrics["crosscheck_conflict_s"] == 0.0  # both agree: no conflict
        clamp.set_state("off")  # the protocol still says a job runs
        wait_for(lambda: source.poll().metrics.get("clamp_state") == 0.0, timeout=5)
        time.sleep(1.0)
        reading = source.poll()
        assert reading.state == "in_use"  # the protocol decides the state ...
        assert 0.8 <= reading.metrics["crosscheck_conflict_s"] <= 3.0  # ... the clamp checks it
    finally:
        source.close()
        clamp.stop()
        machine.stop()
