"""The live side of the API: each device's last sample and last status (occupancy).

Read at most once a second per filter (``api.live_s``), however many boards poll it
(``recent.py``): samples come once a minute, so a second's delay shows nothing a board would
have shown.
"""

from __future__ import annotations

from typing import Any

from labmeter.api.plan import Filters
from labmeter.api.recent import Recent
from labmeter.influx import InfluxV1
from labmeter.influxql import agg, col, select
from labmeter.schema import DEVICE, DEVICE_TAGS, LAB, SAMPLE, SITE, STATUS, DeviceKey

LIVE_S = 1.0

Rows = dict[DeviceKey, dict[str, Any]]


class Store:
    def __init__(self, influx: InfluxV1, live_s: float = LIVE_S) -> None:
        self.influx = influx
        self._recent: Recent[tuple[str, Filters], Rows] = Recent(live_s)

    def _last_per_device(
        self, *columns: str, filters: Filters, source: Any
    ) -> dict[DeviceKey, dict[str, Any]]:
        q = select(*columns, source=source).since(0).where_tags(filters.tags)
        return {
            (r[SITE], r[LAB], r[DEVICE]): r
            for series in self.influx.query(q.group_by(*DEVICE_TAGS))
            for r in series.records()
        }

    def last_samples(self, filters: Filters) -> Rows:
        """Each device's last sample: its interval and the state at its end."""
        return self._recent.get(
            ("samples", filters),
            lambda: self._last_per_device(
                agg("last", "interval_s"), col("state"), filters=filters, source=SAMPLE
            ),
        )

    def last_status(self, filters: Filters) -> Rows:
        return self._recent.get(
            ("status", filters),
            lambda: self._last_per_device(agg("last", "status"), filters=filters, source=STATUS),
        )
