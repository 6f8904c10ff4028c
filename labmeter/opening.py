"""Opening hours as half hours: the unit in which rollups keep in-use time apart.

Utilisation divides in-use time *within* opening hours by those hours; use after hours is
real (an evening course) but has no denominator, so it is reported apart. The inventory
declares hours on the hour or half hour, and the time zones it allows are whole or half
hours from UTC, so every half hour of UTC is either wholly open or wholly closed. Hourly
rollups carry the first half hour's seconds beside the hour's (``*_h1_s``); raw points are
summed per half hour; daily rollups carry the open seconds themselves, computed by the
collector with its inventory and labelled with the hours used (``rollup_hours_daily``), so
the API can tell when its own inventory says otherwise and fall back to the hourly rollups.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from labmeter.inventory import Inventory
from labmeter.schema import DAY_MS, DEFAULT_TZ, HALF_HOUR_MS, Calendar


class OpeningHours:
    """Which half hours a lab is open; without an inventory every half hour is open."""

    def __init__(self, inventory: Inventory | None) -> None:
        self.inventory = inventory
        # Daily and monthly rollups are cut at the local days of the inventory's zone.
        self.calendar = Calendar(inventory.timezone if inventory else DEFAULT_TZ)
        self._open: dict[tuple[str, str, int], frozenset[int]] = {}
        self._labels: dict[tuple[str, str, int], str] = {}

    def _open_halves(self, site: str, lab: str, utc_day: int) -> frozenset[int]:
        key = (site, lab, utc_day)
        found = self._open.get(key)
        if found is None:
            found = frozenset()
            if self.inventory is not None and (spec := self.inventory.labs.get((site, lab))):
                start = utc_day * DAY_MS
                found = frozenset(
                    half
                    for a, b in self.inventory.opening_spans(spec, start, start + DAY_MS)
                    for half in range(a, b, HALF_HOUR_MS)
                )
            self._open[key] = found
        return found

    def is_open(self, site: str, lab: str, half_ms: int) -> bool:
        """Whether the half hour starting at ``half_ms`` is within the lab's opening hours."""
        if self.inventory is None:
            return True
        return half_ms in self._open_halves(site, lab, half_ms // DAY_MS)

    def hour_open_s(self, site: str, lab: str, hour_ms: int, total: float, head: float) -> float:
        """The open part of an hour's ``total`` seconds, ``head`` of them in its first half."""
        first = head if self.is_open(site, lab, hour_ms) else 0.0
        return first + (total - head if self.is_open(site, lab, hour_ms + HALF_HOUR_MS) else 0.0)

    def label(self, site: str, lab: str, day_ms: int) -> str:
        """The lab's hours over the local day starting at ``day_ms`` as ``HH:MM-HH:MM,...``
        ("" when closed, "*" without an inventory): what the daily rollups of that day were
        computed with. Cached: the API compares one per lab and day of a window."""
        if self.inventory is None:
            return "*"
        key = (site, lab, day_ms)
        found = self._labels.get(key)
        if found is None:
            day_end = self.calendar.next_day(day_ms)
            found = self._labels[key] = _label(self.inventory, site, lab, day_ms, day_end)
        return found


def _label(inventory: Inventory, site: str, lab: str, day_start_ms: int, day_end_ms: int) -> str:
    spec = inventory.labs.get((site, lab))
    if spec is None:
        return ""
    tz = inventory.tz
    spans = []
    for a, b in inventory.opening_spans(spec, day_start_ms, day_end_ms):
        end = "24:00" if b == day_end_ms else _clock(b, tz)
        spans.append(f"{_clock(a, tz)}-{end}")
    return ",".join(spans)


def _clock(ms: int, tz: Any) -> str:
    return datetime.fromtimestamp(ms / 1000, tz).strftime("%H:%M")
