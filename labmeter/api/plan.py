"""The read plan: what every read of one request needs, decided once and passed down.

A year of raw one-minute samples for a region is too much to scan for a report, so every read
is split in time (``ReadPlan.parts``): monthly and daily rollups cover whole local months and
days, hourly rollups the whole hours around them, all up to the last rolled-up hour (the
collector writes them from closed hours), and raw points the unaligned edges and the recent
hours. The split is the same for every figure of a request, so a number never mixes the two
sources for the same hour. Which hours are rolled up, from which day daily rollups exist,
and which days were split at other opening hours than the API's are read once, when the
plan is made; the plan is immutable, so no read can change what another one sees.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal

from labmeter import influxql
from labmeter.influx import InfluxV1
from labmeter.influxql import agg, col, select
from labmeter.opening import OpeningHours
from labmeter.schema import (
    COARSE_LAYOUT,
    DEFAULT_TZ,
    DEVICE,
    DEVICE_TAGS,
    HOUR_MS,
    HOURS_DAILY,
    HOURS_LABEL,
    HOURS_TZ,
    LAB,
    LAYOUT,
    OBSERVED,
    SAMPLE,
    SAMPLES,
    SITE,
    STATUS,
    Calendar,
    DeviceKey,
    Measurement,
    Period,
    device_rollup,
    hour_of,
    lab_rollup,
)

# The last rolled-up hour is looked for in the rollups per lab of this last stretch first (150
# series for a region instead of 1,500 per device over all time).
RECENT_ROLLUPS_MS = 8 * 24 * HOUR_MS
Source = Literal["raw", "hourly", "daily", "monthly"]


@dataclass(frozen=True)
class Filters:
    """The tag filters of a request; None filters nothing."""

    site: str | None = None
    lab: str | None = None
    device: str | None = None

    @property
    def tags(self) -> dict[str, str | None]:
        return {SITE: self.site, LAB: self.lab, DEVICE: self.device}

    def without_device(self) -> dict[str, str | None]:
        return {SITE: self.site, LAB: self.lab}

    def matches(self, key: DeviceKey) -> bool:
        site, lab, device = key
        return (
            (not self.site or self.site == site)
            and (not self.lab or self.lab == lab)
            and (not self.device or self.device == device)
        )

    def matches_lab(self, site: str, lab: str) -> bool:
        return (not self.site or self.site == site) and (not self.lab or self.lab == lab)


@dataclass(frozen=True)
class Part:
    """One piece of a window and where its data lives."""

    start_ms: int
    end_ms: int
    source: Source
    # Rolled up per asset and per lab as well (days of the current rollup layout): figures
    # that need no finer key read those, ten times fewer series.
    coarse: bool = True

    @property
    def period(self) -> Period | None:
        """The rollup period read, None for raw points."""
        return None if self.source == "raw" else Period(self.source)


@dataclass(frozen=True)
class ReadPlan:
    """One request's window, filters and calendar, and what is rolled up: made once."""

    start_ms: int
    end_ms: int
    filters: Filters
    calendar: Calendar
    now_ms: int
    rolled_until: int | None = None  # end of the rolled-up hours; None: raw points only
    daily_from: int | None = None  # first local day with daily rollups; None: none usable
    stale_days: frozenset[int] = frozenset()  # days split at other hours: read hourly
    empty_days: frozenset[int] = frozenset()  # rolled-up days without a sample: not read
    seen: frozenset[DeviceKey] = field(default_factory=frozenset)  # devices ever announced
    known: frozenset[DeviceKey] = field(default_factory=frozenset)  # devices with samples, ever
    # Days after ``daily_from`` without rollups per asset and per lab (rolled up by an older
    # collector): read hourly per device.
    old_days: frozenset[int] = frozenset()
    # Per lab, the rollup layout of each rolled-up day with one (``schema.LAYOUT_VERSION``):
    # which session rollups the day has.
    day_layouts: Mapping[tuple[str, str], Mapping[int, int]] = field(default_factory=dict)

    def parts(self, start_ms: int, end_ms: int) -> list[Part]:
        """Whole hours before ``rolled_until`` from rollups, the rest from raw points.

        Of those hours, whole local days from ``daily_from`` on come from daily rollups (the
        collector recomputes a day after each of its hours, so a day whose hours are all
        rolled up is complete) and whole local months from monthly ones, the
        hours around them from hourly ones, and so do the stale days (and their months).
        """
        if self.rolled_until is None:
            return [Part(start_ms, end_ms, "raw")]
        first = -(-start_ms // HOUR_MS) * HOUR_MS
        last = min(end_ms // HOUR_MS * HOUR_MS, self.rolled_until)
        if last <= first:
            return [Part(start_ms, end_ms, "raw")]
        rolled = [Part(first, last, "hourly")]
        if self.daily_from is not None:
            cal = self.calendar
            day_a, day_b = cal.first_day_within(max(first, self.daily_from)), cal.day_of(last)
            if day_a < day_b:
                rolled = [Part(first, day_a, "hourly")]
                self._add_days(rolled, day_a, day_b)
                rolled.append(Part(day_b, last, "hourly"))
        rolled = [p for p in self._coarse(rolled) if not self._empty(p)]
        parts = [Part(start_ms, first, "raw"), *rolled, Part(last, end_ms, "raw")]
        return [p for p in parts if p.end_ms > p.start_ms]

    def _empty(self, part: Part) -> bool:
        """Whether every local day the rolled-up part touches had no sample at all: InfluxDB
        1.6 pays per series even to find nothing (0.1-0.5 s for a window's first hours)."""
        if not self.empty_days:
            return False
        day = self.calendar.day_of(part.start_ms)
        while day < part.end_ms:
            if day not in self.empty_days:
                return False
            day = self.calendar.next_day(day)
        return True

    def _coarse(self, parts: list[Part]) -> list[Part]:
        """Hours before ``daily_from`` were rolled up per device and category only."""
        out = []
        boundary = self.daily_from
        for p in parts:
            if p.source != "hourly" or (boundary is not None and p.start_ms >= boundary):
                out.append(p)
            elif boundary is None or p.end_ms <= boundary:
                out.append(Part(p.start_ms, p.end_ms, "hourly", coarse=False))
            else:
                out += [
                    Part(p.start_ms, boundary, "hourly", False),
                    Part(boundary, p.end_ms, "hourly"),
                ]
        return out

    def _add_days(self, parts: list[Part], day_a: int, day_b: int) -> None:
        """Whole days ``[day_a, day_b)``: whole months monthly, other days daily, stale hourly."""
        cal, stale, old = self.calendar, self.stale_days, self.old_days
        hourly_months = {cal.month_of(d) for d in stale | old}
        day = day_a
        while day < day_b:
            month, after = cal.month_of(day), cal.next_day(day)
            source: Source = "hourly" if day in stale or day in old else "daily"
            coarse = day not in old
            whole_month = month == day and month not in hourly_months
            if whole_month and (month_end := cal.next_month(day)) <= day_b:
                source, after = "monthly", month_end
            last = parts[-1]
            if (last.source, last.coarse, last.end_ms) == (source, coarse, day):
                parts[-1] = Part(last.start_ms, after, source, coarse)
            else:
                parts.append(Part(day, after, source, coarse))
            day = after


def make_plan(
    influx: InfluxV1,
    opening: OpeningHours,
    start_ms: int,
    end_ms: int,
    filters: Filters,
    now_ms: int,
) -> ReadPlan:
    """Read what the request's reads depend on: devices seen, rolled-up hours, usable days."""
    inventory = opening.inventory
    # What the window's report knows is what happened before its end: a device first seen
    # later, or rollups written later, must not change a closed period's figures (its
    # package holds only the window, and verify rebuilds the report from that).
    q = select(agg("last", "online"), source=STATUS).before(end_ms).where_tags(filters.tags)
    seen = frozenset(
        (s.tags[SITE], s.tags[LAB], s.tags[DEVICE]) for s in influx.query(q.group_by(*DEVICE_TAGS))
    )
    sites = {k[0] for k in seen}
    if inventory is not None:
        sites |= {k[0] for k in inventory.equipment if filters.matches(k)}
    registered = inventory.tenures.keys() if inventory is not None else frozenset()
    known = frozenset(_devices_with_samples(influx, filters, start_ms, end_ms, registered))
    plan = ReadPlan(start_ms, end_ms, filters, opening.calendar, now_ms, seen=seen, known=known)
    rolled_until = _rolled_until(influx, now_ms, sites, filters.site)
    if rolled_until is None:
        return plan
    rolled_until = min(rolled_until, -(-end_ms // HOUR_MS) * HOUR_MS)
    daily_from = _daily_from(influx, sites, filters.site)
    labels = _read_labels(influx, opening, start_ms, rolled_until, filters)
    if labels is None:  # cut in another time zone: no day of the rollups is the API's
        daily_from = None
        labels = Labels()
    first = opening.calendar.day_of(max(start_ms, daily_from or start_ms))
    return dataclasses.replace(
        plan,
        rolled_until=rolled_until,
        daily_from=daily_from,
        stale_days=labels.stale if daily_from is not None else frozenset(),
        empty_days=labels.empty if daily_from is not None else frozenset(),
        old_days=frozenset(d for d in labels.old if d >= first) if daily_from else frozenset(),
        day_layouts=labels.layouts,
    )


def _devices_with_samples(
    influx: InfluxV1,
    filters: Filters,
    start_ms: int,
    end_ms: int,
    registered: Collection[DeviceKey],
) -> set[DeviceKey]:
    """Every device with samples in the window. InfluxDB's series index answers by shard, not
    by point, so it also names devices whose samples lie outside the window in a shard that
    overlaps it; those that matter (no asset of the inventory ever had them, so they become
    rows or unregistered identities) are checked point by point."""
    out = set()
    q = influxql.show_series(SAMPLE, filters.tags, start_ms, end_ms)
    for series in influx.query(q):
        for (key,) in series.values:
            tags = dict(pair.split("=", 1) for pair in str(key).split(",")[1:])
            out.add((tags.get(SITE, ""), tags.get(LAB, ""), tags.get(DEVICE, "")))
    doubtful = sorted(k for k in out if k not in registered)
    if not doubtful:
        return out
    counted = (
        select(agg("count", OBSERVED), source=SAMPLE)
        .between(start_ms, end_ms)
        .where_any(doubtful, DEVICE_TAGS)
        .group_by(*DEVICE_TAGS)
    )
    confirmed = {(s.tags[SITE], s.tags[LAB], s.tags[DEVICE]) for s in influx.query(counted)}
    return (out - set(doubtful)) | confirmed


def _time_per_site(
    influx: InfluxV1,
    function: Literal["first", "last"],
    source: Measurement,
    name: str,
    site: str | None,
    since: int = 0,
) -> dict[str, int]:
    """The time of the first or last point of ``source`` per site (or of ``site``)."""
    q = select(agg(function, name), source=source).where(site=site)
    if since > 0:
        q = q.since(since)
    return {
        s.tags.get(SITE, site or ""): int(s.values[0][0])
        for s in influx.query(q if site else q.group_by(SITE))
    }


def _rolled_until(
    influx: InfluxV1, now_ms: int, sites: Collection[str], site: str | None
) -> int | None:
    """End of the rolled-up hours; only closed hours (before the current one) count.

    Collectors may run per site and lag differently, so it is the earliest of the sites'
    last rolled-up hours, and None (raw points only) when a site in ``sites`` has none.
    """
    # The last week first, per lab (150 series for a region where devices are 1,500): InfluxDB
    # looks at every series of every shard for last() over all time.
    recent = now_ms - RECENT_ROLLUPS_MS
    last = _time_per_site(influx, "last", lab_rollup(Period.hourly), SAMPLES, site, since=recent)
    if not last or any(s not in last for s in sites):
        last = _time_per_site(influx, "last", device_rollup(Period.hourly), SAMPLES, site)
    if not last or any(s not in last for s in sites):
        return None
    current = now_ms // HOUR_MS * HOUR_MS
    rolled = min(min(last.values()) + HOUR_MS, current)
    # Hours without a raw sample have nothing to roll up: the last rollup of a Friday evening
    # must not send a Monday's report to a whole weekend of raw points (or a day's sessions
    # to its raw samples, 2 CPU-s of InfluxDB's for a region's day).
    q = select(agg("first", OBSERVED), source=SAMPLE).since(rolled).where(site=site)
    found = [int(s.values[0][0]) for s in influx.query(q) if s.values]
    return max(rolled, min(hour_of(found[0]) if found else current, current))


def _daily_from(influx: InfluxV1, sites: Collection[str], site: str | None) -> int | None:
    """First local day covered by daily rollups of today's layout (for every site), None if
    a site has none.

    Days rolled up before (no daily rollups, or none per asset and per lab yet) are read from
    hourly ones until ``labmeter rollups rebuild`` recomputes them.
    """
    first = _time_per_site(influx, "first", HOURS_DAILY, LAYOUT, site)
    if not first or any(s not in first for s in sites):
        return None
    return max(first.values())


@dataclass(frozen=True)
class Labels:
    """What the days' labels (``rollup_hours_daily``) say about a window's rolled-up days."""

    stale: frozenset[int] = frozenset()  # split at other opening hours than the API's
    empty: frozenset[int] = frozenset()  # no lab had a sample
    old: frozenset[int] = frozenset()  # some site has no rollups per asset and lab of it
    layouts: Mapping[tuple[str, str], Mapping[int, int]] = field(default_factory=dict)


def _read_labels(
    influx: InfluxV1,
    opening: OpeningHours,
    start_ms: int,
    rolled_until: int,
    filters: Filters,
) -> Labels | None:
    """The labels of the window's rolled-up days, read once for usage and sessions; None
    when any day was cut in another time zone than the API's calendar, whose days then do not
    line up with the API's at all.

    A day is stale when a lab's rollups were split at other opening hours than the API's
    inventory states (it was edited, or the collector has none); labs the API does not know
    are not checked for hours: their devices are unregistered and have no denominator to be
    split for. A day is old when a lab's label is of a layout before 2 (no rollups per asset
    and per lab); the collector catches days up from the newest backwards
    (``collector/catchup.py``), so every day after the first one of layout 2 has them, or had
    no sample at all.
    """
    inventory = opening.inventory
    cal = opening.calendar
    first = cal.day_of(start_ms)
    if first >= rolled_until:
        return Labels()
    columns = (col(HOURS_LABEL), col(HOURS_TZ), col(SAMPLES), col(LAYOUT))
    q = select(*columns, source=HOURS_DAILY).between(first, rolled_until)
    stale: set[int] = set()
    busy: set[int] = set()  # days some lab had samples on, or that say nothing about them
    labelled: set[int] = set()
    old: set[int] = set()
    layouts: dict[tuple[str, str], dict[int, int]] = {}
    for series in influx.query(q.where_tags(filters.without_device()).group_by(SITE, LAB)):
        site, lab = series.tags[SITE], series.tags[LAB]
        checked = inventory is not None and (site, lab) in inventory.labs
        with_layout = layouts.setdefault((site, lab), {})
        for day, hours, tz, samples, layout in series.values:
            if (tz or DEFAULT_TZ) != cal.tz:
                return None
            labelled.add(day)
            if samples is None or samples > 0:
                busy.add(day)
            if layout is None or layout < COARSE_LAYOUT:
                old.add(day)
            if layout is not None:
                with_layout[day] = int(layout)
            if checked and day not in stale and hours != opening.label(site, lab, day):
                stale.add(day)
    return Labels(frozenset(stale), frozenset(labelled - busy), frozenset(old), layouts)
