"""Usage facts from InfluxDB over any window, read part by part as the request's plan says
(``api/plan.py``): monthly, daily and hourly rollups for closed, rolled-up time, raw points
for the rest.

Seconds within opening hours (``*_open_s``, see ``labmeter/opening.py``) come from the daily
and monthly rollups when the hours they were computed with are the API's own; otherwise, and
for the hourly and raw parts, from each hour's two halves or each half hour of raw points.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from api.plan import DeviceKey, Part, ReadPlan
from labmeter.influx import InfluxV1, QueryResult
from labmeter.influxql import Select, agg, col, select, sums
from labmeter.opening import OpeningHours
from labmeter.schema import (
    APP,
    APP_USAGE,
    CATEGORY,
    DEVICE,
    DEVICE_TAGS,
    EVENT,
    FACT_TAGS,
    H1_FIELDS,
    HALF_HOUR_MS,
    HOUR_MS,
    IN_USE,
    LAB,
    OBSERVED,
    OPEN_FIELDS,
    PEAK_SEATS,
    RUNNING,
    SAMPLE,
    SITE,
    STATUS,
    TYPE,
    Calendar,
    Period,
    app_rollup,
    base_name,
    device_rollup,
    h1_name,
    seats_rollup,
)

# Only the fields a figure uses: a year's read costs time per field read, not per field stored.
STATE_FIELDS = (IN_USE, "alarm_s", "off_s", OBSERVED, *OPEN_FIELDS)
FactKey = tuple[str, str, str, str, str]  # site, lab, device, kind, category


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


class UsageReader:
    """Usage facts over any part of a request's window, as its plan says where they live;
    ``opening`` splits in-use time at opening hours."""

    def __init__(self, influx: InfluxV1, opening: OpeningHours | None = None) -> None:
        self.influx = influx
        self.opening = opening or OpeningHours(None)

    def _sums(
        self,
        plan: ReadPlan,
        part: Part,
        tags: tuple[str, ...] = FACT_TAGS,
        exclude: Collection[DeviceKey] = (),
        fields: tuple[str, ...] = STATE_FIELDS,
        by_day: bool = False,
    ) -> Iterable[Mapping[str, Any]]:
        """Sums of ``fields`` over one part, per ``tags`` (and per local day if ``by_day``).

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
        by = tuple(dict.fromkeys((SITE, LAB, *tags))) if split_here else tags
        period = part.period
        source = SAMPLE if period is None else device_rollup(period)
        if part.read_as_points:
            q = select(*map(col, read), source=source).group_by(*by)
        elif split_here:
            step = HOUR_MS if part.source == "hourly" else HALF_HOUR_MS
            q = select(*sums(read), source=source).group_by(*by, every_ms=step, fill_none=True)
        elif by_day:
            q = select(*sums(read), source=source).group_by(
                *by, every_ms=24 * HOUR_MS, fill_none=True, zone=plan.calendar.tz
            )
        else:
            q = select(*sums(read), source=source).group_by(*by)
        q = _within(q, plan, part.start_ms, part.end_ms, exclude)
        calendar = plan.calendar if by_day else None
        return self._fold(q, tags, fields, opens, split_here, carries_open, part.source, calendar)

    def _fold(
        self,
        query: Select,
        tags: tuple[str, ...],
        fields: tuple[str, ...],
        opens: list[str],
        split_here: bool,
        carries_open: bool,
        source: str,
        calendar: Calendar | None,
    ) -> Iterable[Mapping[str, Any]]:
        """Sum rows of (time, fields) per ``tags`` (and local day), splitting each row at
        opening hours when asked; column by column, without a dict per row (a report reads
        ~100k rows). Without an inventory, or from daily and monthly points, an open field is
        read from its own column or (every second open) its base field's."""
        out: dict[tuple[Any, ...], dict[str, Any]] = {}
        days: dict[int, int] = {}
        opening = self.opening
        for series in self.influx.query(query):
            col_at = {c: i for i, c in enumerate(series.columns)}
            it = col_at["time"]
            site, lab = series.tags.get(SITE, ""), series.tags.get(LAB, "")
            # Columns added as they are, and open fields split here from (total, first half).
            direct = [(f, col_at[f]) for f in fields if f not in OPEN_FIELDS and f in col_at]
            split: list[tuple[str, int | None, int | None]] = []
            for f in opens:
                base = col_at.get(base_name(f))
                if split_here:
                    split.append((f, base, col_at.get(h1_name(base_name(f)))))
                elif (column := col_at.get(f) if carries_open else base) is not None:
                    direct.append((f, column))
            rows = series.values
            if calendar is None and not split:  # one sum per column
                acc = _acc(out, series.tags, tags, fields, None)
                for f, i in direct:
                    acc[f] += sum(r[i] or 0.0 for r in rows)
                continue
            for r in rows:
                t = r[it]
                day = None
                if calendar is not None:
                    day = days.get(t // HALF_HOUR_MS)
                    if day is None:
                        day = days[t // HALF_HOUR_MS] = calendar.day_of(t)
                acc = _acc(out, series.tags, tags, fields, day)
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

    def facts(self, plan: ReadPlan, start_ms: int, end_ms: int) -> dict[FactKey, Totals]:
        """Seconds per device and stakeholder category over a span of the window."""
        out: dict[FactKey, Totals] = defaultdict(Totals)
        for part in plan.parts(start_ms, end_ms):
            for record in self._sums(plan, part):
                out[_fact_key(record)].add(record)
        return dict(out)

    def period_facts(
        self,
        plan: ReadPlan,
        spans: list[tuple[int, int]],
        tags: tuple[str, ...] = FACT_TAGS,
        exclude: Collection[DeviceKey] = (),
        fields: tuple[str, ...] = STATE_FIELDS,
    ) -> dict[tuple[int, FactKey], Totals]:
        """Like ``facts`` per span (e.g. calendar months), keyed by each span's start.

        Every whole month of every span is read in one query of the monthly rollups' own
        points: InfluxDB 1.6 pays per series and field for each query, whatever its length
        (1.4 s for six fields of a region's 1,500 series), so twelve monthly sums cost twelve
        times one read of twelve points each. The other parts are summed per span.
        """
        out: dict[tuple[int, FactKey], Totals] = defaultdict(Totals)
        starts = [a for a, _ in spans]
        monthly: list[Part] = []
        for a, b in spans:
            for part in plan.parts(a, b):
                if part.source == "monthly":
                    monthly.append(part)
                    continue
                for record in self._sums(plan, part, tags, exclude, fields):
                    out[(a, _fact_key(record))].add(record)
        if monthly:
            self._add_month_points(plan, out, starts, monthly, tags, exclude, fields)
        return dict(out)

    def _add_month_points(
        self,
        plan: ReadPlan,
        out: dict[tuple[int, FactKey], Totals],
        starts: list[int],
        parts: list[Part],
        tags: tuple[str, ...],
        exclude: Collection[DeviceKey],
        fields: tuple[str, ...],
    ) -> None:
        """Add the monthly rollup points inside ``parts`` (one point per month, no sums) to
        the span that holds each."""
        has_open = self.opening.inventory is not None  # else every second counts as open
        source = {f: f if has_open or f not in OPEN_FIELDS else base_name(f) for f in fields}
        read = tuple(dict.fromkeys(source.values()))
        q = select(*map(col, read), source=device_rollup(Period.monthly)).group_by(*tags)
        q = _within(q, plan, parts[0].start_ms, parts[-1].end_ms, exclude)
        for series in self.influx.query(q):
            col_at = {c: i for i, c in enumerate(series.columns)}
            key, it = _fact_key(series.tags), col_at["time"]
            columns = [(f, col_at[source[f]]) for f in fields]
            for r in series.values:
                t = r[it]
                if not any(p.start_ms <= t < p.end_ms for p in parts):
                    continue
                seconds = out[(starts[bisect_right(starts, t) - 1], key)].seconds
                for f, i in columns:
                    seconds[f] += r[i] or 0.0

    def daily_facts(
        self,
        plan: ReadPlan,
        tags: tuple[str, ...] = FACT_TAGS,
        exclude: Collection[DeviceKey] = (),
        fields: tuple[str, ...] = STATE_FIELDS,
    ) -> dict[tuple[int, FactKey], Totals]:
        """Like ``facts`` over the whole window per local day of the plan's calendar (key: the
        day's start in epoch ms).

        ``tags`` narrows the grouping (missing ones are empty in the key): a year per lab and
        category is one query with few rows, where twelve monthly queries per device cost
        twelve passes over every series. ``exclude`` leaves devices out (unregistered ones);
        ``fields`` narrows the sums (each field read costs about as much as the whole query).
        """
        out: dict[tuple[int, FactKey], Totals] = defaultdict(Totals)
        for part in plan.parts(plan.start_ms, plan.end_ms, months=False):
            for record in self._sums(plan, part, tags, exclude, fields, by_day=True):
                out[(int(record["time"]), _fact_key(record))].add(record)
        return dict(out)

    def app_seconds(self, plan: ReadPlan) -> dict[tuple[str, str, str, str], float]:
        """Seconds each app ran, per (site, lab, device, app)."""
        out: dict[tuple[str, str, str, str], float] = defaultdict(float)
        for part in plan.parts(plan.start_ms, plan.end_ms):
            period = part.period
            source = APP_USAGE if period is None else app_rollup(period)
            column = col(RUNNING) if part.read_as_points else agg("sum", RUNNING)
            q = select(column, source=source).group_by(SITE, LAB, DEVICE, APP)
            for series in self.influx.query(_within(q, plan, part.start_ms, part.end_ms)):
                t = series.tags
                i = series.columns.index(RUNNING)
                out[(t[SITE], t[LAB], t[DEVICE], t[APP])] += sum(r[i] or 0.0 for r in series.values)
        return dict(out)

    def peak_seats(self, plan: ReadPlan) -> dict[tuple[str, str], int]:
        """Most devices running each app in the same minute, per (site, app).

        Raw points are counted here, not in InfluxQL: a device counts once per minute however
        many samples it cut in it (a user change cuts one), and the nested subqueries that say
        so in InfluxQL took 50 s on two days of a region's points. The concurrency rollup is
        per site, so a lab or device filter reads raw points for the whole window.
        """
        parts = plan.parts(plan.start_ms, plan.end_ms)
        if plan.filters.lab or plan.filters.device:
            parts = [Part(plan.start_ms, plan.end_ms, "raw")]
        out: dict[tuple[str, str], int] = {}
        for part in parts:
            period = part.period
            if period is not None:
                q = select(agg("max", PEAK_SEATS, "peak"), source=seats_rollup(period))
                q = q.between(part.start_ms, part.end_ms).where(site=plan.filters.site)
                for series in self.influx.query(q.group_by(SITE, APP)):
                    key = (series.tags[SITE], series.tags[APP])
                    out[key] = max(out.get(key, 0), int(series.values[0][1] or 0))
                continue
            q = select(col(RUNNING), source=APP_USAGE).where_field(RUNNING, ">", 0)
            q = _within(q, plan, part.start_ms, part.end_ms).group_by(SITE, LAB, DEVICE, APP)
            minutes: dict[tuple[str, str, int], set[tuple[str, str]]] = defaultdict(set)
            for series in self.influx.query(q):
                tags = series.tags
                device = (tags[LAB], tags[DEVICE])
                for row in series.values:
                    minutes[(tags[SITE], tags[APP], int(row[0]) // 60_000)].add(device)
            for (site, app, _minute), devices in minutes.items():
                out[(site, app)] = max(out.get((site, app), 0), len(devices))
        return out

    def samples(self, plan: ReadPlan) -> list[dict[str, Any]]:
        """Raw samples in time order per device (for sessions): never rolled up."""
        q = select(*map(col, (IN_USE, OBSERVED, "interval_s", "user", CATEGORY)), source=SAMPLE)
        q = _within(q, plan, plan.start_ms, plan.end_ms).group_by(*DEVICE_TAGS)
        return _records(self.influx.query(q))

    def session_events(self, plan: ReadPlan) -> list[dict[str, Any]]:
        """``session_start``/``session_end`` events in time order per device."""
        q = select(*map(col, ("seq", "user", TYPE, CATEGORY)), source=EVENT)
        q = _within(q, plan, plan.start_ms, plan.end_ms).where_in(
            TYPE, ("session_start", "session_end")
        )
        return _records(self.influx.query(q.group_by(*DEVICE_TAGS)))

    def agent_versions(self, plan: ReadPlan) -> dict[DeviceKey, str]:
        q = select(agg("last", "agent"), source=STATUS).since(0)
        q = q.where_tags(plan.filters.tags).group_by(*DEVICE_TAGS)
        return {
            (r[SITE], r[LAB], r[DEVICE]): str(r["agent"])
            for r in _records(self.influx.query(q))
            if r.get("agent")
        }


def _within(
    q: Select, plan: ReadPlan, start_ms: int, end_ms: int, exclude: Collection[DeviceKey] = ()
) -> Select:
    """A span of the plan's window, with its filters, without the ``exclude``d devices."""
    return q.between(start_ms, end_ms).where_tags(plan.filters.tags).excluding(exclude, DEVICE_TAGS)


def _records(results: Iterable[QueryResult]) -> list[dict[str, Any]]:
    return [record for series in results for record in series.records()]


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
        acc = out[key] = {tag: series_tags.get(tag) for tag in tags} | dict.fromkeys(fields, 0.0)
        if day is not None:
            acc["time"] = day
    return acc


def _fact_key(record: Mapping[str, Any]) -> FactKey:
    return tuple(str(record.get(t) or "") for t in FACT_TAGS)  # type: ignore[return-value]
