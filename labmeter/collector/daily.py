"""Daily rollups, recomputed from the hourly rollups of one local calendar day.

A year's report summed over hourly rollups still reads ~3,400 points per device; per day it
reads ~260. A day is a local day of the collector's calendar (``labmeter.schema.Calendar``:
the inventory's time zone), not the UTC day: the API splits available time and its trends by
local days and months, and a UTC day would straddle two of them. The inventory's zones are
whole hours from UTC, so a local day is made of whole UTC hours (23, 24 or 25). Points are
stamped at the day's local midnight and carry the hourly rollups' tags and fields, so the
daily device, app and seat rollups read like their hourly counterparts (peak seats = the
day's highest hourly peak). Like those, a day is recomputed from InfluxDB, never from this
collector's stream, so recomputing is idempotent and several collectors converge.

Each day also gets its session rollups (``collector/sessions.py``), read from the raw samples
and events, since the hourly rollups hold no pseudonym, and its busy rollups (``busy_lines``):
per lab, kind and hour the devices busy at once, from the same hourly points per asset.

After a day, its local month is recomputed from the month's daily rollups (stamped at the
month's local midnight, open seconds included): a year then reads 12 points per series
instead of 365, which took the yearly report's largest query from 2.4 s to ~0.1 s on a
region's year.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Protocol

from labmeter.collector import sessions
from labmeter.influx import FieldValue, LineWriter, QueryResult, line
from labmeter.influxql import STAR, Select, agg, col, select, sums
from labmeter.opening import OpeningHours
from labmeter.schema import (
    APP_ASSET_TAGS,
    APP_TAGS,
    ASSET_TAGS,
    BUSY,
    BUSY_DEVICES,
    BUSY_HOUR_S,
    BUSY_TAGS,
    FACT_TAGS,
    HOUR_MS,
    HOURS_DAILY,
    HOURS_LABEL,
    HOURS_TZ,
    IN_USE,
    LAB,
    LAB_TAGS,
    LAYOUT,
    LAYOUT_VERSION,
    OPEN_FIELDS,
    PEAK_SEATS,
    RUNNING,
    SAMPLES,
    SEAT_HOURS,
    SEAT_TAGS,
    SECONDS_FIELDS,
    SESSION_PERIODS,
    SITE,
    SPLIT_FIELDS,
    Period,
    app_asset_rollup,
    app_rollup,
    asset_rollup,
    busy_field,
    busy_level,
    busy_rollup,
    device_rollup,
    h1_name,
    lab_rollup,
    open_name,
    seats_rollup,
)


class Reader(Protocol):
    def query(self, influxql: Select | str, *, epoch: str = "ms") -> list[QueryResult]: ...


# Lines per write of a recompute: a month of a region's days is some 100,000 lines, which
# one request made InfluxDB 1.6 time out (HTTP 500 "timeout") on a busy machine.
WRITE_SLICE = 10_000


def write_sliced(writer: LineWriter, lines: list[str]) -> None:
    """Write ``lines`` in requests of at most ``WRITE_SLICE`` lines."""
    for n in range(0, len(lines), WRITE_SLICE):
        writer.write_lines(lines[n : n + WRITE_SLICE])


class CoarseSums:
    """Device-and-category points summed per asset and per lab and category, and app points
    per device: the coarser rollups a long read takes (``labmeter/schema.py``). Summed here
    from the finer points just computed, so all of them agree to the last digit."""

    def __init__(self) -> None:
        self.assets: dict[tuple[int, tuple[str, ...]], dict[str, float]] = {}
        self.labs: dict[tuple[int, tuple[str, ...]], dict[str, float]] = {}
        self.apps: dict[tuple[int, tuple[str, ...]], dict[str, float]] = {}

    @staticmethod
    def _add(
        into: dict[tuple[int, tuple[str, ...]], dict[str, float]],
        key: tuple[int, tuple[str, ...]],
        fields: dict[str, FieldValue],
    ) -> None:
        acc = into.setdefault(key, dict.fromkeys(fields, 0.0))
        for name, value in fields.items():
            acc[name] += float(value)

    def device(self, tags: dict[str, str], t: int, fields: dict[str, FieldValue]) -> None:
        self._add(self.assets, (t, tuple(tags.get(k, "") for k in ASSET_TAGS)), fields)
        self._add(self.labs, (t, tuple(tags.get(k, "") for k in LAB_TAGS)), fields)

    def app(self, tags: dict[str, str], t: int, fields: dict[str, FieldValue]) -> None:
        self._add(self.apps, (t, tuple(tags.get(k, "") for k in APP_ASSET_TAGS)), fields)

    def lines(self, period: Period) -> list[str]:
        out = []
        for into, measurement in (
            (self.assets, asset_rollup(period)),
            (self.labs, lab_rollup(period)),
            (self.apps, app_asset_rollup(period)),
        ):
            for (t, key), fields in sorted(into.items()):
                tags = dict(zip(measurement.tags, key, strict=True))
                values: dict[str, FieldValue] = {
                    k: int(v) if k == SAMPLES else float(v) for k, v in fields.items()
                }
                out.append(line(measurement.name, tags, values, t))
        return out


def _scoped(query: Select, start_ms: int, end_ms: int, site: str) -> Select:
    """The window, and the collector's own site unless it serves every site (``+``)."""
    return query.between(start_ms, end_ms).where(site=None if site == "+" else site)


