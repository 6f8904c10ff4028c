"""Each networked printer source against its emulator, through the real agent, Mosquitto, the
collector and InfluxDB: a scripted hour (heating, a job, a pause, a network cut and a reconnect
mid-job, an error, the printer switched off) gives the script's seconds per state within one
sample interval; job names never leave the agent, keys never reach a log."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from labmeter.agent.runner import Agent
from labmeter.agent.sources.bambu.source import BambuSource
from labmeter.agent.sources.moonraker.source import MoonrakerSource
from labmeter.agent.sources.octoprint.source import OctoPrintSource
from labmeter.agent.sources.prusalink.source import PrusaLinkSource
from labmeter.collector.service import Collector
from labmeter.config import AgentConfig, Config
from labmeter.contract import STATES
from labmeter.influx import InfluxV1
from labmeter.localstack import Service
from labmeter.simulators.devices.bambu import BambuPrinter, printer_broker
from labmeter.simulators.devices.moonraker import MoonrakerPrinter
from labmeter.simulators.devices.octoprint import OctoPrintServer
from labmeter.simulators.devices.printer import JOB_NAME, HttpPrinter, PrinterModel
from labmeter.simulators.devices.prusalink import PrusaLinkPrinter
from tests.agent.sources.printer_hour import (
    HOUR_S,
    INTERVAL_S,
    SCRIPT,
    T0,
    Clock,
    Driver,
    agent_config,
    assert_within_one_interval,
    expected_seconds,
    play,
    read_back,
    run_hour,
)
from tests.helpers import pinned_collector, wait_for

pytestmark = pytest.mark.e2e

KEY = "Kx9-secret-key-7f3a"  # an API key, password or access code: never in a log


def http_driver(emulator: HttpPrinter, off_seen: bool) -> Callable[[Any, Clock], Driver]:
    def drive(source: Any, clock: Clock) -> Driver:
        due = [0]

        def ask(now: int) -> None:
            if now >= due[0]:
                due[0] = now + int(source.poller.step() * 1000)

        return Driver(emulator, emulator.down, emulator.up, ask, off_seen)  # type: ignore[arg-type]

    return drive


Case = tuple[Callable[[PrinterModel], HttpPrinter], Any, dict[str, Any], bool, set[str]]
CASES: dict[str, Case] = {
    "moonraker": (
        lambda m: MoonrakerPrinter(m, api_key=KEY), MoonrakerSource, {"api_key": KEY}, True,
        {"standby", "printing", "paused", "klippy/shutdown", "error", "klippy/error/mcu_absent"},
    ),
    "octoprint": (
        lambda m: OctoPrintServer(m, api_key=KEY), OctoPrintSource, {"api_key": KEY}, True,
        {"Operational", "Printing", "Paused", "Offline after error", "Offline"},
    ),
    "prusalink": (
        lambda m: PrusaLinkPrinter(m, password=KEY), PrusaLinkSource, {"password": KEY}, False,
        {"IDLE", "BUSY", "PRINTING", "PAUSED", "ATTENTION", "STOPPED"},
    ),
}  # fmt: skip


def watch_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Everything our code and the clients under it log, down to DEBUG."""
    for name in ("labmeter", "httpx", "pyprusalink", "paho"):
        caplog.set_level(logging.DEBUG, logger=name)


