"""Software licences: hours per title and peak concurrent seats against the seats owned."""

from __future__ import annotations

from typing import Any

from labmeter.api.figures import ratio
from labmeter.api.records import (
    SoftwareRow,
)
from labmeter.api.scope import Scope


def licences(scope: Scope) -> list[SoftwareRow]:
    """Hours per title and peak concurrent seats against the seats owned."""
    s = scope
    seconds = s.reader.app_seconds(s.plan)
    peaks = s.reader.peak_seats(s.plan)
    titles: dict[tuple[str, str], dict[str, Any]] = {}
    for (site, _lab, _device, app), secs in seconds.items():
        entry = titles.setdefault((site, app), {"seconds": 0.0, "devices": 0})
        entry["seconds"] += secs
        entry["devices"] += 1 if secs > 0 else 0
    if s.inventory is not None:
        for site, app in s.inventory.software:
            if not s.filters.site or s.filters.site == site:
                titles.setdefault((site, app), {"seconds": 0.0, "devices": 0})
    rows = []
    for (site, app), entry in sorted(titles.items()):
        lic = s.inventory.software.get((site, app)) if s.inventory else None
        peak = peaks.get((site, app), 0)
        rows.append(
            SoftwareRow(
                site=site,
                app=app,
                hours=round(entry["seconds"] / 3600, 6),
                devices=entry["devices"],
                peak_seats=peak,
                seats_owned=lic.seats if lic else None,
                peak_share=ratio(peak, lic.seats if lic else None),
                registered=lic is not None,
            )
        )
    return rows
