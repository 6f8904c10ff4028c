"""Closed periods and the late-data horizon: what the collector refuses beyond the contract."""

from __future__ import annotations

import dataclasses
import time

import orjson
import pytest

from labmeter.collector.admission import Admission
from labmeter.collector.convert import convert
from labmeter.collector.service import Collector
from labmeter.config import Config
from labmeter.contract import Event, Message, Sample, Status, Topic, encode
from labmeter.errors import PayloadRejected
from labmeter.influx import InfluxV1
from labmeter.periods import HEARTBEAT, Closure
from tests.collector.test_write_errors import _now_minute, _publish
from tests.helpers import wait_for

HOUR = 3_600_000
T0 = 1_767_222_000_000  # 2025-12-31T23:00:00Z, a fixed time: nothing here reads the clock


def _sample(site: str, end_ms: int, value: float = 60.0, device: str = "pc-1") -> Message:
    return Message(
        Topic(site, "lab-a", device, "sample"), Sample(end_ms, 1, 60.0, {"in_use": value})
    )


def _raw(message: Message) -> tuple[int, int, bytes, bytes, bytes]:
    return (1, 1, str(message.topic).encode(), encode(message.payload), b"")


def _reason(admission: Admission, message: Message, received_ms: int) -> str | None:
    try:
        admission.check(message, received_ms)
    except PayloadRejected as exc:
        return exc.reason
    return None


def test_samples_events_and_statuses_in_a_closed_period_are_refused() -> None:
    closed = Admission(7, (Closure(7, T0, T0 + 2 * HOUR, site="s1"),))
    now = T0 + 10 * HOUR
    assert _reason(closed, _sample("s1", T0 + HOUR), now) == "period_closed"
    assert _reason(closed, _sample("s1", T0 + 2 * HOUR), now) == "period_closed"  # its start
    assert _reason(closed, _sample("s1", T0 + 2 * HOUR + 60_000), now) is None  # after it
    # The hour before the period is closed with it (the sessions' look-back).
    assert _reason(closed, _sample("s1", T0), now) == "period_closed"
    assert _reason(closed, _sample("s1", T0 - HOUR + 60_000), now) == "period_closed"
    assert _reason(closed, _sample("s1", T0 - HOUR), now) is None  # ends where that hour begins
    assert _reason(closed, _sample("s2", T0 + HOUR), now) is None  # another site
    event = Message(Topic("s1", "lab-a", "cnc", "event"), Event(T0, 1, "alarm"))
    assert _reason(closed, event, now) == "period_closed"
    late = Message(Topic("s1", "lab-a", "cnc", "event"), Event(T0 + 2 * HOUR, 1, "alarm"))
    assert _reason(closed, late, now) is None
    status = Message(Topic("s1", "lab-a", "cnc", "status"), Status("online", T0 + HOUR))
    assert _reason(closed, status, now) == "period_closed"
    will = Message(Topic("s1", "lab-a", "cnc", "status"), Status("offline"))
    assert _reason(closed, will, now) is None  # no ts: stamped on arrival
    every_site = Admission(7, (Closure(7, T0, T0 + HOUR),))
    assert _reason(every_site, _sample("s9", T0 + 60_000), now) == "period_closed"


def test_the_horizon_refuses_old_samples_and_follows_the_clock_offset() -> None:
    day = 86_400_000
    horizon = Admission(max_age_ms=90 * day)
    now = T0 + 100 * day
    # The horizon applies to the point's time: the start of a sample's interval.
    assert _reason(horizon, _sample("s1", now - 90 * day + 60_000 - 1), now) == "too_old"
    assert _reason(horizon, _sample("s1", now - 90 * day + 60_000), now) is None
    pinned = Admission(max_age_ms=90 * day, offset_ms=-50 * day)  # "now" is 50 days ago
    assert _reason(pinned, _sample("s1", now - 120 * day), now) is None
    assert _reason(pinned, _sample("s1", now - 141 * day), now) == "too_old"
    assert _reason(Admission(), _sample("s1", 0), now) is None  # 0: no horizon


def test_convert_refuses_through_the_admission() -> None:
    admission = Admission(3, (Closure(3, T0, T0 + HOUR),))
    chunk = [_raw(_sample("s1", T0 + 60_000)), _raw(_sample("s1", T0 + HOUR + 60_000))]
    converted = convert(chunk, T0 + 5 * HOUR, admission)
    assert [(i, reason) for i, reason, _ in converted.rejected] == [(0, "period_closed")]
    assert len(converted.lines) == 1


def _closure(influx: InfluxV1, start_ms: int, end_ms: int, site: str = "", cid: int = 0) -> Closure:
    closure = Closure(cid or int(time.time() * 1000), start_ms, end_ms, site)
    influx.write_lines([closure.to_line()])
    return closure


