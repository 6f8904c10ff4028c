"""Write-error policy against real HTTP: InfluxDB 1.6's own 400/404, a proxy's 413/429/503/401."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime

import httpx
import pytest

from labmeter.collector.service import Collector
from labmeter.config import Config, InfluxConfig
from labmeter.contract import Event, Sample, Topic, encode
from labmeter.influx import InfluxV1
from labmeter.localstack import Service
from tests.collector.harness import count_points
from tests.collector.proxy import influx_proxy
from tests.helpers import publish_raw, wait_for


def _now_minute() -> int:
    now = int(time.time() * 1000)
    return now - now % 60_000


def _samples(uid: str, n: int, end_ms: int) -> list[tuple[str, bytes]]:
    """``n`` distinct samples on 5 devices, the last ending at ``end_ms``."""
    out = []
    for i in range(n):
        topic = Topic(uid, "lab-a", f"pc-{i % 5}", "sample")
        sample = Sample(end_ms - (i // 5) * 60_000, i, 60.0, {"in_use": 60.0}, "school")
        out.append((str(topic), encode(sample)))
    return out


def _event(uid: str, ts: int, code: int | str) -> tuple[str, bytes]:
    topic = Topic(uid, "lab-a", "cnc-01", "event")
    return str(topic), encode(Event(ts, 1, "alarm", "staff", data={"code": code}))


@contextmanager
def running(config: Config, writer: InfluxV1, **collector: object) -> Iterator[Collector]:
    cfg = dataclasses.replace(config, collector=dataclasses.replace(config.collector, **collector))
    service = Collector(cfg, writer)
    service.start()
    assert service.connected.wait(10)
    time.sleep(0.2)  # let the SUBSCRIBE land
    try:
        yield service
    finally:
        service.stop()


def _publish(config: Config, messages: list[tuple[str, bytes]]) -> None:
    publish_raw(config.mqtt.host, config.mqtt.port, messages)


def _influxd_now_ms(url: str) -> int:
    """influxd's own clock (its HTTP Date header): it keeps the real one when the tests run
    under ``scripts/at-clock.sh``, and its retention policies follow it."""
    return int(parsedate_to_datetime(httpx.get(f"{url}/ping").headers["Date"]).timestamp() * 1000)


def test_400_bisects_down_to_the_refused_lines(config: Config, influx: InfluxV1, uid: str) -> None:
    db = config.influx.database
    now = _now_minute()
    theirs = _influxd_now_ms(config.influx.url)
    # Two hours of retention by influxd's clock, plus however far ours lags behind it, so
    # that samples of our "now" are inside it and one five hours before that is not.
    hours = 2 + -(-max(0, theirs - now) // 3_600_000)
    influx.query(
        f'CREATE RETENTION POLICY "short" ON "{db}" DURATION {hours}h REPLICATION 1 DEFAULT'
    )
    old = min(now, theirs) - (hours + 3) * 3_600_000
    with running(config, influx, batch_interval_s=1.0) as collector:
        _publish(config, [_event(uid, now - 5000, 5)])  # d_code is an integer from now on
        wait_for(lambda: collector.metrics.acked == 1)
        conflict = _event(uid, now - 4000, "E-17")  # InfluxDB: field type conflict
        too_old = _samples(uid, 1, old)[0]  # beyond the retention policy
        good = _samples(uid, 300, now)
        _publish(config, [*good[:150], conflict, too_old, *good[150:]])
        wait_for(lambda: collector.metrics.acked == 303)
    assert count_points(influx) == 300
    assert collector.dead_letters.counts == {"write_rejected": 2}
    assert collector.metrics.write_errors(400) >= 2
    records = collector.dead_letters.path.read_text().splitlines()
    assert any("field type conflict" in r and "E-17" in r for r in records)
    assert any("beyond retention policy" in r and "sample," in r for r in records)


def test_404_database_missing_holds_and_reports_then_writes(
    config: Config, influx_server: Service, uid: str
) -> None:
    missing = dataclasses.replace(config.influx, database=f"{uid}_later".replace("-", "_"))
    config = dataclasses.replace(config, influx=missing)
    influx = InfluxV1(missing)
    try:
        with running(config, influx, metrics_port=0) as collector:
            assert collector.health is not None
            healthz = f"http://127.0.0.1:{collector.health.port}/healthz"
            _publish(config, _samples(uid, 20, _now_minute()))
            wait_for(lambda: collector.metrics.write_errors(404) >= 2)
            reply = httpx.get(healthz)
            assert reply.status_code == 503 and "404" in reply.text
            assert collector.metrics.acked == 0  # held in the broker, not dropped
            influx.create_database()
            wait_for(lambda: collector.metrics.acked == 20, timeout=30)
            assert httpx.get(healthz).status_code == 200
        assert count_points(influx) == 20
        assert not collector.dead_letters.counts
    finally:
        influx.query(f'DROP DATABASE "{missing.database}"')
        influx.close()


def _via_proxy(config: Config, url: str) -> tuple[Config, InfluxV1]:
    cfg = dataclasses.replace(config, influx=InfluxConfig(url=url, database=config.influx.database))
    return cfg, InfluxV1(cfg.influx)


def test_413_splits_the_batch(config: Config, influx: InfluxV1, uid: str) -> None:
    with influx_proxy(config.influx.url) as proxy:
        proxy.rule = lambda lines: (413, {}) if lines > 40 else None
        cfg, writer = _via_proxy(config, proxy.url)
        with running(cfg, writer, batch_interval_s=1.0) as collector:
            _publish(cfg, _samples(uid, 300, _now_minute()))
            wait_for(lambda: collector.metrics.acked == 300)
    assert count_points(influx) == 300
    assert any(w.status == 413 for w in proxy.writes)
    assert all(w.lines <= 40 for w in proxy.writes if w.status == 204)
    assert not collector.dead_letters.counts


def test_429_waits_as_long_as_retry_after_says(config: Config, influx: InfluxV1, uid: str) -> None:
    with influx_proxy(config.influx.url) as proxy:
        proxy.fail_next(1, 429, {"Retry-After": "2"})
        cfg, writer = _via_proxy(config, proxy.url)
        with running(cfg, writer) as collector:
            _publish(cfg, _samples(uid, 10, _now_minute()))
            wait_for(lambda: collector.metrics.acked == 10)
    first, second = proxy.writes[:2]
    assert (first.status, second.status) == (429, 204)
    assert second.at - first.at >= 2.0
    assert count_points(influx) == 10


def test_503_backs_off_and_retries(config: Config, influx: InfluxV1, uid: str) -> None:
    with influx_proxy(config.influx.url) as proxy:
        proxy.fail_next(3, 503)
        cfg, writer = _via_proxy(config, proxy.url)
        with running(cfg, writer) as collector:
            _publish(cfg, _samples(uid, 10, _now_minute()))
            wait_for(lambda: collector.metrics.acked == 10, timeout=20)
    assert [w.status for w in proxy.writes[:4]] == [503, 503, 503, 204]
    gaps = [b.at - a.at for a, b in zip(proxy.writes, proxy.writes[1:4], strict=False)]
    assert min(gaps) >= 0.19  # backing off (0.4 s x jitter 0.5-1, doubling), not hammering
    assert collector.metrics.write_errors(503) == 3
    assert count_points(influx) == 10 and not collector.dead_letters.counts


def test_401_holds_and_reports_never_drops(config: Config, influx: InfluxV1, uid: str) -> None:
    with influx_proxy(config.influx.url) as proxy:
        proxy.fail_next(3, 401)
        cfg, writer = _via_proxy(config, proxy.url)
        with running(cfg, writer, metrics_port=0) as collector:
            assert collector.health is not None
            base = f"http://127.0.0.1:{collector.health.port}"
            _publish(cfg, _samples(uid, 10, _now_minute()))
            wait_for(lambda: collector.metrics.write_errors(401) >= 1)
            reply = httpx.get(f"{base}/healthz")
            assert reply.status_code == 503 and "401" in reply.text
            assert "labmeter_collector_write_held 1.0" in httpx.get(f"{base}/metrics").text
            wait_for(lambda: collector.metrics.acked == 10, timeout=30)
            assert httpx.get(f"{base}/healthz").status_code == 200
    assert count_points(influx) == 10 and not collector.dead_letters.counts


def test_graceful_shutdown_drains_and_acks(config: Config, influx: InfluxV1, uid: str) -> None:
    with running(config, influx, batch_interval_s=60.0, batch_linger_s=60.0) as collector:
        _publish(config, _samples(uid, 50, _now_minute()))
        wait_for(lambda: collector.metrics.received == 50)
        assert count_points(influx) == 0  # still batching
    assert count_points(influx) == 50
    assert collector.metrics.acked == 50
    # Acked means gone from the broker: the same session gets nothing back.
    with running(config, influx) as again:
        time.sleep(1.0)
        assert again.metrics.received == 0


def test_stop_gives_up_a_write_it_cannot_make_within_the_drain_budget(
    config: Config, influx: InfluxV1, uid: str, caplog: pytest.LogCaptureFixture
) -> None:
    """InfluxDB gone at shutdown (a Ctrl-C to the demo's process group): the collector stops
    within its budget with one log line; the messages stay unacked for the next start."""
    with influx_proxy(config.influx.url) as proxy:
        proxy.rule = lambda _lines: (503, {})
        cfg, writer = _via_proxy(config, proxy.url)
        collector = Collector(cfg, writer)
        collector.start()
        assert collector.connected.wait(10)
        time.sleep(0.2)
        _publish(cfg, _samples(uid, 10, _now_minute()))
        wait_for(lambda: collector.metrics.write_errors(503) >= 2)
        caplog.clear()
        started = time.monotonic()
        collector.stop(drain_timeout=2.0)
        assert time.monotonic() - started < 4.0
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in records] == [
        "stopping: InfluxDB did not take the last writes within the drain budget; "
        "10 messages stay unacked in the broker for the next start"
    ]
    assert collector.metrics.acked == 0
    with running(config, influx) as again:  # the same session: the broker kept them
        wait_for(lambda: again.metrics.acked == 10)
    assert count_points(influx) == 10
