"""The live side of the API: each device's last sample and last status (occupancy)."""

from __future__ import annotations

from typing import Any

from labmeter.api.plan import Filters
from labmeter.influx import InfluxV1
from labmeter.influxql import agg, col, select
from labmeter.schema import DEVICE, DEVICE_TAGS, LAB, SAMPLE, SITE, STATUS, DeviceKey


class Store:
    def __init__(self, influx: InfluxV1) -> None:
        self.influx = influx

    def _last_per_device(
        self, *columns: str, filters: Filters, source: Any
    ) -> dict[DeviceKey, dict[str, Any]]:
        q = select(*columns, source=source).since(0).where_tags(filters.tags)
        return {
            (r[SITE], r[LAB], r[DEVICE]): r
            for series in self.influx.query(q.group_by(*DEVICE_TAGS))
            for r in series.records()
        }

    def last_samples(self, filters: Filters) -> dict[DeviceKey, dict[str, Any]]:
        """Each device's last sample: its interval and the state at its end."""
        return self._last_per_device(
            agg("last", "interval_s"), col("state"), filters=filters, source=SAMPLE
        )

    def last_status(self, filters: Filters) -> dict[DeviceKey, dict[str, Any]]:
        return self._last_per_device(agg("last", "status"), filters=filters, source=STATUS)