def _started(config: Config, influx: InfluxV1, **changes: object) -> Collector:
    cfg = dataclasses.replace(
        config, collector=dataclasses.replace(config.collector, rollups=False, **changes)
    )
    collector = Collector(cfg, influx, influx)
    collector.start()
    assert collector.connected.wait(10)
    time.sleep(0.2)
    return collector


def _message(uid: str, end_ms: int, value: float, device: str = "pc-1") -> tuple[str, bytes]:
    m = _sample(uid, end_ms, value, device)
    return str(m.topic), encode(m.payload)


def test_a_running_collector_refuses_a_period_closed_while_it_runs(
    config: Config, influx: InfluxV1, uid: str
) -> None:
    now = _now_minute()
    window = (now - 3 * HOUR, now - 2 * HOUR)
    inside = [_message(uid, window[0] + (i + 1) * 60_000, 30.0) for i in range(5)]
    collector = _started(config, influx, periods_refresh_s=0.2, max_age_days=1.0)
    try:
        _publish(config, inside)
        wait_for(lambda: collector.metrics.acked == 5)
        closure = _closure(influx, *window)
        wait_for(lambda: collector.periods.admission.version == closure.id)
        # The same samples with other values, a sample after the period, one past the horizon.
        again = [_message(uid, window[0] + (i + 1) * 60_000, 10.0) for i in range(5)]
        after = _message(uid, window[1] + 60_000, 20.0)
        old = _message(uid, now - 25 * HOUR, 20.0)
        _publish(config, [*again, after, old])
        wait_for(lambda: collector.metrics.acked == 12)
        # The heartbeat says so: a period close waits for exactly this.
        wait_for(
            lambda: (
                influx.query(f"SELECT last(applied) FROM {HEARTBEAT}")[0].values[0][1] == closure.id
            )
        )
    finally:
        collector.stop()
    assert collector.dead_letters.counts == {"period_closed": 5, "too_old": 1}
    sums = influx.query(
        f"SELECT sum(in_use_s), count(in_use_s) FROM sample WHERE time < {window[1]}ms"
    )
    assert sums[0].values[0][1:] == [150.0, 5]  # the first values, untouched
    records = [orjson.loads(r) for r in collector.dead_letters.path.read_text().splitlines()]
    assert {r["reason"] for r in records} == {"period_closed", "too_old"}
    assert all(r["topic"].startswith(f"labmeter/v1/{uid}/") for r in records)
    counted = influx.query("SELECT sum(count) FROM refusals GROUP BY reason")
    assert {s.tags["reason"]: s.values[0][1] for s in counted} == {"period_closed": 5, "too_old": 1}
    assert (
        collector.metrics.registry.get_sample_value(
            "labmeter_collector_rejected_total", {"reason": "period_closed"}
        )
        == 5
    )


def test_a_batch_converted_before_a_closure_is_converted_again_before_its_write(
    config: Config, influx: InfluxV1, uid: str
) -> None:
    """The race: the converter took the batch under the old closures, the period was closed
    before the write. The write attempt sees it and converts the batch again."""
    now = _now_minute()
    window = (now - 3 * HOUR, now - 2 * HOUR)
    cfg = dataclasses.replace(
        config, collector=dataclasses.replace(config.collector, rollups=False)
    )
    collector = Collector(cfg, influx, influx)
    try:
        collector.periods.refresh()
        before = collector.periods.admission
        raw = [
            (i, 1, t.encode(), p, b"")
            for i, (t, p) in enumerate(
                [_message(uid, window[0] + 60_000, 30.0), _message(uid, window[1] + 60_000, 30.0)]
            )
        ]
        acks = [(0, [m for m, *_ in raw])]
        chunk = collector._chunk(acks, raw, now, convert(raw, now, before), before.version)
        assert len(chunk.lines) == 2 and not chunk.rejected  # both admitted, then
        _closure(influx, *window, site=uid)
        collector.periods.refresh()
        collector._flush([chunk], 2, chunk.lines, chunk.hours)
    finally:
        collector.dead_letters.close()
    assert collector.dead_letters.counts == {"period_closed": 1}
    rows = influx.query("SELECT in_use_s FROM sample")
    assert [r[0] for r in rows[0].values] == [window[1]]  # only the sample after the period


@pytest.mark.parametrize("site", ["", "other"])
def test_closures_survive_a_restart_and_apply_per_site(
    config: Config, influx: InfluxV1, uid: str, site: str
) -> None:
    now = _now_minute()
    window = (now - 3 * HOUR, now - 2 * HOUR)
    _closure(influx, *window, site=site)
    collector = _started(config, influx)  # reads the closures at start, before any message
    try:
        _publish(config, [_message(uid, window[0] + 60_000, 30.0)])
        wait_for(lambda: collector.metrics.acked == 1)
    finally:
        collector.stop()
    expected = {"period_closed": 1} if not site else {}
    assert collector.dead_letters.counts == expected
