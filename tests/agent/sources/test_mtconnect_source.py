"""The mtconnect source on httpx against a simulated MTConnect agent on loopback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from labmeter.agent.sources.mtconnect.protocol import StreamError, parse
from labmeter.agent.sources.mtconnect.source import MTConnectSource
from labmeter.config import AgentConfig, Config
from labmeter.influx import InfluxV1
from labmeter.simulators.devices.mtconnect_agent import MTConnectAgent
from tests.agent.sources.hour import SPEED, agent_config, hour_clock, run_hour
from tests.helpers import wait_for


@pytest.mark.e2e
def test_an_hour_through_the_collector(
    config: Config, influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    clock = hour_clock()
    agent = MTConnectAgent(version="2.0", wall_ms=clock.wall_ms).start()
    # A poll every 12 script seconds (a fifth of a second here): changes between polls are
    # replayed at their own timestamps, so the seconds still match the script.
    options = {"url": agent.url, "poll_s": 0.2, "timeout_s": 3.0 * SPEED,
               "reconnect_s": 0.05, "reconnect_max_s": 0.1}  # fmt: skip
    cfg = agent_config(config, uid, tmp_path, "mtconnect", options)
    try:
        result = run_hour(cfg, influx, clock, lambda c: MTConnectSource(cfg.agent, c.clock()),
                          agent.apply)  # fmt: skip
    finally:
        agent.stop()
    result.assert_within()
    assert result.substates["in_use"] == {"ACTIVE/AUTOMATIC"}
    assert result.substates["setup"] == {"ACTIVE/MANUAL"}
    assert result.substates["alarm"] == {"FAULT/1010"}
    assert ("job_end", "unobserved") in result.events


@pytest.mark.parametrize("version", ["1.3", "2.0"])
def test_no_change_between_two_polls_is_lost(version: str) -> None:
    agent = MTConnectAgent(version=version).start()
    source = MTConnectSource(AgentConfig(options={"url": agent.url, "poll_s": 1.0}))
    try:
        wait_for(lambda: source.poll().state == "idle", timeout=5)
        for state in ("setup", "in_use", "paused", "in_use", "alarm", "idle"):
            agent.set_state(state)
            time.sleep(0.02)  # all within one poll period
        seen: list[str | None] = []
        deadline = time.monotonic() + 2.5  # two polls and more
        while time.monotonic() < deadline:
            state = source.poll().state
            if not seen or state != seen[-1]:
                seen.append(state)
            time.sleep(0.01)
        assert seen == ["idle", "setup", "in_use", "paused", "in_use", "alarm", "idle"]
    finally:
        source.close()
        agent.stop()


def test_an_agent_restart_starts_over_from_current() -> None:
    agent = MTConnectAgent().start()
    source = MTConnectSource(AgentConfig(options={"url": agent.url, "poll_s": 0.1}))
    try:
        wait_for(lambda: source.poll().state == "idle", timeout=5)
        agent.restart_agent()
        agent.set_state("in_use")
        wait_for(lambda: source.poll().state == "in_use", timeout=5)
        assert source.counters["restarts"] == 1
    finally:
        source.close()
        agent.stop()


def test_garbage_and_errors_are_refused_with_a_reason() -> None:
    with pytest.raises(StreamError, match="not XML"):
        parse(b"<html")
    with pytest.raises(StreamError, match="OUT_OF_RANGE"):
        parse(
            b'<MTConnectError xmlns="urn:mtconnect.org:MTConnectError:1.3"><Errors>'
            b'<Error errorCode="OUT_OF_RANGE">gone</Error></Errors></MTConnectError>'
        )
    with pytest.raises(StreamError, match="not an MTConnectStreams"):
        parse(b"<MTConnectDevices/>")
