"""Current-clamp source against the pty sensor board: thresholds, spikes, garbage, gaps."""

from pathlib import Path

import pytest

from labmeter.agent.sources.clamp.source import ClampSource
from labmeter.config import AgentConfig
from labmeter.errors import ConfigError
from labmeter.simulators.devices.clamp import ClampDevice
from tests.agent.sources.harness import SLACK_S, run_against

PERIOD_S = 0.05
DWELL_S = 0.15
TIMEOUT_S = 0.3
POLL_S = 0.05
LATENCY_S = PERIOD_S + DWELL_S + POLL_S + SLACK_S
LOST_S = TIMEOUT_S + PERIOD_S + POLL_S + SLACK_S
CALIBRATION = {"off_below_a": 0.3, "run_above_a": 4.0, "hysteresis_a": 0.5,
               "min_dwell_s": DWELL_S, "timeout_s": TIMEOUT_S}  # fmt: skip


def test_states_and_faults_match_the_machine(tmp_path: Path) -> None:
    clamp = ClampDevice(tmp_path / "ttyCLAMP", period_s=PERIOD_S).start()
    src = ClampSource(AgentConfig(options={"port": clamp.path, "reconnect_s": 0.1, **CALIBRATION}))
    try:
        timeline = [
            (0.5, lambda: clamp.set_state("idle")),
            (1.0, lambda: clamp.set_state("in_use")),
            (1.3, lambda: clamp.spike(0.0)),  # one reading at zero: the dwell absorbs it
            (1.5, clamp.garbage),
            (1.8, lambda: clamp.silence(True)),
            (2.4, lambda: clamp.silence(False)),
            (2.9, lambda: clamp.set_state("idle")),
            (3.4, lambda: clamp.spike(9.0)),  # inrush while idle: no job
            (3.7, clamp.unplug),
            (4.2, clamp.replug),
            (4.7, lambda: clamp.set_state("off")),
            (5.2, lambda: None),
        ]
        out = run_against(src, clamp, timeline, poll_s=POLL_S, settle_s=0.4)
    finally:
        src.close()
        clamp.stop()
    out.assert_meter_matches_readings()
    out.assert_tracks(LATENCY_S, LOST_S)
    assert [(e.type, e.data.get("reason")) for e in out.events] == [
        ("job_start", None),  # the spike to zero did not end it
        ("job_end", "idle"),  # the 9 A spike while idle did not start another
        ("source_error", "disconnected"),
    ]
    assert src.counters["garbage_lines"] == 3


def test_bare_numbers(tmp_path: Path) -> None:
    clamp = ClampDevice(tmp_path / "ttyCLAMP", period_s=PERIOD_S, labelled=False).start()
    src = ClampSource(AgentConfig(options={"port": clamp.path, "reconnect_s": 0.1, **CALIBRATION}))
    try:
        timeline = [(0.5, lambda: clamp.set_state("in_use")), (1.0, lambda: None)]
        out = run_against(src, clamp, timeline, poll_s=POLL_S, settle_s=0.4)
    finally:
        src.close()
        clamp.stop()
    out.assert_tracks(LATENCY_S)
    assert {"off", "in_use"} <= {state for _, state in out.seen}
    assert src.counters["garbage_lines"] == 0


@pytest.mark.parametrize(
    "options,key",
    [
        ({"port": "/dev/null", "run_above_a": 4.0}, "agent.options.off_below_a"),
        ({"port": "/dev/null", "off_below_a": 5.0, "run_above_a": 4.0},
         "agent.options.run_above_a"),
        ({"port": "/dev/null", "off_below_a": 0.3, "run_above_a": 4.0, "min_dwell_s": -1},
         "agent.options.min_dwell_s"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key(options: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        ClampSource(AgentConfig(options=options))
    assert err.value.key == key
