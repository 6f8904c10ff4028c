"""Rollups owed survive a crash: the state file is read back by the next collector."""

from __future__ import annotations

import time
from pathlib import Path

from labmeter.collector.convert import parse
from labmeter.collector.metrics import Metrics
from labmeter.collector.rollups import Rollups
from labmeter.contract import Sample, Topic, encode
from labmeter.influx import InfluxV1
from labmeter.schema import HOUR_MS


def _rollups(influx: InfluxV1, uid: str, state: Path, grace_s: float) -> Rollups:
    return Rollups(
        influx, influx, Metrics(), site=uid, state_path=state, grace_s=grace_s, settle_s=0.0
    )


def test_owed_hours_survive_a_restart_and_are_rolled_up(
    influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    now = int(time.time() * 1000)
    hour = now - now % HOUR_MS - 2 * HOUR_MS
    topic = str(Topic(uid, "lab-a", "cnc-01", "sample")).encode()
    for minute in range(1, 11):
        sample = Sample(hour + minute * 60_000, minute, 60.0, {"in_use": 6.0 * minute}, "company")
        influx.write_lines(parse(topic, encode(sample), now)[1])
    state = tmp_path / "rollups.json"

    first = _rollups(influx, uid, state, grace_s=10**9)  # never due: the "crash" comes first
    first.touch([hour])
    first.run_due(time.time())
    assert influx.query("SELECT * FROM rollup_device_hourly") == []

    again = _rollups(influx, uid, state, grace_s=0)  # a new process reads what is owed
    assert again.pending() == [hour]
    again.run_due(time.time() + 1)
    rows = influx.query("SELECT in_use_s, observed_s, samples FROM rollup_device_hourly")
    assert rows[0].values == [[hour, 330.0, 330.0, 10]]
    assert again.pending() == [hour]  # one confirmation still owed
    again.run_due(time.time() + 1)
    assert again.pending() == [] and _rollups(influx, uid, state, 0).pending() == []
