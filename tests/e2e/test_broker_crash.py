"""Mosquitto SIGKILLed mid-stream, with the persistence settings labmeter ships.

The shipped broker saves its store every ``autosave_interval`` (60 s): what it acknowledged
since its last save and had not yet handed to the collector dies with it. Agents keep a tail
of acknowledged rows (``replay_s``) and send it again on every connection, so what the broker
lost comes back; the replays land on the same InfluxDB points. Real agents' queue and
publisher (``simulators/fleet.py``), real collector process, Mosquitto and InfluxDB.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labmeter.config import MqttConfig
from labmeter.influx import InfluxV1
from labmeter.localstack import Service, mosquitto
from labmeter.simulators.fleet import Fleet, run_in_background, shipped_persistence
from tests.collector.harness import CollectorProcess, count_points
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

AGENTS, SAMPLES, STREAM_S = 6, 150, 9.0


@pytest.fixture
def shipped_broker(tmp_path: Path) -> Iterator[Service]:
    shipped = shipped_persistence()
    assert "autosave_interval 60" in shipped  # the setting whose consequence is tested here
    service = mosquitto(tmp_path / "mosquitto", extra_conf=shipped)
    service.start()
    yield service
    service.stop(signal.SIGKILL)


@pytest.mark.parametrize(("replay_s", "loses"), [(300.0, False), (0.0, True)])
def test_a_broker_killed_mid_stream_loses_no_sample(
    replay_s: float,
    loses: bool,
    shipped_broker: Service,
    influx: InfluxV1,
    uid: str,
    tmp_path: Path,
) -> None:
    """With the tail every sample is in InfluxDB exactly once; without it (``replay_s = 0``)
    the same crash loses what the broker held unsaved: the test can tell the two apart."""
    collector = CollectorProcess(
        tmp_path / "collector",
        mqtt_port=shipped_broker.port,
        influx_url=influx.config.url,
        database=influx.config.database,
        client_id=f"col-{uid}",
        site=uid,
    )
    collector.start()
    assert shipped_broker.proc is not None
    # A broker that has run for a while has saved the collector's session (its subscription):
    # SIGUSR1 makes mosquitto write its store now, as an autosave would have.
    shipped_broker.proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: (shipped_broker.workdir / "mosquitto.db").exists(), timeout=10)
    mqtt = MqttConfig(url=f"mqtt://127.0.0.1:{shipped_broker.port}")
    fleet = Fleet(mqtt, uid, AGENTS, tmp_path / "agents", replay_s=replay_s)
    try:
        stream = run_in_background(fleet, SAMPLES, STREAM_S)
        time.sleep(STREAM_S / 4)
        collector.stop()  # restarting, or slow: the broker holds the stream for it, in memory
        time.sleep(STREAM_S / 4)
        held = fleet.published - count_points(influx)
        shipped_broker.stop(signal.SIGKILL)  # no save on the way out
        time.sleep(1.0)
        shipped_broker.start()
        collector.start()
        stream.join(STREAM_S * 3)
        assert fleet.drain(60)
        expected = AGENTS * SAMPLES
        assert fleet.published == expected and held > 0
        if loses:
            time.sleep(5)  # all that will come has come: the collector keeps pace again
            assert count_points(influx) < expected
            return
        wait_for(lambda: count_points(influx) >= expected, timeout=60, interval=0.5)
        assert fleet.replayed > 0
        time.sleep(1.0)  # a duplicate would be a second point only if it landed elsewhere
        assert count_points(influx) == expected
        rows = influx.query("SELECT count(seq) FROM sample GROUP BY device")
        assert sorted(r.values[0][1] for r in rows) == [SAMPLES] * AGENTS
        assert collector.dead_letters() == []
    finally:
        fleet.close()
        collector.stop()
