"""GRBL and grblHAL sources against the pty controller: states, resets, garbage, silence, unplug."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from labmeter.agent.sources.grbl.source import GrblSource
from labmeter.config import AgentConfig
from labmeter.errors import ConfigError
from labmeter.simulators.devices.base import now_ms
from labmeter.simulators.devices.grbl import BOOT_S, GrblDevice
from tests.agent.sources.harness import SLACK_S, run_against

# GRBL state -> labmeter state, as in the README (not imported: the test checks the mapping).
README = {
    "Idle": "idle", "Run": "in_use", "Hold": "paused", "Door": "paused", "Jog": "setup",
    "Home": "setup", "Tool": "setup", "Check": "setup", "Alarm": "alarm", "Sleep": "off",
}  # fmt: skip
STATUS_HZ = 5.0
TIMEOUT_S = 0.4
POLL_S = 0.05
# A change is seen within one query period plus one agent poll; a reset (silent while
# booting) or a silence only by the banner or the status timeout. Plus scheduling slack.
LATENCY_S = 1 / STATUS_HZ + POLL_S + SLACK_S
LOST_S = max(BOOT_S, TIMEOUT_S) + SLACK_S


def mapping(state: str) -> str:
    return README[state.split(":")[0]]


@pytest.fixture
def grbl(tmp_path: Path) -> Iterator[GrblDevice]:
    device = GrblDevice(tmp_path / "ttyGRBL").start()
    yield device
    device.stop()


def source(path: str, **options: object) -> GrblSource:
    opts = {"port": path, "status_hz": STATUS_HZ, "status_timeout_s": TIMEOUT_S,
            "reconnect_s": 0.1, **options}  # fmt: skip
    return GrblSource(AgentConfig(options=opts))


def test_states_and_faults_match_the_controllers_timeline(grbl: GrblDevice) -> None:
    src = source(grbl.path)
    try:
        t0 = now_ms()
        timeline = [
            (0.5, lambda: grbl.set_state("Home")),
            (1.0, lambda: grbl.set_state("Jog")),
            (1.5, lambda: grbl.set_state("Run")),
            (2.0, lambda: grbl.set_state("Hold:1")),
            (2.1, lambda: grbl.set_state("Hold:0")),
            (2.7, lambda: grbl.set_state("Door:1")),
            (3.3, lambda: grbl.set_state("Run")),
            (3.5, grbl.garbage),
            (3.6, lambda: grbl.garbage(600)),  # a run of noise longer than any line
            (3.8, lambda: grbl.reset("Alarm")),  # mid-job: banner, then locked in alarm
            (4.6, lambda: grbl.set_state("Idle")),
            (5.1, lambda: grbl.silence(True)),  # polls go unanswered
            (5.8, lambda: grbl.silence(False)),
            (6.3, grbl.unplug),
            (6.8, grbl.replug),
            (7.3, lambda: grbl.set_state("Sleep")),
            (7.8, lambda: None),
        ]
        out = run_against(src, grbl, timeline, poll_s=POLL_S, mapping=mapping, settle_s=0.4)
        elapsed_s = (now_ms() - t0) / 1000
    finally:
        src.close()
    out.assert_meter_matches_readings()
    out.assert_tracks(LATENCY_S, LOST_S)
    # Reset, silence and unplug are unknown time, not idle: about 0.3 + 0.7 + 0.5 s of it.
    assert out.truth_s["unknown"] >= 1.3
    assert out.measured["unknown"] >= out.truth_s["unknown"] - 3 * LOST_S
    types = [(e.type, e.data.get("reason")) for e in out.events]
    # Stamped when seen: the reset's events within the boot time after the reset itself.
    reset_ms = next(t for t, s in out.truth if s is None)
    reset_events = [e.ts_ms for e in out.events if e.data.get("reason") == "reset"]
    assert len(reset_events) == 2
    assert all(e is not None and 0 <= e - reset_ms <= LOST_S * 1000 for e in reset_events)
    assert types[:3] == [("job_start", None), ("source_error", "reset"), ("job_end", "reset")]
    assert ("alarm", None) in types and ("source_error", "disconnected") in types
    metrics = src.poll().metrics
    assert 1 <= metrics["serial_garbage_lines"] <= 3 and metrics["serial_overlong_lines"] >= 1
    assert src.counters["resets"] == 1
    assert src.link.connects == 2  # one long-lived connection, reopened once after the unplug
    assert grbl.queries <= STATUS_HZ * elapsed_s + 2  # never faster than 5 Hz


def test_grblhal_is_queried_with_0x80_and_its_banner_is_a_reset(tmp_path: Path) -> None:
    hal = GrblDevice(tmp_path / "ttyHAL", variant="grblhal").start()
    src = source(hal.path, variant="grblhal")
    try:
        timeline = [
            (0.5, lambda: hal.set_state("Run")),
            (1.0, lambda: hal.set_state("Tool")),
            (1.5, lambda: hal.reset("Idle")),
            (2.2, lambda: None),
        ]
        out = run_against(src, hal, timeline, poll_s=POLL_S, mapping=mapping, settle_s=0.4)
    finally:
        src.close()
        hal.stop()
    out.assert_meter_matches_readings()
    out.assert_tracks(LATENCY_S, LOST_S)
    assert hal.queries > 0
    assert [e.data.get("firmware") for e in out.events if e.type == "source_error"] == [
        "GrblHAL 1.1f"
    ]
    assert ("job_end", "reset") in [(e.type, e.data.get("reason")) for e in out.events]


@pytest.mark.parametrize(
    "options,key",
    [
        ({}, "agent.options.port"),
        ({"port": "/dev/null", "status_hz": 10}, "agent.options.status_hz"),
        ({"port": "/dev/null", "variant": "smoothie"}, "agent.options.variant"),
        ({"port": "/dev/null", "baud": 115200}, "agent.options.baud"),
    ],
)
def test_config_errors_name_the_key(options: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        GrblSource(AgentConfig(options=options))
    assert err.value.key == key
