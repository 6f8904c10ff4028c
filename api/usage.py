"""Usage facts from InfluxDB: daily and hourly rollups for closed, rolled-up time, raw points
for the rest.

A year of raw one-minute samples for a region is too much to scan for a report, so every
read is split in time: ``rollup_*_daily`` measurements cover whole local days, ``rollup_*_hourly``
the whole hours around them, both up to the last rolled-up hour (the collector writes them from
closed hours), and raw ``sample``/``app_usage`` points cover the
unaligned edges and the recent, not yet rolled-up, hours. The split is the same for every
figure, so a number never mixes the two sources for the same hour.

Seconds within opening hours (``*_open_s``, see ``labmeter/opening.py``) come from the daily
rollups when the hours they were computed with are the API's own; otherwise, and for the
hourly and raw parts, from each hour's two halves or each half hour of raw points.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from collector.daily import DAY_TZ, day_of, first_day_within, month_of, next_day, next_month
from labmeter.influx import InfluxV1, all_records, quote_ident, quote_str, tag_filter, time_range
from labmeter.opening import (
    H1_FIELDS,
    HALF_HOUR_MS,
    HOUR_MS,
    OPEN_FIELDS,
    OpeningHours,
    base_name,
    h1_name,
)

POINTS_MAX_MS = 31 * 24 * HOUR_MS  # rollup parts up to this long are read as points
# Only the fields a figure uses: a year's read costs time per field read, not per field stored.
STATE_FIELDS = ("in_use_s", "alarm_s", "off_s", "observed_s", *OPEN_FIELDS)
FACT_TAGS = ("site", "lab", "device", "kind", "category")

Filters = Mapping[str, str | None]


@dataclass(frozen=True)
class Part:
    """One piece of a window and where its data lives: "raw", "hourly", "daily" or "monthly"
    points."""

    start_ms: int
    end_ms: int
    source: str

    def measurement(self, raw: str, rollup: str) -> str:
        """``raw`` for raw points, else the ``rollup_<rollup>_<source>`` measurement."""
        return raw if self.source == "raw" else f"rollup_{rollup}_{self.source}"

    @property
    def read_as_points(self) -> bool:
        """Rollups of up to ``POINTS_MAX_MS``, and months, are read as points and summed in
        Python: InfluxDB 1.6's ``sum()`` costs per series and field whatever the span (a
        5-day edge cost as much as a year of daily points), a plain read about half."""
        return self.source == "monthly" or (
            self.source != "raw" and self.end_ms - self.start_ms <= POINTS_MAX_MS
        )


def split(
    start_ms: int,
    end_ms: int,
    rolled_until_ms: int | None,
    daily_from_ms: int | None = None,
    stale_days: Collection[int] = (),
    months: bool = True,
) -> list[Part]:
    """Whole hours before ``rolled_until_ms`` from rollups; the rest from raw points.

    Of those hours, whole local days from ``daily_from_ms`` on come from daily rollups (the
    collector recomputes a day after each of its hours, so a day whose hours are all rolled
    up is complete) and whole local months of them from monthly ones (``months``), the hours
    around them from hourly ones, and so do ``stale_days``: days whose daily rollups were
    split at other opening hours than the API's (and their months).
    """
    if rolled_until_ms is None:
        return [Part(start_ms, end_ms, "raw")]
    first = -(-start_ms // HOUR_MS) * HOUR_MS
    last = min(end_ms // HOUR_MS * HOUR_MS, rolled_until_ms)
    if last <= first:
        return [Part(start_ms, end_ms, "raw")]
    rolled = [Part(first, last, "hourly")]
    if daily_from_ms is not None:
        day_a, day_b = first_day_within(max(first, daily_from_ms)), day_of(last)
        if day_a < day_b:
            rolled = [Part(first, day_a, "hourly")]
            _add_days(rolled, day_a, day_b, stale_days, months)
            rolled.append(Part(day_b, last, "hourly"))
    parts = [Part(start_ms, first, "raw"), *rolled, Part(last, end_ms, "raw")]
    return [p for p in parts if p.end_ms > p.start_ms]


def _add_days(
    parts: list[Part], day_a: int, day_b: int, stale_days: Collection[int], months: bool
) -> None:
    """Whole days ``[day_a, day_b)``: whole months monthly, other days daily, stale hourly."""
    stale_months = {month_of(d) for d in stale_days}
    day = day_a
    while day < day_b:
        month, after = month_of(day), next_day(day)
        source = "hourly" if day in stale_days else "daily"
        if months and month == day and month not in stale_months and next_month(day) <= day_b:
            source, after = "monthly", next_month(day)
        if parts[-1].source == source and parts[-1].end_ms == day:
            parts[-1] = Part(parts[-1].start_ms, after, source)
        else:
            parts.append(Part(day, after, source))
        day = after


@dataclass
class Totals:
    """Seconds per state plus observed seconds, summed over whatever was grouped."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STATE_FIELDS, 0.0))

    def add(self, record: Mapping[str, Any]) -> None:
        for name in STATE_FIELDS:
            self.seconds[name] += float(record.get(name) or 0.0)

    @property
    def in_use_s(self) -> float:
        return self.seconds["in_use_s"]

    @property
    def observed_s(self) -> float:
        return self.seconds["observed_s"]


