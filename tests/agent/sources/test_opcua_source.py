"""The opcua source on asyncua against a simulated machine's asyncua server on loopback."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labmeter.agent.sources.opcua.source import OpcUaSource
from labmeter.config import AgentConfig, Config
from labmeter.influx import InfluxV1
from labmeter.simulators.devices.network import ScaledClock
from labmeter.simulators.devices.opcua_machine import (
    HELD_TAG,
    MODE_MAP,
    MODE_TAG,
    PLC_MODES,
    OpcUaMachine,
)
from tests.agent.sources.hour import SPEED, agent_config, hour_clock, run_hour
from tests.helpers import wait_for


@pytest.fixture
def machine() -> Iterator[OpcUaMachine]:
    m = OpcUaMachine(users={"tech": "pa55-w0rd"}).start()
    yield m
    m.stop()


def hour_options(machine: OpcUaMachine, **extra: object) -> dict[str, object]:
    """Options in real seconds, but ``timeout_s`` in the script's (the source's clock)."""
    return {
        "endpoint": machine.endpoint, "username": "tech", "password": "pa55-w0rd",
        "publish_ms": 50, "keepalive_count": 2, "timeout_s": 3.0 * SPEED,
        "reconnect_s": 0.05, "reconnect_max_s": 0.1, **extra,
    }  # fmt: skip


@pytest.mark.e2e
def test_a_machinery_server_hour_through_the_collector(
    config: Config, influx: InfluxV1, uid: str, tmp_path: Path, machine: OpcUaMachine,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    # OPC 40001-1 alone tells no held program from idle: the PLC's Held tag says paused.
    options = hour_options(machine, tags=[{"node_id": machine.tag(HELD_TAG), "name": "Held",
                                           "map": {"true": "paused"}}])  # fmt: skip
    cfg = agent_config(config, uid, tmp_path, "opcua", options)

    def source(clock: ScaledClock) -> OpcUaSource:
        return OpcUaSource(cfg.agent, clock.clock())

    result = run_hour(cfg, influx, hour_clock(), source, machine.apply)
    result.assert_within()
    assert result.substates["in_use"] == {"Executing/Processing"}
    assert result.substates["setup"] == {"Executing/Setup"}
    assert "Held:true" in result.substates["paused"]
    assert ("alarm", "") in result.events
    assert ("job_end", "unobserved") in result.events  # the cable pulled mid-job
    assert "pa55-w0rd" not in caplog.text  # credentials are never logged


def test_an_s7_1500s_tags_give_each_state(machine: OpcUaMachine) -> None:
    mode = {"node_id": machine.tag(MODE_TAG), "name": "Mode", "map": MODE_MAP}
    options = {"endpoint": machine.endpoint, "username": "tech", "password": "pa55-w0rd",
               "publish_ms": 50, "model": "tags", "tags": [mode]}  # fmt: skip
    source = OpcUaSource(AgentConfig(options=options))
    try:
        for state in ("setup", "in_use", "paused", "alarm", "off", "idle"):
            machine.set_state(state)
            wait_for(lambda want=state: source.poll().state == want, timeout=5)  # type: ignore[misc]
            assert source.track.now is not None
            assert source.track.now.substate == f"Mode:{PLC_MODES[state]}"
    finally:
        source.close()


def test_a_wrong_password_is_unobserved_and_says_why_without_the_password(
    machine: OpcUaMachine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    options = {"endpoint": machine.endpoint, "username": "tech", "password": "not-the-one",
               "reconnect_s": 0.1}  # fmt: skip
    source = OpcUaSource(AgentConfig(options=options))
    try:
        wait_for(lambda: source.counters["connect_errors"] >= 2, timeout=10)
        assert source.poll().state is None  # never idle
        assert "cannot connect" in source.last_error
    finally:
        source.close()
    assert "not-the-one" not in caplog.text


def test_reconnects_back_off(machine: OpcUaMachine) -> None:
    machine.gate.cut()
    source = OpcUaSource(AgentConfig(options={"endpoint": machine.endpoint, "username": "tech",
                                              "password": "pa55-w0rd", "reconnect_s": 0.05,
                                              "reconnect_max_s": 0.4}))  # fmt: skip
    try:
        time.sleep(2.0)
        tries = source.counters["connect_errors"]
        # 0.05, 0.1, 0.2, 0.4, 0.4, ... (jittered down by at most a quarter): not 40 tries
        assert 3 <= tries <= 12, tries
        machine.gate.mend()
        wait_for(lambda: source.poll().state == "idle", timeout=5)
    finally:
        source.close()


def test_a_server_without_machinery_asks_for_tags(tmp_path: Path) -> None:
    from labmeter.agent.sources.opcua.protocol import parse
    from labmeter.errors import ConfigError

    with pytest.raises(ConfigError, match="tags"):
        parse({"endpoint": "opc.tcp://x:4840", "model": "tags"})
    with pytest.raises(ConfigError, match="certificate"):
        parse({"endpoint": "opc.tcp://x:4840", "security_policy": "Basic256Sha256"})
    with pytest.raises(ConfigError, match="not one of"):
        parse({"endpoint": "opc.tcp://x:4840",
               "tags": [{"node_id": "ns=3;i=1", "map": {"1": "running"}}]})  # fmt: skip
    settings = parse({"endpoint": "opc.tcp://u:p@x:4840", "username": "u", "password": "p"})
    assert settings.endpoint_shown == "opc.tcp://x:4840" and "password" not in repr(settings)
