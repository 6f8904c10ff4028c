"""A broker with the persistence labmeter ships, and the pieces of a server that reboots."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labmeter.config import MqttConfig
from labmeter.influx import InfluxV1
from labmeter.localstack import Service, mosquitto
from labmeter.simulators.fleet import Fleet, shipped_persistence
from tests.collector.harness import CollectorProcess
from tests.helpers import wait_for


@pytest.fixture
def shipped_broker(tmp_path: Path) -> Iterator[Service]:
    shipped = shipped_persistence()
    assert "autosave_interval 60" in shipped  # the setting whose consequence is tested here
    service = mosquitto(tmp_path / "mosquitto", extra_conf=shipped)
    service.start()
    yield service
    service.stop(signal.SIGKILL)


def default_collector(
    tmp_path: Path, broker: Service, influx: InfluxV1, uid: str, settings: str = ""
) -> CollectorProcess:
    """``labmeter collector`` with its default workers: one per core on a shared subscription."""
    return CollectorProcess(
        tmp_path / "collector",
        mqtt_port=broker.port,
        influx_url=influx.config.url,
        database=influx.config.database,
        client_id=f"col-{uid}",
        site=uid,
        workers=None,
        settings=settings,
    )


def saved(broker: Service) -> None:
    """What a broker that has run for a while has on disk (the collector's sessions): SIGUSR1
    makes mosquitto write its store now, as its autosave would have."""
    assert broker.proc is not None
    store = broker.workdir / "mosquitto.db"
    before = store.stat().st_mtime_ns if store.exists() else 0
    broker.proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: store.exists() and store.stat().st_mtime_ns != before, timeout=10)


def confirmed_fleet(broker: Service, uid: str, agents: int, folder: Path) -> Fleet:
    """Agents whose collector has confirmed a row each: from now on rows wait for it."""
    fleet = Fleet(MqttConfig(url=f"mqtt://127.0.0.1:{broker.port}"), uid, agents, folder)
    fleet.stream(1, 0.0)
    deadline = time.monotonic() + 30
    while not fleet.confirmed:
        assert time.monotonic() < deadline, "no confirmation from the collector"
        fleet.pump()
        time.sleep(0.05)
    return fleet


def exactly_once(influx: InfluxV1, fleet: Fleet) -> None:
    """Every sample the fleet made is in InfluxDB, once, with its own values."""
    rows = influx.query("SELECT count(seq), sum(in_use_s) FROM sample GROUP BY device")
    got = {r.tags["device"]: (r.values[0][1], r.values[0][2]) for r in rows}
    in_use = sum(float((seq * 7) % 61) for seq in range(fleet.made))
    assert got == {t.device: (fleet.made, in_use) for t in fleet.topics}