def daily_lines(
    reader: Reader, first_day_ms: int, end_ms: int, site: str, opening: OpeningHours
) -> list[str]:
    """The daily rollup points of the local days from ``first_day_ms`` to ``end_ms`` (a day
    start), summed from their hourly rollups; InfluxDB's ``tz()`` buckets are those days.

    The seconds within opening hours are summed here from each hour's halves, and every lab
    with points that day gets a ``rollup_hours_daily`` point naming the hours and the zone.
    """
    calendar = opening.calendar

    def per_day(query: Select, *tags: str) -> Select:
        return _scoped(query, first_day_ms, end_ms, site).group_by(
            *tags, every_ms=24 * HOUR_MS, fill_none=True, zone=calendar.tz
        )

    daily = device_rollup(Period.daily)
    lines: list[str] = []
    totals = CoarseSums()
    per_hour = CoarseSums()  # the hours per asset and per lab, from the same hourly points
    labs: dict[tuple[str, str], dict[int, int]] = {}  # lab -> day -> samples
    for (tags, day), fields in _days(reader, first_day_ms, end_ms, site, opening, per_hour):
        lines.append(line(daily.name, tags, fields, day))
        totals.device(tags, day, fields)
        per_day_samples = labs.setdefault((tags[SITE], tags[LAB]), {})
        per_day_samples[day] = per_day_samples.get(day, 0) + int(fields[SAMPLES])
    # Every lab of the inventory is labelled for every day, with data or without: a day the
    # collector computed and found empty is known to be so, and read from its (empty) daily
    # rollups rather than from the hourly ones of every device.
    if opening.inventory is not None:
        all_days, day = [], first_day_ms
        while day < end_ms:
            all_days.append(day)
            day = calendar.next_day(day)
        for site_id, lab in opening.inventory.labs:
            if site in ("+", site_id):
                counted = labs.setdefault((site_id, lab), {})
                for day in all_days:
                    counted.setdefault(day, 0)
    for (site_id, lab), days in sorted(labs.items()):
        for day, samples in sorted(days.items()):
            hours = opening.label(site_id, lab, day)
            label: dict[str, FieldValue] = {
                HOURS_LABEL: hours,
                HOURS_TZ: calendar.tz,
                LAYOUT: LAYOUT_VERSION,
                SAMPLES: samples,  # 0: the day had nothing to read
            }
            lines.append(line(HOURS_DAILY.name, {SITE: site_id, LAB: lab}, label, day))
    q = select(col(RUNNING), source=app_rollup(Period.hourly))
    apps: dict[tuple[tuple[tuple[str, str], ...], int], float] = defaultdict(float)
    for series in reader.query(_scoped(q, first_day_ms, end_ms, site).group_by(*APP_TAGS)):
        key = tuple(sorted(series.tags.items()))
        for t, value in series.values:
            per_hour.app(series.tags, t, {RUNNING: float(value or 0.0)})
            apps[(key, calendar.day_of(t))] += float(value or 0.0)
    for (key, day), seconds in sorted(apps.items()):
        running: dict[str, FieldValue] = {RUNNING: seconds}
        lines.append(line(app_rollup(Period.daily).name, dict(key), running, day))
        totals.app(dict(key), day, running)
    q = select(agg("max", PEAK_SEATS), agg("sum", SEAT_HOURS), source=seats_rollup(Period.hourly))
    for series in reader.query(per_day(q, *SEAT_TAGS)):
        for rec in series.records():
            seats: dict[str, FieldValue] = {
                PEAK_SEATS: int(rec[PEAK_SEATS] or 0),
                SEAT_HOURS: float(rec[SEAT_HOURS] or 0.0),
            }
            lines.append(line(seats_rollup(Period.daily).name, series.tags, seats, rec["time"]))
    begun = sessions.day_lines(reader, first_day_ms, end_ms, site, calendar)
    busy = busy_lines(per_hour.assets, opening)
    return lines + totals.lines(Period.daily) + per_hour.lines(Period.hourly) + begun + busy


