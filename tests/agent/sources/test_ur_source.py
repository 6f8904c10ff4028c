"""The ur source against a simulated Universal Robots dashboard server on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from labmeter.agent.sources.ur.protocol import AnswerError, Robot, program_state, robot_mode
from labmeter.agent.sources.ur.source import URSource
from labmeter.config import AgentConfig, Config
from labmeter.influx import InfluxV1
from labmeter.simulators.devices.ur_dashboard import SHOWS, URDashboard
from tests.agent.sources.hour import SPEED, agent_config, hour_clock, run_hour
from tests.helpers import wait_for


@pytest.mark.e2e
def test_an_hour_through_the_collector(
    config: Config, influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    robot = URDashboard().start()
    options = {"host": "127.0.0.1", "port": robot.port, "poll_s": 0.05, "timeout_s": 3.0 * SPEED,
               "reconnect_s": 0.05, "reconnect_max_s": 0.1}  # fmt: skip
    cfg = agent_config(config, uid, tmp_path, "ur", options)
    try:
        result = run_hour(
            cfg, influx, hour_clock(), lambda c: URSource(cfg.agent, c.clock()), robot.apply
        )
    finally:
        robot.stop()
    result.assert_within()
    assert result.substates["in_use"] == {"RUNNING/PLAYING/NORMAL"}
    assert result.substates["alarm"] == {"RUNNING/PAUSED/PROTECTIVE_STOP"}
    assert ("job_end", "unobserved") in result.events


@pytest.mark.parametrize("cb_series", [False, True])
def test_each_step_reads_as_the_script_says(cb_series: bool) -> None:
    robot = URDashboard(cb_series=cb_series).start()
    source = URSource(AgentConfig(options={"host": "127.0.0.1", "port": robot.port,
                                           "poll_s": 0.05}))  # fmt: skip
    try:
        for step in SHOWS:
            robot.apply(step)
            # CB-series controllers cannot tell teaching from production: setup reads in use.
            want = "in_use" if cb_series and step == "setup" else step
            wait_for(lambda want=want: source.poll().state == want, timeout=5)  # type: ignore[misc]
        assert source.track.now is not None and source.track.now.program == robot.program
    finally:
        source.close()
        robot.stop()


def test_answers_that_are_not_answers_are_refused() -> None:
    with pytest.raises(AnswerError):
        robot_mode("Safetystatus: NORMAL")
    with pytest.raises(AnswerError):
        program_state("maybe")
    assert program_state("PLAYING prog.urp") == ("PLAYING", "prog.urp")
    assert Robot("RUNNING", "PLAYING", "SAFEGUARD_STOP", "AUTOMATIC").state()[0] == "paused"
    assert Robot("POWER_OFF", "PLAYING", "FAULT", None).state()[0] == "off"
