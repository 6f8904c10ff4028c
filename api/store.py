"""Every figure the API shows, read from InfluxDB with InfluxQL (portable across 1.x-3.x)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labmeter.influx import InfluxV1, all_records, tag_filter, time_range

DEVICE_KEYS = ("site", "lab", "device")


@dataclass(frozen=True)
class DeviceTotals:
    site: str
    lab: str
    device: str
    in_use_s: float
    observed_s: float


def _key(record: dict[str, Any]) -> tuple[str, str, str]:
    return (record["site"], record["lab"], record["device"])


class Store:
    def __init__(self, influx: InfluxV1) -> None:
        self.influx = influx

    def known_devices(self, filters: dict[str, str | None]) -> set[tuple[str, str, str]]:
        """Devices that ever announced themselves: they count in the denominator even if silent."""
        q = (
            "SELECT last(online) FROM status "
            f"WHERE time > 0{tag_filter(filters)} GROUP BY site, lab, device"
        )
        return {_key(r) for r in all_records(self.influx.query(q))}

    def device_totals(
        self, start_ms: int, end_ms: int, filters: dict[str, str | None]
    ) -> list[DeviceTotals]:
        q = (
            "SELECT sum(in_use_s) AS in_use_s, sum(observed_s) AS observed_s FROM sample "
            f"WHERE {time_range(start_ms, end_ms)}{tag_filter(filters)} GROUP BY site, lab, device"
        )
        found = {_key(r): r for r in all_records(self.influx.query(q))}
        for key in self.known_devices(filters):
            found.setdefault(key, {"in_use_s": 0.0, "observed_s": 0.0})
        return [
            DeviceTotals(*key, float(r["in_use_s"] or 0.0), float(r["observed_s"] or 0.0))
            for key, r in sorted(found.items())
        ]

    def last_samples(
        self, filters: dict[str, str | None]
    ) -> dict[tuple[str, str, str], dict[str, Any]]:
        q = (
            "SELECT last(interval_s) AS interval_s, state FROM sample "
            f"WHERE time > 0{tag_filter(filters)} GROUP BY site, lab, device"
        )
        return {_key(r): r for r in all_records(self.influx.query(q))}

    def last_status(
        self, filters: dict[str, str | None]
    ) -> dict[tuple[str, str, str], dict[str, Any]]:
        q = (
            "SELECT last(status) AS status FROM status "
            f"WHERE time > 0{tag_filter(filters)} GROUP BY site, lab, device"
        )
        return {_key(r): r for r in all_records(self.influx.query(q))}
