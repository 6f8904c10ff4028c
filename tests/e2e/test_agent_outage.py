"""The real agent process through a broker outage and a SIGKILL, into real InfluxDB.

The broker is down for ``LABMETER_TEST_OUTAGE_S`` seconds (default 120, as the issue asks);
halfway through, the agent is killed with SIGKILL and started again on the same queue file.
Every sample must reach InfluxDB exactly once: ``seq`` (persisted with the queue) has no gap
and no repeat, and the samples' intervals tile time without overlap.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labmeter.agent.queue import DurableQueue
from labmeter.collector.service import Collector
from labmeter.config import Config, MqttConfig
from labmeter.influx import InfluxV1
from labmeter.localstack import Service, mosquitto
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

OUTAGE_S = float(os.environ.get("LABMETER_TEST_OUTAGE_S", "120"))


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Service]:
    # As root, mosquitto would drop to its own user and could not save its persistence file
    # (the collector's session) into pytest's private temp dir.
    service = mosquitto(tmp_path / "mosquitto")
    service.start()
    yield service
    service.stop()


def samples(influx: InfluxV1, site: str) -> list[tuple[int, int, float]]:
    """(interval start ms, seq, interval_s) of every sample point of the site."""
    rows = influx.query(f"SELECT seq, interval_s FROM sample WHERE site = '{site}'")
    return [(int(t), int(seq), float(i)) for t, seq, i in rows[0].values] if rows else []


def test_outage_and_sigkill_lose_and_duplicate_no_sample(
    config: Config, influx: InfluxV1, uid: str, own_broker: Service, tmp_path: Path
) -> None:
    config = dataclasses.replace(config, mqtt=MqttConfig(url=f"mqtt://127.0.0.1:{own_broker.port}"))
    toml = tmp_path / "agent.toml"
    toml.write_text(
        f"""
[mqtt]
url = "{config.mqtt.url}"
[agent]
site = "{uid}"
lab = "lab"
device = "pc-1"
interval_s = 1
poll_s = 0.25
idle_threshold_s = 1
pseudonym_secret = "a-test-secret-of-enough-length"
queue_path = "{tmp_path / "queue.db"}"
"""
    )
    cmd = [str(Path(sys.executable).parent / "labmeter"), "agent", "-c", str(toml)]
    collector = Collector(config, influx)
    collector.start()
    agent = subprocess.Popen(cmd)
    try:
        wait_for(lambda: len(samples(influx, uid)) >= 3, timeout=30)
        own_broker.stop()
        time.sleep(OUTAGE_S / 2)
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        agent = subprocess.Popen(cmd)
        time.sleep(OUTAGE_S / 2)
        own_broker.start()

        def restarted() -> bool:
            # The second run's agent_start is queued behind the first run's backlog.
            rows = influx.query(
                f"SELECT count(seq) FROM event WHERE site = '{uid}' AND type = 'agent_start'"
            )
            return bool(rows) and rows[0].values[0][1] == 2

        wait_for(restarted, timeout=90)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(30) == 0

        # The agent stopped: its queue file tells how many samples it ever made.
        ledger = DurableQueue(tmp_path / "queue.db")
        made, left = ledger.counter("sample_seq"), len(ledger)
        ledger.close()
        assert left == 0  # everything was acknowledged before the agent stopped
        wait_for(lambda: len(samples(influx, uid)) >= made, timeout=60)
    finally:
        if agent.poll() is None:
            agent.kill()
        collector.stop()
    rows = samples(influx, uid)
    seqs = sorted(r[1] for r in rows)
    assert seqs == list(range(made))  # none lost, none twice
    # Both runs' samples while the broker was down came through: about one per second.
    assert len(seqs) >= OUTAGE_S * 0.8
    # Intervals (stamped at their start) tile time: no second is counted twice.
    spans = sorted((start, start + round(interval * 1000)) for start, _, interval in rows)
    assert all(end <= nxt for (_, end), (nxt, _) in itertools.pairwise(spans))
    assert sum(collector.dead_letters.counts.values()) == 0