def busy_lines(
    assets: dict[tuple[int, tuple[str, ...]], dict[str, float]], opening: OpeningHours
) -> list[str]:
    """The busy rollups of the hours in ``assets`` (hourly points per asset, keyed by hour
    and ``ASSET_TAGS``) and of their local days: per lab and kind, each hour's busy devices
    and devices with samples; each day's open seconds of the hours with at least k busy, for
    every k up to the most devices seen in one of its hours (zeros included, so that a
    recompute that finds fewer busy devices overwrites every field it wrote before)."""
    hours: dict[tuple[int, tuple[str, ...]], list[int]] = {}
    for (hour, (site, lab, _device, kind)), point in assets.items():
        acc = hours.setdefault((hour, (site, lab, kind)), [0, 0])
        acc[0] += point.get(IN_USE, 0.0) >= BUSY_HOUR_S
        acc[1] += 1
    calendar = opening.calendar
    hourly, daily = busy_rollup(Period.hourly).name, busy_rollup(Period.daily).name
    lines: list[str] = []
    seen: dict[tuple[int, tuple[str, ...]], int] = {}  # (day, key) -> most devices in an hour
    open_s: dict[tuple[int, tuple[str, ...]], list[float]] = {}  # (day, key) -> per k
    day_of: dict[int, int] = {}
    for (hour, key), (busy, devices) in sorted(hours.items()):
        tags = dict(zip(BUSY_TAGS, key, strict=True))
        lines.append(line(hourly, tags, {BUSY: busy, BUSY_DEVICES: devices}, hour))
        day = day_of.get(hour)
        if day is None:
            day = day_of[hour] = calendar.day_of(hour)
        seen[(day, key)] = max(seen.get((day, key), 0), devices)
        acc_s = open_s.setdefault((day, key), [])
        # An hour's open seconds: its halves within the lab's opening hours.
        opened = opening.hour_open_s(key[0], key[1], hour, 3600.0, 1800.0)
        acc_s.extend([0.0] * (busy - len(acc_s)))
        for k in range(busy):
            acc_s[k] += opened
    for (day, key), devices in sorted(seen.items()):
        found = open_s.get((day, key), [])
        levels: dict[str, FieldValue] = {
            busy_field(k): found[k - 1] if k <= len(found) else 0.0 for k in range(1, devices + 1)
        }
        lines.append(line(daily, dict(zip(BUSY_TAGS, key, strict=True)), levels, day))
    return lines


def busy_day_lines(
    reader: Reader, first_day_ms: int, end_ms: int, site: str, opening: OpeningHours
) -> list[str]:
    """The busy rollups of the local days from ``first_day_ms`` to ``end_ms``, from their
    hourly rollups per asset: for days rolled up before busy rollups existed, whose raw
    samples need not be read again."""
    q = select(col(IN_USE), source=asset_rollup(Period.hourly))
    assets: dict[tuple[int, tuple[str, ...]], dict[str, float]] = {}
    for series in reader.query(_scoped(q, first_day_ms, end_ms, site).group_by(*ASSET_TAGS)):
        key = tuple(series.tags[t] for t in ASSET_TAGS)
        for t, in_use in series.values:
            assets[(int(t), key)] = {IN_USE: float(in_use or 0.0)}
    return busy_lines(assets, opening)


