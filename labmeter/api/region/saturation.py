"""Where capacity is saturated and where it lies idle: per lab and kind of equipment, the
share of opening hours with every device of that kind busy and the most busy at once; peak
seats against the licences owned; bookings that overlapped a full lab; the assets below the
low-use threshold over the whole window, with what they cost.

A device is busy in an hour it was in use for at least ``BUSY_HOUR_S`` of it: the rollups keep
hours, so this is the finest grain a year can be read at. The collector's busy rollups
(``labmeter/collector/daily.py``) hold, per lab, kind and day or month, the open seconds of the
hours with at least k devices busy; days it rolled up before it had them (an older rollup
layout) are counted here from the hourly rollups per asset, and the window's raw edges from the
raw samples, with the same definition.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Mapping, Sequence

from labmeter.api.bookings import BookingRow
from labmeter.api.costs import AssetCost
from labmeter.api.figures import ratio
from labmeter.api.plan import Part, ReadPlan
from labmeter.api.region.model import IdleAsset, LabKindLoad, LicenceLoad
from labmeter.api.scope import Scope, overlaps
from labmeter.api.usage import Totals
from labmeter.influx import InfluxV1
from labmeter.influxql import STAR, Select, agg, col, select
from labmeter.schema import (
    BUSY,
    BUSY_HOUR_S,
    BUSY_LAYOUT,
    BUSY_TAGS,
    DEVICE,
    DEVICE_TAGS,
    HOUR_MS,
    IN_USE,
    KIND,
    LAB,
    SAMPLE,
    SITE,
    DeviceKey,
    Measurement,
    Period,
    asset_rollup,
    busy_level,
    busy_rollup,
    device_rollup,
)

LabKind = tuple[str, str, str]  # site, lab, kind


class Busy:
    """Per lab and kind: open seconds with at least k devices busy, and the full hours."""

    def __init__(self) -> None:
        self.levels: dict[LabKind, list[float]] = defaultdict(list)  # [k - 1] -> seconds
        self.hours: dict[LabKind, list[tuple[int, int]]] = defaultdict(list)  # (hour, busy)

    def add_levels(self, key: LabKind, seconds: Mapping[int, float]) -> None:
        acc = self.levels[key]
        for k, value in seconds.items():
            acc.extend([0.0] * (k - len(acc)))
            acc[k - 1] += value

    def add_hour(self, scope: Scope, key: LabKind, hour: int, busy: int) -> None:
        opened = scope.reader.opening.hour_open_s(key[0], key[1], hour, 3600.0, 1800.0)
        if busy and opened:
            self.add_levels(key, dict.fromkeys(range(1, busy + 1), opened))
            self.hours[key].append((hour, busy))


def busy(scope: Scope, want_hours: bool) -> Busy:
    """Every part of the window as the plan says where it lives (the days' rollup layouts:
    ``ReadPlan.day_layouts``); ``want_hours``: also read the hours that a rollup of days or
    months sums (to find the bookings in full hours)."""
    out = Busy()
    plan, influx = scope.plan, scope.reader.influx
    rolled = _busy_days(plan.day_layouts)
    exclude = scope.unregistered()
    for part in plan.parts(plan.start_ms, plan.end_ms):
        period = part.period
        if period is None:
            _count(scope, out, _per_device(SAMPLE, part, plan, exclude))
        elif not _all_rolled(plan, part, rolled):
            source = asset_rollup(Period.hourly) if part.coarse else device_rollup(Period.hourly)
            if part.coarse:
                q = _within(select(agg("count", IN_USE, BUSY), source=source), part, plan, exclude)
                _count(scope, out, _busy_per_hour(q.where_field(IN_USE, ">=", BUSY_HOUR_S)))
            else:
                _count(scope, out, _per_device(source, part, plan, exclude))
        elif period is Period.hourly or want_hours:
            q = _within(select(col(BUSY), source=busy_rollup(Period.hourly)), part, plan, ())
            _count(scope, out, q.group_by(*BUSY_TAGS))
        else:
            _levels(
                influx, out, _within(select(col(STAR), source=busy_rollup(period)), part, plan, ())
            )
    return out


def _within(q: Select, part: Part, plan: ReadPlan, exclude: Sequence[DeviceKey]) -> Select:
    q = q.between(part.start_ms, part.end_ms).where_tags(plan.filters.without_device())
    return q.excluding(exclude, DEVICE_TAGS) if exclude else q


def _busy_per_hour(q: Select) -> Select:
    return q.group_by(SITE, LAB, KIND, every_ms=HOUR_MS, fill_none=True)


def _per_device(
    source: Measurement, part: Part, plan: ReadPlan, exclude: Sequence[DeviceKey]
) -> Select:
    """Devices busy per lab, kind and hour, from in-use seconds summed per device and hour."""
    inner = _within(select(agg("sum", IN_USE), source=source), part, plan, exclude)
    inner = inner.group_by(SITE, LAB, KIND, DEVICE, every_ms=HOUR_MS, fill_none=True)
    outer = select(agg("count", IN_USE, BUSY), source=inner)
    return _busy_per_hour(outer.where_field(IN_USE, ">=", BUSY_HOUR_S))


def _count(scope: Scope, out: Busy, q: Select) -> None:
    for series in scope.reader.influx.query(q):
        key = (series.tags.get(SITE, ""), series.tags.get(LAB, ""), series.tags.get(KIND, ""))
        for t, n in series.values:
            out.add_hour(scope, key, int(t), int(n or 0))


def _levels(influx: InfluxV1, out: Busy, q: Select) -> None:
    for series in influx.query(q.group_by(*BUSY_TAGS)):
        key = (series.tags.get(SITE, ""), series.tags.get(LAB, ""), series.tags.get(KIND, ""))
        levels = [(i, k) for i, c in enumerate(series.columns) if (k := busy_level(c)) is not None]
        out.add_levels(key, {k: sum(row[i] or 0.0 for row in series.values) for i, k in levels})


def _busy_days(labels: Mapping[tuple[str, str], Mapping[int, int]]) -> set[int]:
    """Local days whose every lab label says the busy rollups were made."""
    seen = {day for days in labels.values() for day in days}
    old = {day for days in labels.values() for day, layout in days.items() if layout < BUSY_LAYOUT}
    return seen - old


def _all_rolled(plan: ReadPlan, part: Part, rolled: set[int]) -> bool:
    """Whether every local day the part touches has busy rollups."""
    cal = plan.calendar
    day = cal.day_of(part.start_ms)
    while day < part.end_ms:
        if day not in rolled:
            return False
        day = cal.next_day(day)
    return True


def lab_loads(scope: Scope, found: Busy, bookings: list[BookingRow] | None) -> list[LabKindLoad]:
    """Per lab and kind: its devices, the open seconds of the window, those with every device
    busy, the most busy at once, and the bookings that overlapped a full hour."""
    if scope.inventory is None:
        return []
    a, b = scope.start_ms, scope.end_ms
    owned: dict[LabKind, set[DeviceKey]] = defaultdict(set)
    for m in scope.members():
        if m.tenure is None or overlaps(m.tenure, a, b):
            owned[(m.key[0], m.key[1], m.kind)].add(m.asset)
    rows = []
    for key, assets in sorted(owned.items()):
        n = len(assets)
        levels = found.levels.get(key, [])
        opened = scope.lab_available_s(key[0], key[1], a, b)
        full = levels[n - 1] if len(levels) >= n else 0.0
        peak = max((k + 1 for k, v in enumerate(levels) if v > 0), default=0)
        rows.append(
            LabKindLoad(
                site=key[0],
                lab=key[1],
                kind=key[2],
                devices=n,
                open_s=opened,
                full_s=full,
                full_share=ratio(full, opened),
                peak_busy=peak,
                peak_share=ratio(peak, n),
                bookings_in_full=None
                if bookings is None
                else _booked_in_full(scope, key, n, found.hours.get(key, []), bookings),
            )
        )
    return rows


def _booked_in_full(
    scope: Scope, key: LabKind, n: int, hours: list[tuple[int, int]], bookings: list[BookingRow]
) -> int:
    """Bookings of the lab (of a device of that kind, or the whole lab) overlapping one of
    its hours with every device of the kind busy."""
    full = sorted(h for h, busy in hours if busy >= n)
    if not full:
        return 0
    inv = scope.inventory
    assert inv is not None
    counted = 0
    for r in bookings:
        if (r["site"], r["lab"]) != key[:2]:
            continue
        kinds = {
            owner.kind
            for d in r["devices"]
            if (owner := inv.owner((r["site"], r["lab"], d), r["start_ms"])) is not None
        }
        if not r["lab_booking"] and key[2] not in kinds:
            continue
        i = bisect_right(full, r["start_ms"] - HOUR_MS)  # the first full hour ending after it
        if i < len(full) and full[i] < r["end_ms"]:
            counted += 1
    return counted


def licence_loads(scope: Scope) -> list[LicenceLoad]:
    """Peak concurrent seats of each title against the seats owned, per site."""
    peaks = scope.reader.peak_seats(scope.plan)
    inv = scope.inventory
    titles = set(peaks)
    if inv is not None:
        titles |= {k for k in inv.software if scope.filters.site in (None, k[0])}
    rows = []
    for site, app in sorted(titles):
        lic = inv.software.get((site, app)) if inv is not None else None
        peak = peaks.get((site, app), 0)
        owned = lic.seats if lic is not None else None
        rows.append(
            LicenceLoad(
                site=site,
                app=app,
                seats_owned=owned,
                peak_seats=peak,
                peak_share=ratio(peak, owned),
            )
        )
    return rows


def idle_assets(
    scope: Scope,
    assets: Mapping[DeviceKey, Totals],
    costs: Mapping[DeviceKey, AssetCost],
    below: float,
) -> list[IdleAsset]:
    """Registered assets whose utilisation over the whole window is below ``below``."""
    inv = scope.inventory
    if inv is None:
        return []
    a, b = scope.start_ms, scope.end_ms
    rows = []
    for key, kind in sorted(scope.registered().items()):
        t = assets.get(key, Totals())
        available = scope.available_s(key, a, b)
        use = ratio(t.seconds["in_use_open_s"], available)
        if use is None or use >= below:
            continue
        eq = inv.equipment[key]
        rows.append(
            IdleAsset(
                site=key[0],
                lab=key[1],
                device=key[2],
                kind=kind,
                fund=eq.funding.fund,
                utilisation=use,
                coverage=ratio(t.seconds["observed_open_s"], available),
                in_use_open_s=t.seconds["in_use_open_s"],
                available_s=available,
                cost=eq.cost,
                cost_eur=costs[key]["total_eur"] if key in costs else 0.0,
            )
        )
    return rows
