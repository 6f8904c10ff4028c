"""A server that reboots, in every order, while agents keep publishing: every sample once.

The broker with the persistence labmeter ships, the collector as deployed with its default
workers (one per core, on a shared subscription), real agents (their durable queue and
publisher, ``simulators/fleet.py``) publishing before, during and after, and InfluxDB:

- broker first, the collector 30 s later (the ordinary boot order): Mosquitto 2.0.11 does not
  restore the collector's shared subscription of its persistent session, so what agents send
  in those 30 s is acknowledged and dropped; the collector subscribes again when it connects,
  and agents send again what no confirmation covers;
- the collector first, the broker 10 s later: the collector waits for it;
- both killed (a power cut): the broker loses what it acknowledged since its last save.

In each, InfluxDB ends with every sample exactly once, with its own values.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from labmeter.influx import InfluxV1
from labmeter.localstack import Service
from labmeter.simulators.fleet import run_in_background
from tests.e2e.conftest import confirmed_fleet, default_collector, exactly_once, saved
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

AGENTS = 6
BEFORE_S = 3.0  # agents publish this long before the server goes down
DOWN_S = 2.0  # the machine restarting
AFTER_S = 10.0  # and this long once both are back
# How long each order keeps one part down while the other is up.
GAP_S = {"broker-first": 30.0, "collector-first": 10.0, "both-killed": 0.0}


@pytest.mark.parametrize("order", list(GAP_S))
def test_a_reboot_in_any_order_loses_no_sample(
    order: str, shipped_broker: Service, influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    collector = default_collector(tmp_path, shipped_broker, influx, uid)
    collector.start()
    assert collector.workers is None  # the default: one worker per core, shared subscription
    saved(shipped_broker)
    fleet = confirmed_fleet(shipped_broker, uid, AGENTS, tmp_path / "agents")
    stream_s = BEFORE_S + DOWN_S + GAP_S[order] + AFTER_S
    samples = int(stream_s * 2)
    try:
        stream = run_in_background(fleet, samples, stream_s)
        time.sleep(BEFORE_S)
        if order == "both-killed":
            collector.kill()
            shipped_broker.stop(signal.SIGKILL)
        else:  # a clean shutdown: the collector drains, the broker saves its store
            collector.stop()
            shipped_broker.stop()
        time.sleep(DOWN_S)
        if order == "collector-first":
            collector.start(wait=False)
            time.sleep(GAP_S[order])
            shipped_broker.start()
            wait_for(collector.healthy, timeout=30)
        else:
            shipped_broker.start()
            time.sleep(GAP_S[order])
            collector.start()
        stream.join(stream_s * 2)
        assert fleet.made == samples + 1
        # Queues empty means every row confirmed, and a row is confirmed once written.
        assert fleet.drain(120)
        exactly_once(influx, fleet)
        assert collector.dead_letters() == []
    finally:
        fleet.close()
        collector.stop()
