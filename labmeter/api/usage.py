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
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from labmeter import sessions
from labmeter.api.plan import Part, ReadPlan
from labmeter.influx import InfluxV1, QueryResult
from labmeter.influxql import Select, agg, col, select, sums
from labmeter.opening import OpeningHours
from labmeter.schema import (
    APP,
    APP_ASSET_TAGS,
    APP_USAGE,
    ASSET_TAGS,
    CATEGORY,
    CROSSCHECK_CONFLICT,
    DEVICE,
    DEVICE_METRICS,
    DEVICE_TAGS,
    FACT_TAGS,
    H1_FIELDS,
    HALF_HOUR_MS,
    HOUR_MS,
    IN_USE,
    LAB,
    LAB_TAGS,
    OBSERVED,
    OPEN_FIELDS,
    PEAK_SEATS,
    RUNNING,
    SAMPLE,
    SAMPLES,
    SITE,
    STATUS,
    DeviceKey,
    Measurement,
    Period,
    app_asset_rollup,
    app_rollup,
    asset_rollup,
    base_name,
    device_rollup,
    h1_name,
    lab_rollup,
    seats_rollup,
)

# Only the fields a figure uses: a year's read costs time per field read, not per field stored.
STATE_FIELDS = (IN_USE, "setup_s", "alarm_s", "off_s", OBSERVED, *OPEN_FIELDS)
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


class View(StrEnum):
    """The key usage facts are kept by: the finest that a figure needs is the cheapest read."""

    fact = "fact"  # per device and stakeholder category
    asset = "asset"  # per device, every category together
    lab = "lab"  # per lab and category, every device together


VIEW_TAGS = {View.fact: FACT_TAGS, View.asset: ASSET_TAGS, View.lab: LAB_TAGS}
Spans = Sequence[tuple[int, int]]
Facts = dict[tuple[int, FactKey], Totals]  # (the span's start, key) -> seconds


def _rollup(view: View, period: Period) -> Measurement:
    if view is View.asset:
        return asset_rollup(period)
    return lab_rollup(period) if view is View.lab else device_rollup(period)


