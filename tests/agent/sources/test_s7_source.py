"""The s7 source on python-snap7 against snap7's own server, answering RUN/STOP as a CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from labmeter.agent.sources.s7.protocol import cpu_state
from labmeter.agent.sources.s7.source import S7Source
from labmeter.config import AgentConfig, Config
from labmeter.errors import ConfigError
from labmeter.influx import InfluxV1
from labmeter.simulators.devices.s7_plc import MODE_MAP, S7Plc
from tests.agent.sources.hour import SPEED, agent_config, hour_clock, run_hour
from tests.helpers import wait_for

MODE = [{"name": "Mode", "db": 1, "offset": 0, "type": "int", "map": MODE_MAP}]


@pytest.mark.e2e
def test_an_hour_through_the_collector(
    config: Config, influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    plc = S7Plc().start()
    options = {"host": "127.0.0.1", "port": plc.port, "values": MODE, "poll_s": 0.05,
               "timeout_s": 3.0 * SPEED, "reconnect_s": 0.05, "reconnect_max_s": 0.1}  # fmt: skip
    cfg = agent_config(config, uid, tmp_path, "s7", options)
    try:
        result = run_hour(
            cfg, influx, hour_clock(), lambda c: S7Source(cfg.agent, c.clock()), plc.apply
        )
    finally:
        plc.stop()
    result.assert_within()
    assert result.substates["in_use"] == {"RUN/Mode:2"}
    assert ("job_end", "unobserved") in result.events


def test_a_cpu_in_stop_is_idle_whatever_its_data_blocks_say() -> None:
    plc = S7Plc().start()
    source = S7Source(AgentConfig(options={"host": "127.0.0.1", "port": plc.port,
                                           "values": MODE, "poll_s": 0.05}))  # fmt: skip
    try:
        plc.set_state("in_use")
        wait_for(lambda: source.poll().state == "in_use", timeout=5)
        plc.run(False)
        wait_for(lambda: source.poll().state == "idle", timeout=5)
        assert source.cpu == "STOP"
    finally:
        source.close()
        plc.stop()


def test_settings_and_szl_bytes() -> None:
    assert cpu_state(bytes([0, 20, 0, 1, 0x43, 0x02, 0xFF, 0x08])) == "RUN"
    assert cpu_state(bytes([0, 20, 0, 1, 0x43, 0x02, 0xFF, 0x04])) == "STOP"
    assert cpu_state(b"\x00") == "UNKNOWN"
    with pytest.raises(ConfigError, match="type"):
        values = [{"db": 1, "offset": 0, "map": {"1": "idle"}}]
        S7Source(AgentConfig(options={"host": "h", "values": values}))
