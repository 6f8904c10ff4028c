"""An agent's row leaves its queue when the collector confirms it, not when the broker has it.

The agent's real queue and publisher, a real Mosquitto of the test's own (some with a session
queue of 5 messages, so that the broker drops rows silently and PUBACKs them, as a full queue
does), the collector in this process and a real InfluxDB. Row ``r`` of a queue is the sample
of seq ``r - 1``, so InfluxDB says which rows are written.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from labmeter.agent.publisher import Publisher
from labmeter.agent.queue import DurableQueue
from labmeter.collector.service import Collector
from labmeter.config import Config, MqttConfig
from labmeter.contract import Sample, Topic, encode
from labmeter.influx import InfluxV1
from labmeter.localstack import Service, mosquitto
from tests.helpers import wait_for

HOUR_MS = 3_600_000
RESEND_S = 2.0


@pytest.fixture
def small_broker(tmp_path: Path) -> Iterator[Service]:
    """A broker that queues 5 messages at most for an offline session and drops the rest."""
    service = mosquitto(tmp_path / "mosquitto", extra_conf="max_queued_messages 5\n")
    service.start()
    yield service
    service.stop()


class Device:
    """One device: its queue file and publisher, pumped by hand as the agent's job does."""

    def __init__(self, port: int, site: str, db: Path, client_id: str | None = None) -> None:
        self.topic = Topic(site, "lab", "pc-1", "sample")
        self.queue = DurableQueue(db)
        self.publisher = Publisher(
            MqttConfig(url=f"mqtt://127.0.0.1:{port}"),
            self.topic,
            resend_s=RESEND_S,
            client_id=client_id,
        )
        now = time.time_ns() // 1_000_000
        self.base = now - now % HOUR_MS - 6 * HOUR_MS
        self.publisher.start()
        assert self.publisher.connected.wait(10)

    def put(self, rows: range) -> list[int]:
        """Queue the samples of these rows (row r: seq r - 1); their ids, which are the rows."""
        out = []
        for row in rows:
            ts = self.base + row * 60_000
            sample = Sample(ts, row - 1, 60.0, {"in_use": 60.0}, "school")
            out.append(self.queue.put(self.topic, ts, encode(sample)))
        assert out == list(rows)
        return out

    def pump_until(self, check: Callable[[], object], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, "not within the time"
            self.publisher.pump(self.queue)
            time.sleep(0.02)

    def pump_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.publisher.pump(self.queue)
            time.sleep(0.02)

    def close(self) -> None:
        self.publisher.close(timeout=2)
        self.queue.close()


def written_rows(influx: InfluxV1) -> list[int]:
    rows = influx.query("SELECT seq FROM sample")
    return sorted(int(seq) + 1 for series in rows for _, seq in series.values)


def start_collector(config: Config, influx: InfluxV1, port: int, **settings: object) -> Collector:
    own = dataclasses.replace(
        config,
        mqtt=MqttConfig(url=f"mqtt://127.0.0.1:{port}"),
        collector=dataclasses.replace(config.collector, **settings),  # type: ignore[arg-type]
    )
    service = Collector(own, influx)
    service.start()
    assert service.connected.wait(10)
    time.sleep(0.2)  # the SUBSCRIBE lands before anything is published
    return service


def test_a_row_waits_for_its_write_not_for_the_broker(
    config: Config, influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    collector = start_collector(config, influx, config.mqtt.port)
    device = Device(config.mqtt.port, uid, tmp_path / "q.db")
    try:
        device.put(range(1, 4))
        device.pump_until(lambda: len(device.queue) == 0 and device.queue.confirmed_by_collector)
        collector.stop()  # the broker holds what comes now, in the collector's session
        device.put(range(4, 14))
        device.pump_until(lambda: device.publisher.handed_upto == 13)
        assert device.publisher.wait_acked(10)
        device.pump_for(0.5)
        assert len(device.queue) == 10  # every row PUBACKed, none written: all kept
        collector = start_collector(config, influx, config.mqtt.port)
        device.pump_until(lambda: len(device.queue) == 0)
        assert written_rows(influx) == list(range(1, 14))
        assert device.publisher.confirmed >= 10
    finally:
        device.close()
        collector.stop()


def test_rows_the_broker_dropped_are_not_covered_by_later_ones_and_come_back(
    config: Config, influx: InfluxV1, uid: str, tmp_path: Path, small_broker: Service
) -> None:
    """The trap of a 'highest written' watermark: the broker keeps rows 4-8 for the absent
    collector and drops 9-23 (PUBACKed all the same); rows 24-26 come after its return and
    are confirmed. 9-23 are still queued then, and are sent again ``resend_s`` later."""
    port = small_broker.port
    collector = start_collector(config, influx, port)
    device = Device(port, uid, tmp_path / "q.db")
    try:
        device.put(range(1, 4))
        device.pump_until(lambda: len(device.queue) == 0 and device.queue.confirmed_by_collector)
        collector.stop()
        device.put(range(4, 24))
        device.pump_until(lambda: device.publisher.handed_upto == 23)
        assert device.publisher.wait_acked(10)
        collector = start_collector(config, influx, port)
        device.put(range(24, 27))
        device.pump_until(lambda: not any(device.queue.contains(r) for r in (24, 25, 26)))
        written = set(written_rows(influx))
        dropped = set(range(1, 27)) - written
        assert len(dropped) >= 10  # the broker's queue held 5 of the 20
        assert all(device.queue.contains(row) for row in dropped)
        assert len(device.queue) == len(dropped)
        device.pump_until(lambda: len(device.queue) == 0, timeout=4 * RESEND_S + 10)
        assert device.publisher.resent >= len(dropped)
        # Every sample exactly once: rows sent twice landed on the same points.
        assert written_rows(influx) == list(range(1, 27))
    finally:
        device.close()
        collector.stop()


def test_rows_lost_with_nothing_sent_after_them_are_probed_for(
    config: Config, influx: InfluxV1, uid: str, tmp_path: Path, small_broker: Service
) -> None:
    """The broker dropped the last rows the agent sent and nothing comes after them: after
    ``resend_s`` without a confirmation the oldest goes again as a probe; its confirmation
    shows the rest lost, and they follow."""
    port = small_broker.port
    collector = start_collector(config, influx, port)
    device = Device(port, uid, tmp_path / "q.db")
    try:
        device.put(range(1, 2))
        device.pump_until(lambda: len(device.queue) == 0 and device.queue.confirmed_by_collector)
        collector.stop()
        device.put(range(2, 22))
        device.pump_until(lambda: device.publisher.handed_upto == 21)
        assert device.publisher.wait_acked(10)
        collector = start_collector(config, influx, port)
        device.pump_until(lambda: len(written_rows(influx)) >= 5)
        device.pump_until(lambda: len(device.queue) == 0, timeout=6 * RESEND_S + 10)
        assert written_rows(influx) == list(range(1, 22))
    finally:
        device.close()
        collector.stop()


def test_an_agent_whose_collector_never_confirms_deletes_on_the_broker_ack(
    config: Config, influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    """A collector that does not publish confirmations (older, or ``confirm = false``): the
    agent's queue still empties, on PUBACKs, and nothing is sent twice."""
    collector = start_collector(config, influx, config.mqtt.port, confirm=False)
    device = Device(config.mqtt.port, uid, tmp_path / "q.db")
    try:
        device.put(range(1, 21))
        device.pump_until(lambda: len(device.queue) == 0)
        wait_for(lambda: written_rows(influx) == list(range(1, 21)))
        device.pump_for(3 * RESEND_S)
        assert not device.queue.confirmed_by_collector and device.publisher.resent == 0
    finally:
        device.close()
        collector.stop()


def test_a_reinstalled_agent_takes_no_confirmation_meant_for_its_old_queue(
    config: Config, influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    """Two queue files of one device (the agent reinstalled, its old file kept): row ids
    overlap, and the retained confirmation of the old file must not delete the new one's."""
    collector = start_collector(config, influx, config.mqtt.port)
    new = Device(config.mqtt.port, uid, tmp_path / "new.db", client_id=f"new-{uid}")
    try:
        new.put(range(1, 2))
        new.pump_until(lambda: len(new.queue) == 0 and new.queue.confirmed_by_collector)
        old = Device(config.mqtt.port, uid, tmp_path / "old.db", client_id=f"old-{uid}")
        old.put(range(1, 11))
        old.pump_until(lambda: len(old.queue) == 0)  # retained now: old file, rows 1-10
        old.close()
        collector.stop()
        new.put(range(2, 11))
        new.pump_until(lambda: new.publisher.handed_upto == 10)
        new.close()
        new = Device(config.mqtt.port, uid, tmp_path / "new.db", client_id=f"new-{uid}")
        new.pump_for(1.0)  # subscribed: the retained confirmation of the old file came
        assert len(new.queue) == 9
    finally:
        new.close()
        collector.stop()
