"""The API's health: up, and how far the collectors' catch-up of older rollups has come.

Days of an older rollup layout are read the slow way until the collector brings them up to
date (``collector/catchup.py``), so a report that takes seconds instead of a fraction says
why here. Read from the collectors' ``rollup_catchup`` points at most every few seconds:
``/healthz`` stays cheap under load.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from typing_extensions import TypedDict  # pydantic reads these as response models on 3.11

from labmeter.errors import InfluxError
from labmeter.influx import InfluxV1
from labmeter.influxql import agg, select
from labmeter.schema import ROLLUP_CATCHUP, SITE, Calendar

READ_EVERY_S = 10.0
LIVE_MS = 3600_000  # a collector's word older than this is not counted (it stopped)


class Rollups(TypedDict):
    days_to_catch_up: int  # local days the collectors still owe a recompute, all together
    catching_up: str | None  # the day being recomputed (YYYY-MM-DD), newest first


class Health(TypedDict):
    status: str
    rollups: Rollups | None  # None: InfluxDB did not answer


class RollupHealth:
    """The collectors' catch-up, as last read."""

    def __init__(
        self, influx: InfluxV1, calendar: Calendar, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.influx = influx
        self.calendar = calendar
        self.clock = clock
        self._lock = threading.Lock()
        self._read: tuple[float, Rollups | None] = (float("-inf"), None)

    def health(self) -> Health:
        with self._lock:
            at, found = self._read
            if self.clock() - at >= READ_EVERY_S:
                found = self._rollups()
                self._read = (self.clock(), found)
        return Health(status="ok", rollups=found)

    def _rollups(self) -> Rollups | None:
        fields = ("days_left", "day_ms", "seen_ms")
        q = select(*(agg("last", f) for f in fields), source=ROLLUP_CATCHUP).since(1)
        try:
            results = self.influx.query(q.group_by("collector", SITE))
        except InfluxError:
            return None
        now_ms = time.time_ns() // 1_000_000
        left, days = 0, []
        for series in results:
            _t, days_left, day_ms, seen_ms = series.values[0]
            if seen_ms is None or seen_ms < now_ms - LIVE_MS or not days_left:
                continue
            left += int(days_left)
            if day_ms is not None and day_ms >= 0:
                days.append(int(day_ms))
        newest = max(days, default=None)
        return Rollups(
            days_to_catch_up=left,
            catching_up=None if newest is None else self.calendar.date_of(newest).isoformat(),
        )