FactKey = tuple[str, str, str, str, str]  # site, lab, device, kind, category


class UsageReader:
    """Usage facts over any window; ``opening`` splits in-use time at opening hours."""

    def __init__(self, influx: InfluxV1, opening: OpeningHours | None = None) -> None:
        self.influx = influx
        self.opening = opening or OpeningHours(None)
        # Days whose daily rollups were split at other hours than ours: read from hourly ones.
        self.stale_days: frozenset[int] = frozenset()

    def rolled_until(self, now_ms: int, sites: Collection[str], site: str | None) -> int | None:
        """End of the rolled-up hours; only closed hours (before the current one) count.

        Collectors may run per site and lag differently, so it is the earliest of the sites'
        last rolled-up hours, and None (raw points only) when a site in ``sites`` has none.
        """
        q = "SELECT last(samples) FROM rollup_device_hourly"
        q += f" WHERE site = {quote_str(site)}" if site else " GROUP BY site"
        last = {r.get("site", site): int(r["time"]) for r in all_records(self.influx.query(q))}
        if not last or any(s not in last for s in sites):
            return None
        return min(min(last.values()) + HOUR_MS, now_ms // HOUR_MS * HOUR_MS)

    def daily_from(self, sites: Collection[str], site: str | None) -> int | None:
        """First local day covered by daily rollups (for every site), None if a site has none.

        Hourly rollups written before daily ones existed are not covered by them, so days
        before a site's first daily rollup are read from hourly ones.
        """
        q = 'SELECT first("hours") FROM rollup_hours_daily'
        q += f" WHERE site = {quote_str(site)}" if site else " GROUP BY site"
        first = {r.get("site", site): int(r["time"]) for r in all_records(self.influx.query(q))}
        if not first or any(s not in first for s in sites):
            return None
        return max(first.values())

    def check_daily(self, start_ms: int, end_ms: int, filters: Filters) -> frozenset[int]:
        """Find the days whose daily rollups the collector split at other opening hours than
        the API's inventory states (it was edited, or the collector has none); remember them
        as ``stale_days`` and return them. Labs the API does not know are not checked: their
        devices are unregistered and have no denominator to be split for."""
        inventory = self.opening.inventory
        if inventory is None:
            return self.stale_days
        q = (
            f'SELECT "hours" FROM rollup_hours_daily WHERE {time_range(start_ms, end_ms)}'
            f"{tag_filter({k: v for k, v in filters.items() if k != 'device'})} GROUP BY site, lab"
        )
        stale = set()
        for r in all_records(self.influx.query(q)):
            day = int(r["time"])
            if (r["site"], r["lab"]) not in inventory.labs or day in stale:
                continue
            if r["hours"] != self.opening.label(r["site"], r["lab"], day, next_day(day)):
                stale.add(day)
        self.stale_days = frozenset(stale)
        return self.stale_days

    def _sums(
        self,
        part: Part,
        filters: Filters,
        tags: tuple[str, ...] = FACT_TAGS,
        exclude: Collection[tuple[str, str, str]] = (),
        fields: tuple[str, ...] = STATE_FIELDS,
        day_tz: str | None = None,
    ) -> Iterable[Mapping[str, Any]]:
        """Sums of ``fields`` over one part, per ``tags`` (and per local day of ``day_tz``).

        Daily and monthly points carry their open seconds; hourly points and raw half hours
        are split at opening hours here, so they are read per hour (half hour).
        """
        inventory = self.opening.inventory
        opens = [f for f in fields if f in OPEN_FIELDS]
        plain = tuple(dict.fromkeys(f for f in (*fields, *map(base_name, opens)) if f not in opens))
        carries_open = part.source in ("daily", "monthly") and inventory is not None
        split_here = bool(opens) and inventory is not None and not carries_open
        read = fields if carries_open else plain
        if split_here and part.source == "hourly":
            read += H1_FIELDS
        by = ", ".join(dict.fromkeys(("site", "lab", *tags)) if split_here else tags)
        if part.read_as_points:
            columns = ", ".join(quote_ident(f) for f in read)
            group = by
        else:
            columns = ", ".join(f"sum({quote_ident(f)}) AS {quote_ident(f)}" for f in read)
            if split_here:
                step = HOUR_MS if part.source == "hourly" else HALF_HOUR_MS
                group = f"time({step // 60_000}m), {by} fill(none)"
            elif day_tz:
                group = f"time(1d), {by} fill(none) tz({_quote_tz(day_tz)})"
            else:
                group = by
        measurement = part.measurement("sample", "device")
        q = _select(columns, measurement, part.start_ms, part.end_ms, filters, exclude, group)
        return self._fold(q, tags, fields, opens, split_here, carries_open, part.source, day_tz)

    def _fold(
        self,
        query: str,
        tags: tuple[str, ...],
        fields: tuple[str, ...],
        opens: list[str],
        split_here: bool,
        carries_open: bool,
        source: str,
        day_tz: str | None,
    ) -> Iterable[Mapping[str, Any]]:
        """Sum rows of (time, fields) per ``tags`` (and local day), splitting each row at
        opening hours when asked; column by column, without a dict per row (a report reads
        ~100k rows). Without an inventory, or from daily and monthly points, an open field is
        read from its own column or (every second open) its base field's."""
        out: dict[tuple[Any, ...], dict[str, Any]] = {}
        days: dict[int, int] = {}
        zone = ZoneInfo(day_tz) if day_tz else None
        opening = self.opening
        for series in self.influx.query(query):
            col = {c: i for i, c in enumerate(series.columns)}
            it = col["time"]
            site, lab = series.tags.get("site", ""), series.tags.get("lab", "")
            # Columns added as they are, and open fields split here from (total, first half).
            direct = [(f, col[f]) for f in fields if f not in OPEN_FIELDS and f in col]
            split: list[tuple[str, int | None, int | None]] = []
            for f in opens:
                base = col.get(base_name(f))
                if split_here:
                    split.append((f, base, col.get(h1_name(base_name(f)))))
                elif (column := col.get(f) if carries_open else base) is not None:
                    direct.append((f, column))
            rows = series.values
            if zone is None and not split:  # one sum per column
                acc = self._acc(out, series.tags, tags, fields, None)
                for f, i in direct:
                    acc[f] += sum(r[i] or 0.0 for r in rows)
                continue
            for r in rows:
                t = r[it]
                day = None
                if zone is not None:
                    day = days.get(t // HALF_HOUR_MS)
                    if day is None:
                        day = days[t // HALF_HOUR_MS] = _local_day(t, zone)
                acc = self._acc(out, series.tags, tags, fields, day)
                for f, i in direct:
                    acc[f] += r[i] or 0.0
                for f, base, h1 in split:
                    total = (r[base] or 0.0) if base is not None else 0.0
                    if source != "hourly":  # a raw half hour: open or not
                        acc[f] += total if opening.is_open(site, lab, t) else 0.0
                        continue
                    head = (r[h1] or 0.0) if h1 is not None else 0.0
                    acc[f] += opening.hour_open_s(site, lab, t, total, head)
        return out.values()

    @staticmethod
    def _acc(
        out: dict[tuple[Any, ...], dict[str, Any]],
        series_tags: Mapping[str, str],
        tags: tuple[str, ...],
        fields: tuple[str, ...],
        day: int | None,
    ) -> dict[str, Any]:
        key = (day, *(series_tags.get(tag) for tag in tags))
        acc = out.get(key)
        if acc is None:
            acc = out[key] = {tag: series_tags.get(tag) for tag in tags} | dict.fromkeys(
                fields, 0.0
            )
            if day is not None:
                acc["time"] = day
        return acc

    def facts(
        self,
        start_ms: int,
        end_ms: int,
        filters: Filters,
        rolled_until: int | None,
        daily_from: int | None = None,
    ) -> dict[FactKey, Totals]:
        """Seconds per device and stakeholder category over the window."""
        out: dict[FactKey, Totals] = defaultdict(Totals)
        for part in split(start_ms, end_ms, rolled_until, daily_from, self.stale_days):
            for record in self._sums(part, filters):
                out[_fact_key(record)].add(record)
        return dict(out)

    def period_facts(
        self,
        spans: list[tuple[int, int]],
        filters: Filters,
        rolled_until: int | None,
        daily_from: int | None,
        tags: tuple[str, ...] = FACT_TAGS,
        exclude: Collection[tuple[str, str, str]] = (),
        fields: tuple[str, ...] = STATE_FIELDS,
    ) -> dict[tuple[int, FactKey], Totals]:
        """Like ``daily_facts`` keyed by each span's start (e.g. calendar months).

        Every whole month of every span is read in one query of the monthly rollups' own
        points: InfluxDB 1.6 pays per series and field for each query, whatever its length
        (1.4 s for six fields of a region's 1,500 series), so twelve monthly sums cost twelve
        times one read of twelve points each. The other parts are summed per span.
        """
        out: dict[tuple[int, FactKey], Totals] = defaultdict(Totals)
        starts = [a for a, _ in spans]
        monthly: list[Part] = []
        for a, b in spans:
            for part in split(a, b, rolled_until, daily_from, self.stale_days):
                if part.source == "monthly":
                    monthly.append(part)
                    continue
                for record in self._sums(part, filters, tags, exclude, fields):
                    out[(a, _fact_key(record))].add(record)
        if monthly:
            self._add_month_points(out, starts, monthly, filters, tags, exclude, fields)
        return dict(out)

    def _add_month_points(
        self,
        out: dict[tuple[int, FactKey], Totals],
        starts: list[int],
        parts: list[Part],
        filters: Filters,
        tags: tuple[str, ...],
        exclude: Collection[tuple[str, str, str]],
        fields: tuple[str, ...],
    ) -> None:
        """Add the monthly rollup points inside ``parts`` (one point per month, no sums) to
        the span that holds each."""
        has_open = self.opening.inventory is not None  # else every second counts as open
        source = {f: f if has_open or f not in OPEN_FIELDS else base_name(f) for f in fields}
        read = tuple(dict.fromkeys(source.values()))
        q = _select(
            ", ".join(quote_ident(f) for f in read), "rollup_device_monthly",
            parts[0].start_ms, parts[-1].end_ms, filters, exclude, ", ".join(tags),
        )  # fmt: skip
        for series in self.influx.query(q):
            col = {c: i for i, c in enumerate(series.columns)}
            key, it = _fact_key(series.tags), col["time"]
            columns = [(f, col[source[f]]) for f in fields]
            for r in series.values:
                t = r[it]
                if not any(p.start_ms <= t < p.end_ms for p in parts):
                    continue
                seconds = out[(starts[bisect_right(starts, t) - 1], key)].seconds
                for f, i in columns:
                    seconds[f] += r[i] or 0.0

    def daily_facts(
        self,
        start_ms: int,
        end_ms: int,
        filters: Filters,
        rolled_until: int | None,
        tz: str,
        tags: tuple[str, ...] = FACT_TAGS,
        exclude: Collection[tuple[str, str, str]] = (),
        fields: tuple[str, ...] = STATE_FIELDS,
        daily_from: int | None = None,
    ) -> dict[tuple[int, FactKey], Totals]:
        """Like ``facts`` per local calendar day (key: the day's start in epoch ms).

        ``tags`` narrows the grouping (missing ones are empty in the key): a year per lab and
        category is one query with few rows, where twelve monthly queries per device cost
        twelve passes over every series. ``exclude`` leaves devices out (unregistered ones);
        ``fields`` narrows the sums (each field read costs about as much as the whole query).
        Daily rollups are local days of ``DAY_TZ``: read only when ``tz`` is that zone.
        """
        out: dict[tuple[int, FactKey], Totals] = defaultdict(Totals)
        if tz != DAY_TZ:
            daily_from = None
        for part in split(start_ms, end_ms, rolled_until, daily_from, self.stale_days, False):
            for record in self._sums(part, filters, tags, exclude, fields, day_tz=tz):
                out[(int(record["time"]), _fact_key(record))].add(record)
        return dict(out)

    def app_seconds(
        self,
        start_ms: int,
        end_ms: int,
        filters: Filters,
        rolled_until: int | None,
        daily_from: int | None = None,
    ) -> dict[tuple[str, str, str, str], float]:
        """Seconds each app ran, per (site, lab, device, app)."""
        out: dict[tuple[str, str, str, str], float] = defaultdict(float)
        for part in split(start_ms, end_ms, rolled_until, daily_from):
            q = _select(
                "running_s" if part.read_as_points else "sum(running_s) AS running_s",
                part.measurement("app_usage", "app"), part.start_ms, part.end_ms, filters, (),
                "site, lab, device, app",
            )  # fmt: skip
            for series in self.influx.query(q):
                t = series.tags
                i = series.columns.index("running_s")
                out[(t["site"], t["lab"], t["device"], t["app"])] += sum(
                    r[i] or 0.0 for r in series.values
                )
        return dict(out)

    def peak_seats(
        self,
        start_ms: int,
        end_ms: int,
        filters: Filters,
        rolled_until: int | None,
        daily_from: int | None = None,
    ) -> dict[tuple[str, str], int]:
        """Most devices running each app in the same minute, per (site, app).

        Raw points are counted here, not in InfluxQL: a device counts once per minute however
        many samples it cut in it (a user change cuts one), and the nested subqueries that say
        so in InfluxQL took 50 s on two days of a region's points. The concurrency rollup is
        per site, so a lab or device filter reads raw points for the whole window.
        """
        if filters.get("lab") or filters.get("device"):
            rolled_until = None
        out: dict[tuple[str, str], int] = {}
        for part in split(start_ms, end_ms, rolled_until, daily_from):
            window = time_range(part.start_ms, part.end_ms)
            if part.source != "raw":
                seats = part.measurement("", "app_concurrency")
                q = (
                    f"SELECT max(peak_seats) AS peak FROM {seats} "
                    f"WHERE {window}{tag_filter({'site': filters.get('site')})} GROUP BY site, app"
                )
                for r in all_records(self.influx.query(q)):
                    key = (r["site"], r["app"])
                    out[key] = max(out.get(key, 0), int(r["peak"] or 0))
                continue
            q = (
                f"SELECT running_s FROM app_usage WHERE running_s > 0 AND {window}"
                f"{tag_filter(filters)} GROUP BY site, lab, device, app"
            )
            minutes: dict[tuple[str, str, int], set[tuple[str, str]]] = defaultdict(set)
            for series in self.influx.query(q):
                tags = series.tags
                device = (tags["lab"], tags["device"])
                for row in series.values:
                    minutes[(tags["site"], tags["app"], int(row[0]) // 60_000)].add(device)
            for (site, app, _minute), devices in minutes.items():
                out[(site, app)] = max(out.get((site, app), 0), len(devices))
        return out

    def samples(self, start_ms: int, end_ms: int, filters: Filters) -> list[dict[str, Any]]:
        """Raw samples in time order per device (for sessions): never rolled up."""
        q = (
            'SELECT in_use_s, observed_s, interval_s, "user", "category" FROM sample WHERE '
            f"{time_range(start_ms, end_ms)}{tag_filter(filters)} GROUP BY site, lab, device"
        )
        return all_records(self.influx.query(q))

    def session_events(self, start_ms: int, end_ms: int, filters: Filters) -> list[dict[str, Any]]:
        """``session_start``/``session_end`` events in time order per device."""
        q = (
            'SELECT seq, "user", "type", "category" FROM event WHERE '
            f"{time_range(start_ms, end_ms)}{tag_filter(filters)} AND "
            "(\"type\" = 'session_start' OR \"type\" = 'session_end') GROUP BY site, lab, device"
        )
        return all_records(self.influx.query(q))

    def agent_versions(self, filters: Filters) -> dict[tuple[str, str, str], str]:
        q = (
            "SELECT last(agent) AS agent FROM status "
            f"WHERE time > 0{tag_filter(filters)} GROUP BY site, lab, device"
        )
        return {
            (r["site"], r["lab"], r["device"]): str(r["agent"])
            for r in all_records(self.influx.query(q))
            if r.get("agent")
        }


def _fact_key(record: Mapping[str, Any]) -> FactKey:
    return tuple(str(record.get(t) or "") for t in FACT_TAGS)  # type: ignore[return-value]


def _select(
    columns: str,
    measurement: str,
    start_ms: int,
    end_ms: int,
    filters: Filters,
    exclude: Collection[tuple[str, str, str]],
    group: str,
) -> str:
    return (
        f"SELECT {columns} FROM {measurement} WHERE {time_range(start_ms, end_ms)}"
        f"{tag_filter(filters)}{_exclude(exclude)} GROUP BY {group}"
    )


def _exclude(devices: Collection[tuple[str, str, str]]) -> str:
    return "".join(
        f" AND (site != {quote_str(s)} OR lab != {quote_str(lab)} OR device != {quote_str(d)})"
        for s, lab, d in devices
    )


def _quote_tz(tz: str) -> str:
    return "'" + tz.replace("'", "") + "'"


def _local_day(ts_ms: int, zone: ZoneInfo) -> int:
    """Start (epoch ms) of the local day of ``zone`` that holds ``ts_ms``."""
    local = datetime.fromtimestamp(ts_ms / 1000, zone).date()
    return int(datetime.combine(local, time(), zone).timestamp() * 1000)
