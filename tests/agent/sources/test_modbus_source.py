"""Modbus source (real pymodbus client) against the pty RTU meter: power states and faults."""

from pathlib import Path

import pytest

from labmeter.agent.sources.modbus.source import ModbusSource
from labmeter.agent.sources.serial_link import open_port
from labmeter.config import AgentConfig
from labmeter.errors import ConfigError
from labmeter.simulators.devices.modbus_meter import ModbusMeterDevice
from tests.agent.sources.harness import SLACK_S, run_against
from tests.helpers import wait_for

READ_S = 0.1
TIMEOUT_S = 0.35
POLL_S = 0.05
# A change just after the power register was read shows in the next round, one read period
# later, once that round's three requests are answered.
LATENCY_S = 2 * READ_S + POLL_S + SLACK_S
LOST_S = TIMEOUT_S + 2 * READ_S + POLL_S + SLACK_S
REGISTERS = {
    "power": {"address": 12},
    "voltage": {"address": 0},
    "energy_kwh": {"address": 342, "type": "uint32", "scale": 0.01},
}


def options(path: str) -> dict[str, object]:
    return {"port": path, "registers": REGISTERS, "off_below_w": 20, "run_above_w": 1000,
            "read_s": READ_S, "timeout_s": TIMEOUT_S, "response_timeout_s": 0.1}  # fmt: skip


def test_states_and_faults_match_the_meter(tmp_path: Path) -> None:
    meter = ModbusMeterDevice(tmp_path / "ttyMODBUS").start()
    src = ModbusSource(AgentConfig(options=options(meter.path)))
    try:
        timeline = [
            (0.5, lambda: meter.set_state("idle")),
            (1.0, lambda: meter.set_state("in_use")),
            (1.3, meter.garbage),
            (1.5, lambda: meter.corrupt(1)),  # one reply with a bad CRC
            (1.8, lambda: meter.silence(True)),
            (2.4, lambda: meter.silence(False)),
            (2.9, lambda: meter.set_state("idle")),
            (3.4, meter.unplug),
            (3.9, meter.replug),
            (4.4, lambda: meter.set_state("off")),
            (4.9, lambda: None),
        ]
        out = run_against(src, meter, timeline, poll_s=POLL_S, settle_s=0.5)
        reading = src.poll()
    finally:
        src.close()
        meter.stop()
    out.assert_meter_matches_readings()
    out.assert_tracks(LATENCY_S, LOST_S)
    types = [e.type for e in out.events]
    assert types.count("job_start") == 1 and types.count("job_end") == 1
    assert "source_error" in types and src.counters["errors"] >= 3
    assert reading.metrics["voltage"] == pytest.approx(230.1, abs=0.01)
    assert reading.metrics["energy_kwh"] == pytest.approx(1234.5)
    assert reading.metrics["power"] == pytest.approx(2.0)


def test_exception_replies_and_bad_requests(tmp_path: Path) -> None:
    meter = ModbusMeterDevice(tmp_path / "ttyMODBUS").start()
    opts = {**options(meter.path), "registers": {**REGISTERS, "missing": {"address": 500}}}
    src = ModbusSource(AgentConfig(options=opts))
    try:
        out = run_against(src, meter, [(0.8, lambda: None)], poll_s=POLL_S, settle_s=0.1)
        src.close()
        # A request with a wrong CRC gets no answer at all, as on a real RS-485 bus.
        with open_port(meter.path, 9600) as port:
            port.write(bytes.fromhex("0104000C0002") + b"\x00\x00")
            wait_for(lambda: meter.bad_crc == 1, timeout=2)
            assert port.read(8) == b""
    finally:
        src.close()
        meter.stop()
    # The meter answers "illegal data address" (exception 02) for the unmapped register: every
    # read fails, so the state is unknown, and each failure is counted.
    assert {s for _, s in out.seen} == {None}
    assert src.counters["errors"] >= 4 and src.counters["reads"] == 0
    assert [e.type for e in out.events] == ["source_error"]
    assert "exception" in str(out.events[0].data["reason"])


@pytest.mark.parametrize(
    "change,key",
    [
        ({"registers": {}}, "agent.options.power_register"),
        ({"run_above_w": None}, "agent.options.run_above_w"),
        ({"off_below_w": 5000}, "agent.options.off_below_w"),
        ({"registers": {"power": {"address": "12"}}}, "agent.options.registers.power.address"),
        ({"parity": "X"}, "agent.options.parity"),
    ],
)
def test_config_errors_name_the_key(change: dict[str, object], key: str) -> None:
    opts = {k: v for k, v in {**options("/dev/null"), **change}.items() if v is not None}
    with pytest.raises(ConfigError) as err:
        ModbusSource(AgentConfig(options=opts))
    assert err.value.key == key
