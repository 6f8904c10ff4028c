"""The whole agent (runner, meter, publisher) on a GRBL pty, through a real Mosquitto."""

import dataclasses
import threading
import time
from collections import defaultdict
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from labmeter.agent.runner import run_agent
from labmeter.config import AgentConfig, Config
from labmeter.contract import Sample, decode
from labmeter.simulators.devices.grbl import GrblDevice
from tests.agent.sources.harness import SLACK_S, seconds
from tests.agent.sources.test_grbl_source import LOST_S, mapping
from tests.helpers import wait_for

POLL_S = 0.1  # the runner's own poll period


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def last_state(message: tuple[str, bytes]) -> str | None:
    sample = decode(*message, now_ms()).payload
    return sample.state if isinstance(sample, Sample) else None


@pytest.mark.e2e
def test_published_seconds_match_the_controllers_timeline(
    config: Config, uid: str, tmp_path: Path
) -> None:
    grbl = GrblDevice(tmp_path / "ttyGRBL").start()
    messages: list[tuple[str, bytes]] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_message = lambda client, userdata, msg: messages.append((msg.topic, msg.payload))
    sub.connect(config.mqtt.host, config.mqtt.port)
    sub.subscribe(f"labmeter/v1/{uid}/+/+/sample", qos=1)
    sub.loop_start()
    agent = AgentConfig(
        site=uid, lab="lab-cnc", device="cnc-1", kind="cnc", source="grbl", interval_s=1,
        poll_s=POLL_S, pseudonym_secret="s" * 16, queue_path=str(tmp_path / "queue.db"),
        options={"port": grbl.path, "status_timeout_s": 0.4, "reconnect_s": 0.1},
    )  # fmt: skip
    stop = threading.Event()
    runner = threading.Thread(
        target=run_agent, args=(dataclasses.replace(config, agent=agent), stop)
    )
    try:
        time.sleep(0.3)  # the subscription is in place before the agent starts
        runner.start()
        grbl.run(
            [
                (0.8, lambda: grbl.set_state("Run")),
                (2.0, lambda: grbl.set_state("Hold:0")),
                (2.6, lambda: grbl.set_state("Run")),
                (3.2, lambda: grbl.reset("Alarm")),
                (4.2, lambda: grbl.set_state("Idle")),
                (4.8, lambda: None),
            ]
        )
        stop.set()
        runner.join(timeout=10)
        wait_for(lambda: messages and last_state(messages[-1]) == "idle", 10)
    finally:
        stop.set()
        sub.loop_stop()
        sub.disconnect()
        grbl.stop()
    samples = [decode(topic, payload, now_ms()).payload for topic, payload in messages]
    assert all(isinstance(s, Sample) for s in samples) and len(samples) >= 5
    published: dict[str, float] = defaultdict(float)
    for sample in samples:
        assert isinstance(sample, Sample)
        for state, secs in sample.state_s.items():
            published[state] += secs
    first = samples[0]
    assert isinstance(first, Sample)
    start = first.ts - round(first.interval_s * 1000)
    end = max(s.ts for s in samples if isinstance(s, Sample))
    timeline = [(t, mapping(s) if s else None) for t, s in grbl.truth]
    truth = seconds(timeline, start, end)
    # Each change may be seen late by up to a query period plus a poll (a reset or silence:
    # by up to its boot time or timeout), moving that much between the two states it touches.
    budget: dict[str, float] = defaultdict(float)
    for (t, state), (_, before) in zip(timeline[1:], timeline, strict=False):
        if start < t < end and state != before:
            late = LOST_S if state is None else 1 / 5 + POLL_S + SLACK_S
            budget[state or "unknown"] += late
            budget[before or "unknown"] += late
    for state in (set(truth) | set(published)) - {"unknown"}:
        got, want = published.get(state, 0.0), truth.get(state, 0.0)
        assert abs(got - want) <= budget[state], (state, dict(published), truth)
    assert truth["in_use"] == pytest.approx(1.8, abs=0.2)  # the timeline did play
    assert truth["unknown"] > 0.2 and published.keys() <= {"idle", "in_use", "paused", "alarm"}