def monthly_lines(reader: Reader, month_ms: int, site: str, opening: OpeningHours) -> list[str]:
    """The monthly rollup points of the local month starting at ``month_ms``, summed from
    its daily rollups (peak seats: the month's highest daily peak)."""
    end_ms = opening.calendar.next_month(month_ms)
    lines: list[str] = []
    totals = CoarseSums()
    summed = (*SECONDS_FIELDS, *OPEN_FIELDS)
    q = select(*sums(summed), agg("sum", SAMPLES), source=device_rollup(Period.daily))
    for series in reader.query(_scoped(q, month_ms, end_ms, site).group_by(*FACT_TAGS)):
        rec = series.records()[0]
        fields: dict[str, FieldValue] = {f: float(rec[f] or 0.0) for f in summed}
        fields[SAMPLES] = int(rec[SAMPLES] or 0)
        lines.append(line(device_rollup(Period.monthly).name, series.tags, fields, month_ms))
        totals.device(series.tags, month_ms, fields)
    q = select(agg("sum", RUNNING), source=app_rollup(Period.daily))
    for series in reader.query(_scoped(q, month_ms, end_ms, site).group_by(*APP_TAGS)):
        running: dict[str, FieldValue] = {RUNNING: float(series.records()[0][RUNNING] or 0.0)}
        lines.append(line(app_rollup(Period.monthly).name, series.tags, running, month_ms))
        totals.app(series.tags, month_ms, running)
    q = select(agg("max", PEAK_SEATS), agg("sum", SEAT_HOURS), source=seats_rollup(Period.daily))
    for series in reader.query(_scoped(q, month_ms, end_ms, site).group_by(*SEAT_TAGS)):
        rec = series.records()[0]
        seats: dict[str, FieldValue] = {
            PEAK_SEATS: int(rec[PEAK_SEATS] or 0),
            SEAT_HOURS: float(rec[SEAT_HOURS] or 0.0),
        }
        lines.append(line(seats_rollup(Period.monthly).name, series.tags, seats, month_ms))
    begun = sessions.month_lines(reader, month_ms, site, opening.calendar)
    busy = busy_month_lines(reader, month_ms, end_ms, site)
    return lines + totals.lines(Period.monthly) + begun + busy


def busy_month_lines(reader: Reader, month_ms: int, end_ms: int, site: str) -> list[str]:
    """The month's busy rollups: its days' open seconds per level summed, every level any
    day had (zeros included)."""
    q = select(col(STAR), source=busy_rollup(Period.daily))
    lines = []
    for series in reader.query(_scoped(q, month_ms, end_ms, site).group_by(*BUSY_TAGS)):
        # SELECT * names every level of the measurement: keep those this series has.
        levels = [
            (i, c)
            for i, c in enumerate(series.columns)
            if busy_level(c) is not None and any(row[i] is not None for row in series.values)
        ]
        fields: dict[str, FieldValue] = {
            c: float(sum(row[i] or 0.0 for row in series.values)) for i, c in levels
        }
        if fields:
            lines.append(line(busy_rollup(Period.monthly).name, series.tags, fields, month_ms))
    return lines


