"""Mosquitto SIGKILLed mid-stream, with the persistence labmeter ships and the default collector.

The shipped broker saves its store every ``autosave_interval`` (60 s): what it acknowledged
since its last save and had not yet handed to the collector dies with it, and its restart
drops the collector's shared subscription (Mosquitto 2.0.11). Agents keep every row until the
collector confirms it is written, and send again on every connection what is not confirmed,
so what the broker lost comes back and lands on the same InfluxDB points. Real agents' queue
and publisher (``simulators/fleet.py``), the real collector (its default: one worker per
core on a shared subscription), Mosquitto and InfluxDB.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from labmeter.config import MqttConfig
from labmeter.influx import InfluxV1
from labmeter.localstack import Service
from labmeter.simulators.fleet import Fleet, run_in_background
from tests.collector.harness import count_points
from tests.e2e.conftest import confirmed_fleet, default_collector, exactly_once, saved

pytestmark = pytest.mark.e2e

AGENTS, SAMPLES, STREAM_S = 6, 100, 20.0  # publishing on well after the broker is back


@pytest.mark.parametrize("collector_away", [False, True], ids=["collector-running", "away"])
def test_a_broker_killed_mid_stream_loses_no_sample(
    collector_away: bool, shipped_broker: Service, influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    """Away: the collector stopped a while before the crash (restarting, or held back by a
    slow InfluxDB), so the broker held the stream for it in memory, and lost it."""
    collector = default_collector(tmp_path, shipped_broker, influx, uid)
    collector.start()
    saved(shipped_broker)
    fleet = confirmed_fleet(shipped_broker, uid, AGENTS, tmp_path / "agents")
    try:
        stream = run_in_background(fleet, SAMPLES, STREAM_S)
        time.sleep(STREAM_S / 4)
        if collector_away:
            collector.stop()
            time.sleep(STREAM_S / 4)
        held = fleet.published - count_points(influx)
        shipped_broker.stop(signal.SIGKILL)  # no save on the way out
        time.sleep(1.0)
        shipped_broker.start()
        if collector_away:
            collector.start()
        stream.join(STREAM_S * 3)
        assert fleet.made == SAMPLES + 1
        assert held > 0 or not collector_away  # away, the broker held the stream when killed
        # Queues empty means every row confirmed, and a row is confirmed once written.
        assert fleet.drain(90)
        exactly_once(influx, fleet)
        assert fleet.resent > 0 or not collector_away  # what the broker lost came again
        assert collector.dead_letters() == []
    finally:
        fleet.close()
        collector.stop()


def test_without_confirmations_the_same_crash_loses_samples(
    shipped_broker: Service, influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    """The control: a collector that does not confirm (``confirm = false``, as one older than
    confirmations) leaves agents with the broker's PUBACK alone, and the crash loses what
    the broker held: the test above can tell the two apart."""
    collector = default_collector(tmp_path, shipped_broker, influx, uid, "confirm = false\n")
    collector.start()
    saved(shipped_broker)
    mqtt = MqttConfig(url=f"mqtt://127.0.0.1:{shipped_broker.port}")
    fleet = Fleet(mqtt, uid, AGENTS, tmp_path / "agents")
    try:
        stream = run_in_background(fleet, SAMPLES, STREAM_S)
        time.sleep(STREAM_S / 4)
        collector.stop()
        time.sleep(STREAM_S / 4)
        shipped_broker.stop(signal.SIGKILL)
        time.sleep(1.0)
        shipped_broker.start()
        collector.start()
        stream.join(STREAM_S * 3)
        assert fleet.drain(30)  # PUBACKs delete rows: the queues empty all the same
        time.sleep(5)  # all that will come has come: the collector keeps pace again
        assert count_points(influx) < AGENTS * fleet.made
        assert not any(q.confirmed_by_collector for q in fleet.queues)
    finally:
        fleet.close()
        collector.stop()
