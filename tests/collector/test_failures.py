"""Nothing lost, nothing doubled: the collector (a child process) through crashes and restarts.

Each test publishes 3,000 distinct QoS 1 samples over a few seconds while something fails,
then checks that InfluxDB holds exactly 3,000 distinct points with the published values.
Real Mosquitto (persistence on) and real InfluxDB throughout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labmeter.config import InfluxConfig
from labmeter.influx import InfluxV1
from labmeter.localstack import Service, influxd, mosquitto, wait_influx_ready
from tests.collector.harness import (
    HOUR_MS,
    CollectorProcess,
    Publisher,
    count_points,
    samples,
    sum_in_use,
)
from tests.helpers import wait_for

pytestmark = pytest.mark.failure

N = 3000
STREAM_S = 6.0


def _hour() -> int:
    now = int(time.time() * 1000)
    return now - now % HOUR_MS - 3 * HOUR_MS


def _stream(port: int, uid: str) -> tuple[Publisher, float]:
    messages = samples(uid, N, _hour())
    publisher = Publisher(port, messages, STREAM_S, f"pub-{uid}")
    publisher.start()
    return publisher, sum(m[2] for m in messages)


def _check_exact(publisher: Publisher, influx: InfluxV1, expected_in_use: float) -> None:
    assert publisher.done.wait(120)
    assert publisher.failures == []
    wait_for(lambda: count_points(influx) == N, timeout=60, interval=0.5)
    assert sum_in_use(influx) == pytest.approx(expected_in_use)


@pytest.fixture
def own_influx(tmp_path: Path) -> Iterator[Service]:
    service = influxd(tmp_path / "influxd")
    service.start()
    wait_influx_ready(f"http://127.0.0.1:{service.port}")
    yield service
    service.stop()


def _collector(broker: Service, influx: InfluxV1, uid: str, tmp_path: Path) -> CollectorProcess:
    """A started collector process on the shared broker and database."""
    proc = CollectorProcess(
        tmp_path / "c",
        mqtt_port=broker.port,
        influx_url=influx.config.url,
        database=influx.config.database,
        client_id=f"col-{uid}",
        site=uid,
    )
    proc.start()
    return proc


def test_sigkill_mid_stream_loses_nothing(
    broker: Service, influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    proc = _collector(broker, influx, uid, tmp_path)
    try:
        publisher, in_use = _stream(broker.port, uid)
        time.sleep(STREAM_S / 3)
        proc.kill()
        assert 0 < count_points(influx) < N  # it died mid-stream, with work in flight
        time.sleep(1.0)
        proc.start()
        _check_exact(publisher, influx, in_use)
        assert proc.dead_letters() == []
    finally:
        proc.stop()


def test_influxdb_down_30s_mid_stream_loses_nothing(
    broker: Service, own_influx: Service, uid: str, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{own_influx.port}"
    influx = InfluxV1(InfluxConfig(url=url, database="failures"))
    influx.create_database()
    proc = CollectorProcess(
        tmp_path / "c",
        mqtt_port=broker.port,
        influx_url=url,
        database="failures",
        client_id=f"col-{uid}",
        site=uid,
    )
    proc.start()
    try:
        publisher, in_use = _stream(broker.port, uid)
        time.sleep(STREAM_S / 3)
        own_influx.stop()
        down_at = time.monotonic()
        wait_for(lambda: proc.metric("labmeter_collector_write_errors_total", {"status": "0"}))
        assert proc.metric("labmeter_collector_unacked") > 0  # held, not dropped
        time.sleep(max(0.0, 30.0 - (time.monotonic() - down_at)))
        own_influx.start()
        wait_influx_ready(url)
        _check_exact(publisher, influx, in_use)
        assert proc.dead_letters() == []
        wait_for(lambda: proc.metric("labmeter_collector_unacked") == 0)
    finally:
        proc.stop()
        influx.close()


def test_broker_restart_mid_stream_loses_nothing(
    influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    broker = mosquitto(tmp_path / "mosquitto")
    broker.start()
    proc = CollectorProcess(
        tmp_path / "c",
        mqtt_port=broker.port,
        influx_url=influx.config.url,
        database=influx.config.database,
        client_id=f"col-{uid}",
        site=uid,
    )
    try:
        proc.start()
        publisher, in_use = _stream(broker.port, uid)
        time.sleep(STREAM_S / 3)
        broker.stop()  # SIGTERM: mosquitto saves its persistence file on the way out
        assert count_points(influx) < N
        time.sleep(1.0)
        broker.start()  # same port, same persistence directory
        _check_exact(publisher, influx, in_use)
        assert proc.dead_letters() == []
    finally:
        proc.stop()
        broker.stop()