def _days(
    reader: Reader,
    start_ms: int,
    end_ms: int,
    site: str,
    opening: OpeningHours,
    per_hour: CoarseSums,
) -> list[tuple[tuple[dict[str, str], int], dict[str, FieldValue]]]:
    """Each series' hourly points summed per local day, with the seconds within opening hours
    from each hour's two halves; the same points summed per asset and per lab into
    ``per_hour``. Summed here rather than by InfluxDB's ``GROUP BY time(1d) tz()``, which
    took minutes over a region's year."""
    out: dict[tuple[tuple[tuple[str, str], ...], int], dict[str, float]] = {}
    days: dict[int, int] = {}
    fields = device_rollup(Period.hourly).fields
    summed = (*SECONDS_FIELDS, SAMPLES)
    q = select(*map(col, fields), source=device_rollup(Period.hourly))
    for series in reader.query(_scoped(q, start_ms, end_ms, site).group_by(*FACT_TAGS)):
        key = tuple(sorted(series.tags.items()))
        site_id, lab = series.tags[SITE], series.tags[LAB]
        at = {c: i for i, c in enumerate(series.columns)}
        for row in series.values:
            hour = int(row[at["time"]])
            point = {f: float(row[at[f]] or 0.0) for f in fields}
            per_hour.device(series.tags, hour, dict(point))
            day = days.get(hour // HOUR_MS)
            if day is None:
                day = days[hour // HOUR_MS] = opening.calendar.day_of(hour)
            acc = out.get((key, day))
            if acc is None:
                acc = out[(key, day)] = dict.fromkeys((*summed, *OPEN_FIELDS), 0.0)
            for name in summed:
                acc[name] += point[name]
            for name in SPLIT_FIELDS:
                acc[open_name(name)] += opening.hour_open_s(
                    site_id, lab, hour, point[name], point[h1_name(name)]
                )
    return [
        ((dict(key), day), {k: int(v) if k == SAMPLES else v for k, v in fields.items()})
        for (key, day), fields in sorted(out.items())
    ]


def coarse_lines(reader: Reader, start_ms: int, end_ms: int, period: Period) -> list[str]:
    """The per-asset and per-lab rollups of ``period`` in [start, end), summed again from the
    device, app and session rollups there: what ``daily_lines`` and ``monthly_lines`` write
    beside them, for a database that holds the finer rollups only (a period's evidence)."""
    sums = CoarseSums()
    device = device_rollup(period)
    q = select(*map(col, device.fields), source=device)
    for series in reader.query(q.between(start_ms, end_ms).group_by(*FACT_TAGS)):
        at = {c: i for i, c in enumerate(series.columns)}
        for row in series.values:
            fields = {f: float(row[at[f]] or 0.0) for f in device.fields}
            sums.device(series.tags, int(row[at["time"]]), dict(fields))
    q = select(col(RUNNING), source=app_rollup(period))
    for series in reader.query(q.between(start_ms, end_ms).group_by(*APP_TAGS)):
        for t, value in series.values:
            sums.app(series.tags, int(t), {RUNNING: float(value or 0.0)})
    begun = (
        sessions.coarse_lines(reader, start_ms, end_ms, period) if period in SESSION_PERIODS else []
    )
    return sums.lines(period) + begun


def rederive(reader: Reader, writer: LineWriter, start_ms: int, end_ms: int) -> int:
    """Every per-asset and per-lab rollup point in [start, end) summed again from the device
    and app rollups there (``coarse_lines``), hours a month at a time; the points written."""
    written = 0
    for period in Period:
        step = 31 * 24 * HOUR_MS if period is Period.hourly else end_ms - start_ms
        t = start_ms
        while t < end_ms:
            lines = coarse_lines(reader, t, min(t + step, end_ms), period)
            write_sliced(writer, lines)
            written += len(lines)
            t += step
    return written


def backfill(
    reader: Reader,
    writer: LineWriter,
    start_ms: int,
    end_ms: int,
    site: str,
    opening: OpeningHours,
    progress: Callable[[int, int], None] = lambda _done, _end: None,
) -> int:
    """Daily and monthly rollups for every local month touching [start, end) that has hourly
    rollups.

    For a database whose hourly rollups predate the daily ones, or days split at opening
    hours that the inventory no longer states (a month per query: one query per day took
    minutes for a region's year); returns the points written.
    """
    written = 0
    calendar = opening.calendar
    month = calendar.month_of(start_ms)
    while month < end_ms:
        after = calendar.next_month(month)
        lines = daily_lines(reader, month, after, site, opening)
        if lines:
            write_sliced(writer, lines)
            written += len(lines)
            months = monthly_lines(reader, month, site, opening)
            write_sliced(writer, months)
            written += len(months)
        month = after
        progress(min(month, end_ms), end_ms)
    return written