class UsageReader:
    """Usage facts over any spans of a request's window, as its plan says where they live;
    ``opening`` splits in-use time at opening hours."""

    def __init__(self, influx: InfluxV1, opening: OpeningHours | None = None) -> None:
        self.influx = influx
        self.opening = opening or OpeningHours(None)

    def facts(
        self,
        plan: ReadPlan,
        spans: Spans,
        view: View = View.fact,
        exclude: Collection[DeviceKey] = (),
        fields: tuple[str, ...] = STATE_FIELDS,
        categories: Collection[str] = (),
    ) -> Facts:
        """Seconds per span (e.g. each calendar month, or the whole window) and per key of
        ``view``; ``exclude`` leaves devices out (unregistered ones), ``categories`` keeps
        only those (none: all); ``fields`` narrows the sums (each field read costs about as
        much as the whole query).

        Daily and monthly rollups are read as points, every span's in one query per period:
        InfluxDB 1.6 pays per series and field for each query whatever its length, and
        grouping a year by local day in InfluxDB (``GROUP BY time(1d) tz()``) took 32 s on a
        region's daily points where reading them took 0.5 s. Raw and hourly parts, the edges
        and the recent hours, are summed part by part.
        """
        if categories and view is View.asset:
            raise ValueError("per-asset rollups have no category to select")
        out: Facts = defaultdict(Totals)
        points: dict[tuple[Period, bool], list[tuple[int, Part]]] = defaultdict(list)
        for a, b in spans:
            for part in plan.parts(a, b):
                period = part.period
                if period is not None:
                    points[(period, part.coarse)].append((a, part))
                    continue
                for record in self._sums(plan, part, view, exclude, fields, categories):
                    out[(a, _fact_key(record))].add(record)
        starts = [a for a, _ in spans]
        for (period, coarse), parts in points.items():
            read = view if coarse else View.fact  # older hours: per device and category only
            for run in _runs(parts):
                self._add_points(
                    plan, out, starts, period, run, view, read, exclude, fields, categories
                )
        return dict(out)

    def _add_points(
        self,
        plan: ReadPlan,
        out: Facts,
        starts: list[int],
        period: Period,
        parts: list[tuple[int, Part]],
        view: View,
        read: View,
        exclude: Collection[DeviceKey],
        fields: tuple[str, ...],
        categories: Collection[str],
    ) -> None:
        """Add the rollup points inside ``parts`` to the span that holds each, per key of
        ``view``, reading the rollups of ``read`` (``view``'s own, or finer ones).

        Daily and monthly points carry their seconds within opening hours; hourly ones are
        split here from each hour's first half. Per-lab rollups count every device of the
        lab: a device filter reads finer rollups instead, and excluded devices are read apart
        and taken away.
        """
        has_open = self.opening.inventory is not None  # else every second counts as open
        hourly = period is Period.hourly
        source = {
            f: base_name(f) if f in OPEN_FIELDS and (hourly or not has_open) else f for f in fields
        }
        heads = {f: h1_name(base_name(f)) for f in fields if f in OPEN_FIELDS} if hourly else {}
        split = hourly and has_open
        first, last = min(p.start_ms for _, p in parts), max(p.end_ms for _, p in parts)
        within = {a: [p for s, p in parts if s == a] for a, _ in parts}
        by_lab = read is View.lab and not plan.filters.device
        if read is View.lab and not by_lab:
            read = View.fact
        # Taking excluded devices away can leave a key that only they had: counted by samples.
        counted = by_lab and bool(exclude)
        wanted = (*source.values(), *(heads.values() if split else ()), *[SAMPLES] * counted)
        columns = tuple(map(col, dict.fromkeys(wanted)))
        samples: dict[tuple[int, FactKey], float] = defaultdict(float)
        before = set(out)
        opening = self.opening
        measurement = _rollup(read, period)
        q = select(*columns, source=measurement).between(first, last)
        q = q.where_tags(plan.filters.tags if not by_lab else plan.filters.without_device())
        if categories:
            q = q.where_in(CATEGORY, categories)
        by = tuple(dict.fromkeys((SITE, LAB, *VIEW_TAGS[view])))  # site and lab: to split hours
        reads = [(1.0, q.group_by(*by))]
        if exclude and not by_lab:
            reads = [(1.0, q.excluding(exclude, DEVICE_TAGS).group_by(*by))]
        elif exclude:
            apart = select(*columns, source=device_rollup(period)).between(first, last)
            apart = apart.where_any(exclude, DEVICE_TAGS)
            if categories:
                apart = apart.where_in(CATEGORY, categories)
            reads.append((-1.0, apart.group_by(*by)))
        for sign, query in reads:
            for series in self.influx.query(query):
                at = {c: i for i, c in enumerate(series.columns)}
                key, it = _fact_key(series.tags, VIEW_TAGS[view]), at["time"]
                site, lab = series.tags.get(SITE, ""), series.tags.get(LAB, "")
                plain = [(f, at[source[f]]) for f in fields if not (split and f in heads)]
                halves = [(f, at[source[f]], at[heads[f]]) for f in heads] if split else []
                n = at.get(SAMPLES)
                for r in series.values:
                    t = r[it]
                    span = starts[bisect_right(starts, t) - 1]
                    if not any(p.start_ms <= t < p.end_ms for p in within.get(span, ())):
                        continue
                    seconds = out[(span, key)].seconds
                    for f, i in plain:
                        seconds[f] += sign * (r[i] or 0.0)
                    for f, i, h in halves:
                        seconds[f] += sign * opening.hour_open_s(
                            site, lab, t, r[i] or 0.0, r[h] or 0.0
                        )
                    if n is not None:
                        samples[(span, key)] += sign * (r[n] or 0)
        for gone in [k for k, v in samples.items() if v <= 0 and k not in before]:
            del out[gone]

    def _sums(
        self,
        plan: ReadPlan,
        part: Part,
        view: View,
        exclude: Collection[DeviceKey],
        fields: tuple[str, ...],
        categories: Collection[str],
    ) -> Iterable[Mapping[str, Any]]:
        """Sums of ``fields`` over one raw or hourly part, per key of ``view``.

        Hourly points and raw half hours are split at opening hours here, so they are read
        per hour (half hour) when the open seconds are asked for.
        """
        inventory = self.opening.inventory
        tags = VIEW_TAGS[view]
        opens = [f for f in fields if f in OPEN_FIELDS]
        read = tuple(dict.fromkeys(f for f in (*fields, *map(base_name, opens)) if f not in opens))
        split_here = bool(opens) and inventory is not None
        if split_here and part.source == "hourly":
            read += H1_FIELDS
        by = tuple(dict.fromkeys((SITE, LAB, *tags))) if split_here else tags
        period = part.period
        source = SAMPLE if period is None else device_rollup(period)
        if split_here:
            step = HOUR_MS if part.source == "hourly" else HALF_HOUR_MS
            q = select(*sums(read), source=source).group_by(*by, every_ms=step, fill_none=True)
        else:
            q = select(*sums(read), source=source).group_by(*by)
        q = _within(q, plan, part.start_ms, part.end_ms, exclude)
        if categories:
            q = q.where_in(CATEGORY, categories)
        return self._fold(q, tags, fields, opens, split_here, part.source)

    def _fold(
        self,
        query: Select,
        tags: tuple[str, ...],
        fields: tuple[str, ...],
        opens: list[str],
        split_here: bool,
        source: str,
    ) -> Iterable[Mapping[str, Any]]:
        """Sum rows of (time, fields) per ``tags``, splitting each row at opening hours when
        asked; column by column, without a dict per row. Without an inventory an open field
        is its base field's (every second is open)."""
        out: dict[tuple[Any, ...], dict[str, Any]] = {}
        opening = self.opening
        for series in self.influx.query(query):
            at = {c: i for i, c in enumerate(series.columns)}
            it = at["time"]
            site, lab = series.tags.get(SITE, ""), series.tags.get(LAB, "")
            # Columns added as they are, and open fields split here from (total, first half).
            direct = [(f, at[f]) for f in fields if f not in OPEN_FIELDS and f in at]
            split: list[tuple[str, int | None, int | None]] = []
            for f in opens:
                base = at.get(base_name(f))
                if split_here:
                    split.append((f, base, at.get(h1_name(base_name(f)))))
                elif base is not None:
                    direct.append((f, base))
            acc = _acc(out, series.tags, tags, fields)
            rows = series.values
            if not split:  # one sum per column
                for f, i in direct:
                    acc[f] += sum(r[i] or 0.0 for r in rows)
                continue
            for r in rows:
                t = r[it]
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

    def app_seconds(self, plan: ReadPlan) -> dict[tuple[str, str, str, str], float]:
        """Seconds each app ran, per (site, lab, device, app)."""
        out: dict[tuple[str, str, str, str], float] = defaultdict(float)
        for part in plan.parts(plan.start_ms, plan.end_ms):
            period = part.period
            if period is not None and part.coarse:  # per device: a fifth of the series
                source = app_asset_rollup(period)
            else:
                source = APP_USAGE if period is None else app_rollup(period)
            # Summed by InfluxDB: a partial month's daily points cost it 2.6x as much to send.
            q = select(agg("sum", RUNNING), source=source).group_by(*APP_ASSET_TAGS)
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
        """Raw samples in time order per device, and the hour before the window (for
        sessions, ``labmeter/sessions.py``): never rolled up."""
        q = sessions.samples_query(plan.start_ms, plan.end_ms).where_tags(plan.filters.tags)
        return _records(self.influx.query(q))

    def session_events(self, plan: ReadPlan) -> list[dict[str, Any]]:
        """Session events of the window's whole local days, in time order per device."""
        q = sessions.events_query(plan.start_ms, plan.end_ms, plan.calendar)
        return _records(self.influx.query(q.where_tags(plan.filters.tags)))

    def crosscheck_conflicts(self, plan: ReadPlan) -> dict[DeviceKey, float]:
        """Per device, the seconds its protocol said in use while its clamp said off."""
        q = select(agg("sum", CROSSCHECK_CONFLICT), source=DEVICE_METRICS)
        q = q.between(plan.start_ms, plan.end_ms).where_tags(plan.filters.tags)
        return {
            (r[SITE], r[LAB], r[DEVICE]): float(r[CROSSCHECK_CONFLICT])
            for r in _records(self.influx.query(q.group_by(*DEVICE_TAGS)))
            if r.get(CROSSCHECK_CONFLICT)
        }

    def agent_versions(self, plan: ReadPlan) -> dict[DeviceKey, str]:
        q = select(agg("last", "agent"), source=STATUS).before(plan.end_ms)
        q = q.where_tags(plan.filters.tags).group_by(*DEVICE_TAGS)
        return {
            (r[SITE], r[LAB], r[DEVICE]): str(r["agent"])
            for r in _records(self.influx.query(q))
            if r.get("agent")
        }


def _runs(parts: list[tuple[int, Part]]) -> list[list[tuple[int, Part]]]:
    """Parts that follow one another without a gap, each run read in one query: InfluxQL 1.x
    has no OR of time ranges, and one range over a gap would read every point in it."""
    runs: list[list[tuple[int, Part]]] = []
    for item in sorted(parts, key=lambda p: p[1].start_ms):
        if runs and runs[-1][-1][1].end_ms == item[1].start_ms:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


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
) -> dict[str, Any]:
    key = tuple(series_tags.get(tag) for tag in tags)
    acc = out.get(key)
    if acc is None:
        acc = out[key] = {tag: series_tags.get(tag) for tag in tags} | dict.fromkeys(fields, 0.0)
    return acc


def _fact_key(record: Mapping[str, Any], tags: tuple[str, ...] = FACT_TAGS) -> FactKey:
    """The five-tag key of a record; tags outside ``tags`` (the view's) are empty."""
    return tuple(  # type: ignore[return-value]
        str(record.get(t) or "") if t in tags else "" for t in FACT_TAGS
    )