def no_secret_anywhere(caplog: pytest.LogCaptureFixture, events: list[dict[str, Any]]) -> None:
    assert KEY not in caplog.text
    flat = repr(events)
    assert KEY not in flat
    assert "mario" not in flat.lower() and JOB_NAME not in flat  # job names go out hashed


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_scripted_hour_through_the_collector(
    name: str, config: Config, influx: InfluxV1, uid: str, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    watch_logs(caplog)
    build, source_class, options, off_seen, substates = CASES[name]
    clock = Clock(T0)
    emulator = build(PrinterModel(clock=clock)).start()
    try:
        result = run_hour(
            config, influx, uid, tmp_path, source_name=name,
            options={"url": emulator.url, **options},
            make=lambda cfg, clk: source_class(cfg, clock=clk, background=False),
            drive=http_driver(emulator, off_seen), clock=clock,
        )  # fmt: skip
    finally:
        emulator.stop()
    assert_within_one_interval(result)
    # The cut-off is unobserved, not idle; the switched-off printer is off only where its
    # host says so.
    assert result.expected["unknown"] >= 300
    assert (result.measured["off"] > 200) is off_seen
    assert substates <= result.substates
    types = [e["type"] for e in result.events]
    assert {"job_start", "job_end", "alarm", "source_error"} <= set(types)
    assert any(str(e.get("d_job", "")).startswith("j_") for e in result.events)
    no_secret_anywhere(caplog, result.events)


@pytest.fixture
def bambu_broker(tmp_path: Path) -> Iterator[Service]:
    service = printer_broker(tmp_path / "printer", KEY)
    service.start()
    yield service
    service.stop()


def test_bambu_scripted_hour_through_the_collector(
    config: Config, influx: InfluxV1, uid: str, tmp_path: Path, bambu_broker: Service,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    watch_logs(caplog)
    clock = Clock(T0)
    printer = BambuPrinter(PrinterModel(clock=clock), bambu_broker.port, KEY).start()
    wait_for(lambda: printer.connected, 10)

    def drive(source: BambuSource, clk: Clock) -> Driver:
        def settle(before: int) -> None:
            """Wait until the source has the printer's report sent since ``before``."""
            wait_for(lambda: source.reports > before, 15)

        def apply(phase: str) -> None:
            if phase == "off":  # the broker is on the printer: switched off, it is gone
                down()
                printer.model.set("off")
                return
            before = source.reports
            printer.apply(phase)
            settle(before)

        def down() -> None:
            bambu_broker.stop()
            wait_for(lambda: not source.watch.connected, 15)
            printer.model.cut(False)

        def up() -> None:
            before = source.reports
            bambu_broker.start()
            wait_for(lambda: printer.connected and source.client.is_connected(), 20)
            source.pushall()  # the printer may have subscribed after the agent's first ask
            settle(before)
            printer.model.cut(True)

        proxy = type("P", (), {"model": printer.model, "apply": staticmethod(apply)})()
        return Driver(proxy, down, up, lambda now: None, off_seen=False)

    def make(cfg: AgentConfig, clk: Clock) -> BambuSource:
        source = BambuSource(cfg, clock=clk)
        wait_for(lambda: source.reports > 0, 15)
        return source

    try:
        result = run_hour(
            config, influx, uid, tmp_path, source_name="bambu",
            options={"host": "127.0.0.1", "port": bambu_broker.port, "serial": printer.serial,
                     "access_code": KEY, "reconnect_max_s": 1.0},
            make=make, drive=drive, clock=clock,
        )  # fmt: skip
    finally:
        printer.stop()
    assert_within_one_interval(result)
    assert result.measured["off"] == 0 and result.expected["unknown"] >= 600
    assert {
        "IDLE/stg-1",
        "RUNNING/stg2",
        "RUNNING/stg0",
        "PAUSE/stg16",
        "PAUSE/stg6",
    } <= result.substates
    assert printer.pushalls >= 2  # one per connection: the only message the agent sends
    no_secret_anywhere(caplog, result.events)


def test_moonraker_fills_an_agent_outage_from_its_history(
    config: Config, influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    """The agent is down from 200 s to 2000 s while the printer heats, prints and pauses; on
    its start Moonraker's history gives back the printed seconds, marked as filled."""
    clock = Clock(T0)
    emulator = MoonrakerPrinter(PrinterModel(clock=clock)).start()
    cfg = agent_config(config, uid, tmp_path, "moonraker", {"url": emulator.url})
    collector = Collector(pinned_collector(config, T0 + HOUR_S * 1000), influx)
    collector.start()
    made = 0
    try:
        for start_s, end_s in ((0, 200), (2000, HOUR_S)):
            source = MoonrakerSource(cfg.agent, clock=clock, background=False)
            driver = http_driver(emulator, True)(source, clock)
            agent = Agent(cfg, source, clocks=(T0 + start_s * 1000, start_s * 1000))
            agent.publisher.start()
            play(agent, driver, clock, SCRIPT, start_s, end_s)
            clock.ms = T0 + end_s * 1000
            agent.stop(wall=clock.ms)
            made = agent.meter.seq
            if start_s == 0:  # the outage: the printer goes on, nobody watches
                steps = dict(SCRIPT)
                for s in range(200, 2000):
                    clock.ms = T0 + s * 1000
                    if s in steps:
                        emulator.apply(steps[s])
        measured, _ = read_back(influx, uid, made)
        rows = influx.query(f"SELECT sum(filled_s) FROM device_metrics WHERE site = '{uid}'")
        filled = float(rows[0].values[0][1])
        seqs = influx.query(f"SELECT seq FROM sample WHERE site = '{uid}'")[0].values
    finally:
        collector.stop()
        emulator.stop()
    # Printed in the outage: 600-1500 and 1800-2000 (the heating before the first layer and
    # the pause are not in the history's print_duration, and stay unknown).
    assert filled == pytest.approx(1100, abs=3)
    truth = emulator.model.expected(True)
    expected = expected_seconds(truth, T0, T0 + HOUR_S * 1000)
    expected["setup"] -= 300  # the job's heating, in the outage
    expected["paused"] -= 300  # its pause, in the outage
    expected["idle"] -= 100  # 200-300 s, before the job, in the outage
    for state in STATES:
        got, want = measured.get(state, 0.0), expected.get(state, 0.0)
        assert abs(got - want) <= INTERVAL_S, (state, measured, expected)
    assert measured["in_use"] == pytest.approx(expected["in_use"], abs=INTERVAL_S)
    # Fill samples are numbered on with the live ones: every seq once, none lost.
    assert sorted(int(v[1]) for v in seqs) == list(range(made))


def test_bambu_verifies_the_printer_with_its_ca_and_refuses_a_wrong_code(
    tmp_path: Path, bambu_broker: Service, caplog: pytest.LogCaptureFixture
) -> None:
    watch_logs(caplog)
    printer = BambuPrinter(PrinterModel(), bambu_broker.port, KEY).start()
    ca = str(tmp_path / "printer" / "printer.crt")  # the printer's CA: its certificate verified
    options = {"host": "127.0.0.1", "port": bambu_broker.port, "serial": printer.serial,
               "ca_file": ca, "reconnect_max_s": 1.0}  # fmt: skip

    def source(code: str) -> BambuSource:
        config = AgentConfig(pseudonym_secret="p" * 16, options={**options, "access_code": code})
        return BambuSource(config)

    good, wrong = source(KEY), source("00000000")
    try:
        wait_for(lambda: printer.connected, 10)
        printer.apply("printing")
        wait_for(lambda: good.poll().state == "in_use", 10)
        wait_for(lambda: wrong.watch.counters["auth_failures"] > 0, 10)
        assert wrong.poll().state is None
    finally:
        good.close()
        wrong.close()
        printer.stop()
    assert KEY not in caplog.text and "00000000" not in caplog.text
