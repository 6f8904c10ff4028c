"""Real Mosquitto and InfluxDB for the whole test session, on free loopback ports.

Tests isolate themselves by site segment (MQTT) and database name (InfluxDB), never by mocks.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labmeter.config import CollectorConfig, Config, InfluxConfig, MqttConfig
from labmeter.influx import InfluxV1
from labmeter.localstack import Service, influxd, mosquitto, wait_influx_ready

_ids = itertools.count()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = mosquitto(tmp_path_factory.mktemp("mosquitto"))
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def influx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = influxd(tmp_path_factory.mktemp("influxd"))
    service.start()
    wait_influx_ready(f"http://127.0.0.1:{service.port}")
    yield service
    service.stop()


@pytest.fixture
def uid(request: pytest.FixtureRequest) -> str:
    """A short name unique to this test: its site segment and database name."""
    return f"t{next(_ids)}-{int(time.time() * 1000) % 10**8}"


@pytest.fixture
def config(broker: Service, influx_server: Service, uid: str, tmp_path: Path) -> Config:
    return Config(
        mqtt=MqttConfig(url=f"mqtt://127.0.0.1:{broker.port}"),
        influx=InfluxConfig(
            url=f"http://127.0.0.1:{influx_server.port}", database=uid.replace("-", "_")
        ),
        collector=CollectorConfig(
            client_id=f"collector-{uid}",
            site=uid,
            dead_letter_path=str(tmp_path / "deadletters.jsonl"),
            session_expiry_s=60,
            batch_interval_s=0.2,
            confirm_interval_s=0.5,
        ),
    )


@pytest.fixture
def influx(config: Config) -> Iterator[InfluxV1]:
    client = InfluxV1(config.influx)
    client.create_database()
    yield client
    client.query(f'DROP DATABASE "{config.influx.database}"')
    client.close()
