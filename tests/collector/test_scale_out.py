"""Two collectors on one shared subscription: each message written once, rollups agree.

The collectors are child processes with rollups on (grace 0 so the test need not wait for an
hour to close). A second wave of samples lands late in the already rolled-up hour, as an
agent replaying a backlog would; the rollups must follow it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from labmeter.influx import InfluxV1
from labmeter.localstack import Service
from tests.collector.harness import HOUR_MS, CollectorProcess, Publisher, count_points, samples
from tests.helpers import wait_for

pytestmark = pytest.mark.failure

N = 3000
FIRST_WAVE = 2000  # minutes 0-39 of the hour; the late wave fills minutes 40-59


def _expected(
    messages: list[tuple[str, bytes, float]],
) -> tuple[dict[str, list[float]], dict[str, float], tuple[int, float]]:
    devices: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    apps: dict[str, float] = defaultdict(float)
    per_minute: dict[int, int] = defaultdict(int)
    running = 0.0
    for topic, payload, _ in messages:
        device = topic.split("/")[4]
        body = orjson.loads(payload)
        row = devices[device]
        row[0] += body["state_s"].get("in_use", 0.0)
        row[1] += body["state_s"].get("idle", 0.0)
        row[2] += 1
        secs = body.get("apps_s", {}).get("solidworks")
        if secs is not None:
            apps[device] += secs
            running += secs
            if secs > 0:
                per_minute[body["ts"]] += 1
    return dict(devices), dict(apps), (max(per_minute.values()), running / 3600)


def _rollups(
    influx: InfluxV1,
) -> tuple[dict[str, list[float]], dict[str, float], tuple[int, float]]:
    devices = {
        s.tags["device"]: [float(s.values[0][1]), float(s.values[0][2]), s.values[0][3]]
        for s in influx.query(
            "SELECT in_use_s, idle_s, samples FROM rollup_device_hourly GROUP BY device"
        )
    }
    apps = {
        s.tags["device"]: float(s.values[0][1])
        for s in influx.query("SELECT running_s FROM rollup_app_hourly GROUP BY device")
    }
    seats = influx.query("SELECT peak_seats, seat_hours FROM rollup_app_concurrency_hourly")
    concurrency = (seats[0].values[0][1], seats[0].values[0][2]) if seats else (0, 0.0)
    return devices, apps, concurrency


def _close(
    a: tuple[dict[str, list[float]], dict[str, float], tuple[int, float]],
    b: tuple[dict[str, list[float]], dict[str, float], tuple[int, float]],
) -> bool:
    return a[0] == b[0] and a[1] == pytest.approx(b[1]) and a[2] == pytest.approx(b[2])


def test_two_collectors_write_each_message_once_and_rollups_follow_late_data(
    broker: Service, influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    now = int(time.time() * 1000)
    hour = now - now % HOUR_MS - 3 * HOUR_MS
    messages = samples(uid, N, hour)
    procs = [
        CollectorProcess(
            tmp_path / f"c{i}",
            mqtt_port=broker.port,
            influx_url=influx.config.url,
            database=influx.config.database,
            client_id=f"col{i}-{uid}",
            site=uid,
            shared_group=uid,
        )
        for i in range(2)
    ]
    for proc in procs:
        proc.start()
    try:

        def acked() -> list[float]:
            return [p.metric("labmeter_collector_acked_total") for p in procs]

        first = Publisher(broker.port, messages[:FIRST_WAVE], 2.0, f"pub1-{uid}")
        first.start()
        assert first.done.wait(60) and first.failures == []
        wait_for(lambda: sum(acked()) == FIRST_WAVE, timeout=30)
        assert count_points(influx) == FIRST_WAVE
        assert all(a > 0 for a in acked())  # both did their share
        wait_for(lambda: _close(_rollups(influx), _expected(messages[:FIRST_WAVE])), timeout=30)

        late = Publisher(broker.port, messages[FIRST_WAVE:], 1.0, f"pub2-{uid}")
        late.start()
        assert late.done.wait(60) and late.failures == []
        wait_for(lambda: sum(acked()) == N, timeout=30)
        assert count_points(influx) == N
        wait_for(lambda: _close(_rollups(influx), _expected(messages)), timeout=30)
        assert all(p.dead_letters() == [] for p in procs)
        assert sum(p.metric("labmeter_collector_rollup_hours_total") for p in procs) >= 2
        time.sleep(1.5)  # redeliveries or a stale rollup would show up now
        assert sum(acked()) == N
        assert _close(_rollups(influx), _expected(messages))
    finally:
        for proc in procs:
            assert proc.stop() == 0
