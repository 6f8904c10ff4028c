"""Months closed one after another in the middle of a year that goes on: each package verifies.

Four months of a lab (January to April 2026 in Europe/Rome, the spring clock change on 29
March included) go through real Mosquitto and a live collector that rolls them up; March is
closed while April's data are still held in the database, then April while May's keep
arriving. Time is pinned: the collector's clock is set to mid-May.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from labmeter.archive.manifest import Trust
from labmeter.collector.service import Collector
from labmeter.config import Config
from labmeter.evidence.close import close_period
from labmeter.evidence.verify import verify
from labmeter.influx import InfluxV1
from tests.evidence.test_close_verify import _inventory, _messages, closing_config
from tests.helpers import publish_raw, wait_for

pytestmark = pytest.mark.e2e

ROME = ZoneInfo("Europe/Rome")
NOW = int(datetime(2026, 5, 15, 12, tzinfo=ROME).timestamp() * 1000)


def _midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=ROME).timestamp() * 1000)


def _weekdays(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        if day.weekday() < 5:
            yield day
        day += timedelta(days=1)


@pytest.fixture
def lab(
    config: Config, influx: InfluxV1, uid: str, tmp_path: Path
) -> Iterator[tuple[Config, Collector]]:
    inventory = _inventory(tmp_path / "inventory.yaml", uid)
    cfg = closing_config(config, inventory, NOW, tmp_path / "archive", 365.0, None)
    collector = Collector(cfg, influx, influx)
    collector.start()
    assert collector.connected.wait(10)
    try:
        yield cfg, collector
    finally:
        collector.stop()


def _publish_days(cfg: Config, collector: Collector, uid: str, days: list[date]) -> None:
    before = collector.metrics.acked
    messages = [m for n, d in enumerate(days) for m in _messages(uid, _midnight(d), seed=n)]
    publish_raw(cfg.mqtt.host, cfg.mqtt.port, messages)
    wait_for(lambda: collector.metrics.acked == before + len(messages), timeout=120)
    assert collector.rollups is not None
    wait_for(lambda: not collector.rollups.pending(), timeout=300)  # type: ignore[union-attr]


def test_march_then_april_closed_while_the_year_goes_on_both_verify(
    lab: tuple[Config, Collector], uid: str
) -> None:
    cfg, collector = lab
    march, april, may = date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1)
    _publish_days(cfg, collector, uid, list(_weekdays(date(2026, 2, 23), date(2026, 4, 10))))
    first = close_period(cfg, _midnight(march), _midnight(april), now_ms=NOW)
    # April goes on after March is closed, then May begins while April is closed.
    _publish_days(cfg, collector, uid, list(_weekdays(date(2026, 4, 13), date(2026, 4, 30))))
    _publish_days(cfg, collector, uid, list(_weekdays(may, date(2026, 5, 6))))
    second = close_period(cfg, _midnight(april), _midnight(may), now_ms=NOW)
    assert collector.dead_letters.counts == {}
    for closed in (first, second):
        problems, _ = verify(closed.folder, Trust(allow_unsigned=True))
        assert problems == [], (closed.folder.name, problems)
