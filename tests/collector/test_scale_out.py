"""Collectors on one shared subscription: each message written once, rollups agree.

The collectors are child processes with rollups on (grace 0 so the test need not wait for an
hour to close). A second wave of samples lands late in the already rolled-up hour, as an
agent replaying a backlog would; the rollups must follow it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import orjson
import psutil
import pytest

from labmeter.influx import InfluxV1
from labmeter.localstack import Service
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
    # InfluxDB 1.x stores each field of a point apart: a read during a rollup's write can see
    # one field of a point and not yet another (None), so a point counts once it is whole.
    devices = {
        s.tags["device"]: [float(s.values[0][1]), float(s.values[0][2]), s.values[0][3]]
        for s in influx.query(
            "SELECT in_use_s, idle_s, samples FROM rollup_device_hourly GROUP BY device"
        )
        if None not in s.values[0]
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
        # The counter moves once the whole pass is done (the day, the month and the sessions
        # after the hour): the hour's rollup can be read a moment before it.
        wait_for(lambda: sum(p.metric("labmeter_collector_rollup_hours_total") for p in procs) >= 2)
        time.sleep(1.5)  # redeliveries or a stale rollup would show up now
        assert sum(acked()) == N
        assert _close(_rollups(influx), _expected(messages))
    finally:
        for proc in procs:
            assert proc.stop() == 0


def _collectors(
    broker: Service, influx: InfluxV1, uid: str, tmp_path: Path, count: int, workers: int = 1
) -> list[CollectorProcess]:
    return [
        CollectorProcess(
            tmp_path / f"c{i}",
            mqtt_port=broker.port,
            influx_url=influx.config.url,
            database=influx.config.database,
            client_id=f"col{i}-{uid}",
            site=uid,
            shared_group=uid,
            workers=workers,
        )
        for i in range(count)
    ]


def test_one_of_two_collectors_sigkilled_mid_stream_each_message_written_once(
    broker: Service, influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    """Its unacked messages wait in its session (as does its share meanwhile) until systemd
    starts it again; the rewrite lands on the same points."""
    now = int(time.time() * 1000)
    messages = samples(uid, N, now - now % HOUR_MS - 3 * HOUR_MS)
    procs = _collectors(broker, influx, uid, tmp_path, 2)
    for proc in procs:
        proc.start()
    try:
        publisher = Publisher(broker.port, messages, 6.0, f"pub-{uid}")
        publisher.start()
        time.sleep(2.0)
        procs[1].kill()
        assert 0 < count_points(influx) < N  # mid-stream, with work in flight
        time.sleep(1.0)
        procs[1].start()
        assert publisher.done.wait(60) and publisher.failures == []
        wait_for(lambda: count_points(influx) == N, timeout=60, interval=0.5)
        assert sum_in_use(influx) == pytest.approx(sum(m[2] for m in messages))
        assert all(p.dead_letters() == [] for p in procs)
        wait_for(lambda: _close(_rollups(influx), _expected(messages)), timeout=30)
    finally:
        for proc in procs:
            assert proc.stop() == 0


def test_workers_share_one_subscription_sum_their_metrics_and_roll_up_once(
    broker: Service, influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    """``--workers 2``: two sessions, worker 0 in the collector's process and worker 1 in its
    own; worker 1 SIGKILLed is started again."""
    now = int(time.time() * 1000)
    messages = samples(uid, N, now - now % HOUR_MS - 3 * HOUR_MS)
    (proc,) = _collectors(broker, influx, uid, tmp_path, 1, workers=2)
    proc.start()
    try:
        assert proc.metric("labmeter_collector_connected") == 2  # the sum of both workers
        first = Publisher(broker.port, messages[:FIRST_WAVE], 2.0, f"pub1-{uid}")
        first.start()
        assert first.done.wait(60) and first.failures == []
        wait_for(lambda: proc.metric("labmeter_collector_acked_total") == FIRST_WAVE, timeout=30)
        assert count_points(influx) == FIRST_WAVE
        wait_for(lambda: _close(_rollups(influx), _expected(messages[:FIRST_WAVE])), timeout=30)

        rest = Publisher(broker.port, messages[FIRST_WAVE:], 3.0, f"pub2-{uid}")
        rest.start()
        time.sleep(1.0)
        (victim,) = proc.worker_pids()
        psutil.Process(victim).kill()
        assert rest.done.wait(60) and rest.failures == []
        wait_for(lambda: count_points(influx) == N, timeout=60, interval=0.5)
        assert sum_in_use(influx) == pytest.approx(sum(m[2] for m in messages))
        wait_for(lambda: _close(_rollups(influx), _expected(messages)), timeout=30)
        wait_for(lambda: len(proc.worker_pids()) == 1 and victim not in proc.worker_pids())
        wait_for(proc.healthy, timeout=20)
        assert proc.dead_letters() == []
    finally:
        assert proc.stop() == 0


def test_fewer_workers_retire_the_sessions_of_the_others(
    broker: Service, influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    """Mosquitto keeps queueing an offline member's share of a shared subscription: from two
    workers down to one, worker 1's session is drained and ended, so nothing waits in it."""
    now = int(time.time() * 1000)
    messages = samples(uid, 1200, now - now % HOUR_MS - 3 * HOUR_MS)
    (proc,) = _collectors(broker, influx, uid, tmp_path, 1, workers=2)
    proc.start()
    assert proc.stop() == 0
    offline = Publisher(broker.port, messages[:1000], 1.0, f"pub1-{uid}")
    offline.start()  # both sessions queue their share while nobody runs
    assert offline.done.wait(60) and offline.failures == []
    proc.workers = 1
    proc.start()
    try:
        wait_for(lambda: count_points(influx) == 1000, timeout=60, interval=0.5)
        state = tmp_path / "c0" / "deadletters.workers.json"
        wait_for(lambda: orjson.loads(state.read_bytes()) == {"workers": 1}, timeout=30)
        later = Publisher(broker.port, messages[1000:], 1.0, f"pub2-{uid}")
        later.start()  # all of it to worker 0: the retired session takes no share
        assert later.done.wait(60) and later.failures == []
        wait_for(lambda: count_points(influx) == 1200, timeout=30, interval=0.5)
        assert proc.dead_letters() == []
    finally:
        assert proc.stop() == 0
    log = (tmp_path / "c0" / "collector.log").read_text()
    assert "retiring the session of worker 1" in log and "is empty: ending it" in log
