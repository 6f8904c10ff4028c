"""Marlin source against the pty printer: SD jobs, busy keepalives, resets, silence, unplug."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from labmeter.agent.sources.marlin.source import MarlinSource
from labmeter.config import AgentConfig
from labmeter.errors import ConfigError
from labmeter.simulators.devices.marlin import BOOT_S, MarlinDevice
from tests.agent.sources.harness import SLACK_S, run_against

README = {"idle": "idle", "heating": "setup", "printing": "in_use", "paused": "paused",
          "halted": "alarm"}  # fmt: skip
QUERY_S = 0.1  # also the simulator's auto-report period (M155 S1 at time_scale 0.1)
TIMEOUT_S = 0.5
POLL_S = 0.05
LATENCY_S = QUERY_S + POLL_S + SLACK_S
LOST_S = max(BOOT_S, TIMEOUT_S) + SLACK_S


@pytest.fixture
def marlin(tmp_path: Path) -> Iterator[MarlinDevice]:
    device = MarlinDevice(tmp_path / "ttyMARLIN", time_scale=QUERY_S).start()
    yield device
    device.stop()


def source(path: str, **options: object) -> MarlinSource:
    opts = {"port": path, "query_s": QUERY_S, "timeout_s": TIMEOUT_S, "reconnect_s": 0.1,
            **options}  # fmt: skip
    return MarlinSource(AgentConfig(options=opts))


def test_states_and_faults_match_the_printers_timeline(marlin: MarlinDevice) -> None:
    src = source(marlin.path)
    try:
        timeline = [
            (0.5, marlin.heat),
            (1.0, marlin.start_print),
            (1.5, lambda: marlin.busy(1.0)),  # only keepalives for 1 s: twice the timeout
            (2.7, marlin.garbage),
            (3.0, marlin.pause),
            (3.5, marlin.resume),
            (4.0, marlin.reset),  # mid-print: silent while booting, then `start`
            (4.8, marlin.start_print),
            (5.3, marlin.finish),
            (5.8, marlin.unplug),
            (6.3, marlin.replug),
            (6.8, marlin.halt),
            (7.3, lambda: marlin.silence(True)),
            (7.9, lambda: marlin.silence(False)),
            (8.4, lambda: None),
        ]
        out = run_against(
            src, marlin, timeline, poll_s=POLL_S, mapping=README.__getitem__, settle_s=0.5
        )
    finally:
        src.close()
    out.assert_meter_matches_readings()
    out.assert_tracks(LATENCY_S, LOST_S)
    assert out.truth_s["unknown"] >= 1.2  # boot + unplug + silence
    events = [(e.type, e.data.get("reason")) for e in out.events]
    assert events == [
        ("job_start", None),
        ("source_error", "reset"),
        ("job_end", "reset"),
        ("job_start", None),
        ("job_end", "done"),
        ("source_error", "disconnected"),
        ("alarm", None),
    ]
    assert src.counters["busy"] >= 3 and src.counters["garbage_lines"] == 1
    assert src.counters["resets"] == 1 and src.link.connects == 2
    # Auto-reports were asked for after each (re)start; the fallback queries stayed rare.
    assert marlin.commands.count("M155 S1") >= 2 and marlin.commands.count("M27 S1") >= 2
    assert len(marlin.commands) < 40


def test_polling_only_firmware_busy_keepalives_and_silence(marlin: MarlinDevice) -> None:
    src = source(marlin.path, autoreport_s=0)  # polling: a query is always waiting for its ok
    after_busy: list[int] = []
    try:
        timeline = [
            (0.3, marlin.start_print),
            (0.6, lambda: marlin.busy(1.2)),  # M109 from the SD file: only keepalives
            (2.0, lambda: after_busy.append(src.counters["timeouts"])),
            (2.2, marlin.pause),
            (2.7, lambda: marlin.silence(True)),
            (3.7, lambda: marlin.silence(False)),
            (4.0, marlin.finish),
            (4.4, lambda: None),
        ]
        out = run_against(src, marlin, timeline, poll_s=POLL_S, mapping=README.__getitem__,
                          settle_s=0.5)  # fmt: skip
    finally:
        src.close()
    # Queries go out every 2 * query_s at most and one at a time, hence the longer latency.
    out.assert_tracks(2 * QUERY_S + LATENCY_S, LOST_S)
    assert after_busy == [0]  # 1.2 s busy > timeout_s, yet no timeout
    assert src.counters["timeouts"] >= 1  # 1 s of silence is one
    assert src.counters["busy"] >= 4
    assert "M155 S1" not in marlin.commands
    assert marlin.commands.count("M105") >= 5 and marlin.commands.count("M27") >= 5


def test_a_print_paused_too_long_is_abandoned(marlin: MarlinDevice) -> None:
    src = source(marlin.path, paused_max_s=0.5)
    try:
        timeline = [(0.2, marlin.start_print), (0.5, marlin.pause), (1.6, lambda: None)]
        out = run_against(src, marlin, timeline, poll_s=POLL_S, settle_s=0.3)
    finally:
        src.close()
    assert [(e.type, e.data.get("reason")) for e in out.events] == [
        ("job_start", None),
        ("job_end", "abandoned"),
    ]
    assert [state for _, state in out.seen][-1] == "idle"  # a print stopped from the menu


@pytest.mark.parametrize(
    "options,key",
    [
        ({}, "agent.options.port"),
        ({"port": "/dev/null", "autoreport_s": 0.5}, "agent.options.autoreport_s"),
        ({"port": "/dev/null", "query_s": 1, "timeout_s": 1}, "agent.options.timeout_s"),
    ],
)
def test_config_errors_name_the_key(options: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        MarlinSource(AgentConfig(options=options))
    assert err.value.key == key
