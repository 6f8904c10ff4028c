"""The collector against real Mosquitto and real InfluxDB: bad input never stops it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from labmeter.collector.service import Collector
from labmeter.config import Config
from labmeter.contract import Sample, Topic, encode
from labmeter.influx import InfluxV1
from tests.helpers import publish_raw, wait_for


@pytest.fixture
def collector(config: Config, influx: InfluxV1) -> Iterator[Collector]:
    service = Collector(config, influx)
    service.start()
    assert service.connected.wait(10)
    time.sleep(0.2)  # let the SUBSCRIBE land before tests publish
    yield service
    service.stop()


def count_samples(influx: InfluxV1) -> int:
    rows = influx.query("SELECT count(seq) FROM sample")
    return int(rows[0].values[0][1]) if rows else 0


def test_bad_messages_go_to_dead_letters_and_consuming_goes_on(
    config: Config, influx: InfluxV1, collector: Collector, uid: str
) -> None:
    now = int(time.time() * 1000)
    good = Topic(uid, "lab-cad", "pc-01", "sample")
    valid = Sample(now, 1, 60.0, {"in_use": 30.0, "idle": 30.0}, "school", kind="pc", state="idle")
    wrong_type = orjson.dumps({**valid.to_json(), "interval_s": "sixty"})
    oversized = orjson.dumps({**valid.to_json(), "metrics": {"cpu_pct": 1.0}}) + b" " * 70_000
    publish_raw(
        config.mqtt.host,
        config.mqtt.port,
        [
            (str(good), b"{not json"),
            (str(good), wrong_type),
            (str(good), oversized),
            (f"labmeter/v1/{uid}/Lab CAD/pc-01/sample", encode(valid)),
            (str(good), encode(valid)),
        ],
    )
    wait_for(lambda: count_samples(influx) == 1)
    wait_for(lambda: sum(collector.dead_letters.counts.values()) == 4)
    assert collector.dead_letters.counts == {
        "not_json": 1,
        "field_type": 1,
        "oversized": 1,
        "topic_invalid": 1,
    }
    wait_for(lambda: collector.metrics.acked == 5)
    raw = Path(config.collector.dead_letter_path).read_bytes()
    records = [orjson.loads(line) for line in raw.splitlines()]
    assert [r["reason"] for r in records] == [
        "not_json",
        "field_type",
        "oversized",
        "topic_invalid",
    ]
    assert all(r["detail"] for r in records[1:])
    assert records[2]["size"] > 70_000 and len(records[2]["payload"]) <= 4096

    # Still consuming after all that:
    later = Sample(now + 60_000, 2, 60.0, {"in_use": 60.0}, "company", kind="pc", state="in_use")
    publish_raw(config.mqtt.host, config.mqtt.port, [(str(good), encode(later))])
    wait_for(lambda: count_samples(influx) == 2)


def test_replayed_sample_is_not_counted_twice(
    config: Config, influx: InfluxV1, collector: Collector, uid: str
) -> None:
    now = int(time.time() * 1000) // 60_000 * 60_000
    topic = str(Topic(uid, "lab-fab", "cnc-01", "sample"))
    sample = Sample(
        now, 7, 60.0, {"in_use": 45.0, "setup": 15.0}, "company", kind="cnc", state="in_use"
    )
    publish_raw(config.mqtt.host, config.mqtt.port, [(topic, encode(sample))] * 3)
    wait_for(lambda: collector.metrics.acked == 3)
    rows = influx.query("SELECT sum(in_use_s), count(seq) FROM sample")
    assert rows[0].values[0][1:] == [45.0, 1]
    # Stamped at the start of the interval, so it falls inside its own minute.
    assert rows[0].values[0][0] == 0
    start = influx.query("SELECT in_use_s FROM sample")[0].values[0][0]
    assert start == now - 60_000
