"""Sessions begun and distinct users over any window or any list of spans of it, per device
and per lab and category.

A session counts in the span its start falls in (``labmeter/sessions.py``). Whole local days
the collector has rolled up with session rollups are read from them, whole local months of
such days within one span from the monthly ones (so weekly spans read daily rollups and
yearly spans monthly ones); the rest (unaligned edges, recent days, days rolled up before
session rollups existed) is read from raw samples and events by the same definition the
listing uses. Distinct users are the union of the parts' pseudonyms, so they are exact over
any span; only counts leave this module.

Days of layout 4 or later (``schema.COARSE_SESSIONS_LAYOUT``) are read from the rollups per
lab and category (sessions and pseudonyms) and per asset (sessions): a region's labs are 150
series where its devices and categories are 1,500. A lab with a device the inventory does
not list, a request for one device, or a caller that groups by a device's own attribute
(its kind, its fund: ``per_device``) reads per device and category instead: a union cannot
be taken apart.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from functools import cache, partial
from typing import TypeVar

from labmeter.api.plan import ReadPlan
from labmeter.api.records import LabSessions, SessionFigures, SessionSummary
from labmeter.api.scope import Scope
from labmeter.contract import CATEGORIES
from labmeter.influx import InfluxV1, QueryResult
from labmeter.influxql import Select, col, select
from labmeter.schema import (
    CATEGORY,
    COARSE_SESSIONS_LAYOUT,
    DEVICE,
    DEVICE_TAGS,
    LAB,
    LAB_TAGS,
    SESSION_TAGS,
    SESSIONS,
    SESSIONS_LAYOUT,
    SITE,
    USERS,
    Calendar,
    DeviceKey,
    Measurement,
    Period,
    sessions_asset_rollup,
    sessions_lab_rollup,
    sessions_rollup,
)
from labmeter.sessions import events_query, samples_query, sessions, split_users

# site, lab, device, category; the device is LAB_WIDE where the lab was read as a whole.
SessionKey = tuple[str, str, str, str]
LAB_WIDE = ""
LabKey = tuple[str, str]
Span = tuple[int, int]
K = TypeVar("K", bound=Hashable)


@dataclass
class SessionCounts:
    """Sessions begun per device (every device), and per device or lab and category with
    their pseudonyms (registered devices only)."""

    devices: dict[DeviceKey, int] = field(default_factory=lambda: defaultdict(int))
    sessions: dict[SessionKey, int] = field(default_factory=lambda: defaultdict(int))
    users: dict[SessionKey, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, key: SessionKey, n: int, users: set[str]) -> None:
        if not n:
            return  # a day recomputed to none (collector/sessions.py)
        self.sessions[key] += n
        self.users[key] |= users

    def add_device(self, key: DeviceKey, n: int) -> None:
        if n:
            self.devices[key] += n

    def merge(self, other: SessionCounts) -> None:
        """Another span's counts into these: counts summed, pseudonyms united."""
        for key, n in other.sessions.items():
            self.add(key, n, other.users[key])
        for device, n in other.devices.items():
            self.add_device(device, n)

    def by(self, group: Callable[[SessionKey], K | None]) -> dict[K, tuple[int, int]]:
        """Sessions and distinct users per group (None: left out)."""
        counted: dict[K, int] = defaultdict(int)
        users: dict[K, set[str]] = defaultdict(set)
        for key, n in self.sessions.items():
            g = group(key)
            if g is not None:
                counted[g] += n
                users[g] |= self.users[key]
        return {g: (n, len(users[g])) for g, n in counted.items()}


def summary(counts: SessionCounts) -> SessionSummary:
    """In all, per category and per lab (every category listed), of the registered devices;
    a user counts once in each group they had a session in."""

    def figures(found: tuple[int, int] | None) -> SessionFigures:
        n, users = found or (0, 0)
        return SessionFigures(sessions=n, users=users)

    total = counts.by(lambda _k: ())
    per_category = counts.by(lambda k: k[3])
    per_lab = counts.by(lambda k: (k[0], k[1]))
    per_lab_category = counts.by(lambda k: (k[0], k[1], k[3]))
    return SessionSummary(
        **figures(total.get(())),
        categories={c: figures(per_category.get(c)) for c in CATEGORIES},
        labs=[
            LabSessions(
                site=site,
                lab=lab,
                **figures(found),
                categories={c: figures(per_lab_category.get((site, lab, c))) for c in CATEGORIES},
            )
            for (site, lab), found in sorted(per_lab.items())
        ],
    )


Wanted = dict[LabKey, dict[int, int]]  # lab -> a day's or month's start -> the span it counts in


@dataclass
class _Reads:
    """Which lab reads which whole days and months from which rollups, for which span."""

    fine: dict[Period, Wanted]  # per device and category
    coarse: dict[Period, Wanted]  # per lab and category, and per asset
    raw: dict[tuple[int, Span], list[LabKey]]  # (span index, gap) -> labs


def count(scope: Scope) -> SessionCounts:
    """Sessions begun in the scope's window, per device and per lab and category."""
    return count_per(scope, [(scope.plan.start_ms, scope.plan.end_ms)])[0]


def count_per(scope: Scope, spans: list[Span], *, per_device: bool = False) -> list[SessionCounts]:
    """Sessions begun in each of ``spans`` (sorted, disjoint, within the scope's window);
    ``per_device``: every part keyed by its device, never read per lab."""
    influx, plan = scope.reader.influx, scope.plan
    outs = [SessionCounts() for _ in spans]
    mixed = {(k[0], k[1]) for k in scope.unregistered()}
    days = _rolled_days(plan)

    def coarse_ok(lab: LabKey) -> bool:
        return not per_device and plan.filters.device is None and lab not in mixed

    reads = _plan_reads(plan, spans, days, coarse_ok)
    registered = scope.is_registered
    for period in (Period.monthly, Period.daily):
        _fine(influx, plan, period, reads.fine[period], registered, outs)
        _coarse(influx, plan, period, reads.coarse[period], outs)
    for (i, (x, y)), labs in sorted(reads.raw.items()):
        into = _into(spans, outs[i : i + 1], i)
        _raw(influx, plan, x, y, partial(_only, labs), registered, into)
    # Labs with no rolled-up day in the window: all of it from raw points.
    for x, y in _runs_of(spans):
        _raw(influx, plan, x, y, partial(_without, list(days)), registered, _into(spans, outs))
    return outs


def _into(
    spans: list[Span], outs: list[SessionCounts], first: int = 0
) -> Callable[[int], SessionCounts | None]:
    """The counts of the span a session beginning at ``t`` falls in (None: none)."""
    starts = [a for a, _ in spans[first : first + len(outs)]]

    def find(t: int) -> SessionCounts | None:
        i = bisect_right(starts, t) - 1
        return outs[i] if i >= 0 and t < spans[first + i][1] else None

    return find


def _runs_of(spans: list[Span]) -> list[Span]:
    """Spans that follow one another without a gap, joined."""
    out: list[Span] = []
    for a, b in spans:
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _only(labs: list[LabKey], q: Select) -> Select:
    return q.where_any(labs, (SITE, LAB))


def _without(labs: list[LabKey], q: Select) -> Select:
    return q.excluding(labs, (SITE, LAB))


def _rolled_days(plan: ReadPlan) -> dict[LabKey, dict[int, int]]:
    """Per lab, the whole local days of the window with session rollups that are complete,
    and their layouts."""
    if plan.rolled_until is None:
        return {}
    cal = plan.calendar
    first, end = cal.first_day_within(plan.start_ms), min(plan.end_ms, plan.rolled_until)
    out: dict[LabKey, dict[int, int]] = {}
    days = _days(cal, first, end)
    for lab, layouts in plan.day_layouts.items():
        if not plan.filters.matches_lab(*lab):
            continue
        found = {d: n for d in days if (n := layouts.get(d, 0)) >= SESSIONS_LAYOUT}
        if found:
            out[lab] = found
    return out


def _days(cal: Calendar, first: int, end: int) -> list[int]:
    """The local days starting at ``first`` that end by ``end``."""
    out, day = [], first
    while day < end and (after := cal.next_day(day)) <= end:
        out.append(day)
        day = after
    return out


def _plan_reads(
    plan: ReadPlan,
    spans: list[Span],
    days: Mapping[LabKey, Mapping[int, int]],
    coarse_ok: Callable[[LabKey], bool],
) -> _Reads:
    """Per lab and span: whole months of days from monthly rollups, other days from daily
    ones (per lab where the lab and its days allow it, else per device), the gaps from raw
    points."""
    cal = plan.calendar
    periods = (Period.monthly, Period.daily)
    fine: dict[Period, Wanted] = {p: {} for p in periods}
    coarse: dict[Period, Wanted] = {p: {} for p in periods}
    raw: dict[tuple[int, Span], list[LabKey]] = defaultdict(list)
    # Once per request, not once per lab: a region's year asks for them thousands of times.
    next_day = cache(cal.next_day)
    month_days = cache(partial(_days, cal))
    for lab, layouts in days.items():
        allowed = coarse_ok(lab)
        per_lab = {d for d, n in layouts.items() if allowed and n >= COARSE_SESSIONS_LAYOUT}
        ordered = sorted(layouts)
        for i, (a, b) in enumerate(spans):
            parts: list[Span] = []
            for day in ordered[bisect_left(ordered, a) : bisect_left(ordered, b)]:
                if parts and day < parts[-1][1]:
                    continue  # inside a month already taken whole
                after = next_day(day)
                if after > b:
                    break
                mine = day in per_lab
                period, end = Period.daily, after
                if (
                    cal.month_of(day) == day
                    and (month_end := cal.next_month(day)) <= b
                    and all(
                        d in layouts and (d in per_lab) is mine for d in month_days(day, month_end)
                    )
                ):
                    period, end = Period.monthly, month_end
                (coarse if mine else fine)[period].setdefault(lab, {})[day] = i
                parts.append((day, end))
            for span in _gaps(a, b, parts):
                raw[(i, span)].append(lab)
    return _Reads(fine, coarse, raw)


def _gaps(a: int, b: int, parts: list[Span]) -> list[Span]:
    """``[a, b)`` without the sorted, disjoint ``parts``."""
    out, at = [], a
    for x, y in parts:
        if x > at:
            out.append((at, x))
        at = max(at, y)
    if at < b:
        out.append((at, b))
    return out


def _runs(starts: set[int], step: Callable[[int], int]) -> list[Span]:
    """Contiguous runs of periods: one query each (InfluxQL 1.x has no OR of time ranges)."""
    out: list[Span] = []
    for t in sorted(starts):
        if out and out[-1][1] == t:
            out[-1] = (out[-1][0], step(t))
        else:
            out.append((t, step(t)))
    return out


def _read(
    influx: InfluxV1,
    plan: ReadPlan,
    period: Period,
    source: Measurement,
    columns: tuple[str, ...],
    tags: tuple[str, ...],
    wanted: Wanted,
) -> list[tuple[QueryResult, dict[int, int]]]:
    """The points of ``source`` in the runs of ``wanted``'s periods, with the periods each
    series' lab wants and the span each counts in."""
    cal = plan.calendar
    step = cal.next_month if period is Period.monthly else cal.next_day
    starts = set().union(*(w.keys() for w in wanted.values())) if wanted else set()
    queries = [
        select(*map(col, columns), source=source)
        .between(x, y)
        .where_any(sorted(wanted), (SITE, LAB))
        .where_tags(plan.filters.tags)
        .group_by(*tags)
        for x, y in _runs(starts, step)
    ]
    return [
        (series, wanted.get((series.tags[SITE], series.tags[LAB]), {}))
        for found in (influx.query_each(queries) if queries else [])
        for series in found
    ]


def _fine(
    influx: InfluxV1,
    plan: ReadPlan,
    period: Period,
    wanted: Wanted,
    registered: Callable[[DeviceKey], bool],
    outs: list[SessionCounts],
) -> None:
    source = sessions_rollup(period)
    for series, taken in _read(
        influx, plan, period, source, (SESSIONS, USERS), SESSION_TAGS, wanted
    ):
        site, lab, device, category = (series.tags[t] for t in SESSION_TAGS)
        counted = registered((site, lab, device))
        for t, n, users in series.values:
            if (i := taken.get(int(t))) is not None and n:
                outs[i].add_device((site, lab, device), int(n))
                if counted:
                    outs[i].add((site, lab, device, category), int(n), split_users(users))


def _coarse(
    influx: InfluxV1,
    plan: ReadPlan,
    period: Period,
    wanted: Wanted,
    outs: list[SessionCounts],
) -> None:
    labs = sessions_lab_rollup(period)
    for series, taken in _read(influx, plan, period, labs, (SESSIONS, USERS), LAB_TAGS, wanted):
        key = (series.tags[SITE], series.tags[LAB], LAB_WIDE, series.tags[CATEGORY])
        for t, n, users in series.values:
            if (i := taken.get(int(t))) is not None and n:
                outs[i].add(key, int(n), split_users(users))
    assets = sessions_asset_rollup(period)
    for series, taken in _read(influx, plan, period, assets, (SESSIONS,), DEVICE_TAGS, wanted):
        device = (series.tags[SITE], series.tags[LAB], series.tags[DEVICE])
        for t, n in series.values:
            if (i := taken.get(int(t))) is not None:
                outs[i].add_device(device, int(n or 0))


def _raw(
    influx: InfluxV1,
    plan: ReadPlan,
    start_ms: int,
    end_ms: int,
    narrow: Callable[[Select], Select],
    registered: Callable[[DeviceKey], bool],
    into: Callable[[int], SessionCounts | None],
) -> None:
    cal = plan.calendar
    samples = influx.query(narrow(samples_query(start_ms, end_ms).where_tags(plan.filters.tags)))
    events = influx.query(narrow(events_query(start_ms, end_ms, cal).where_tags(plan.filters.tags)))
    for s in sessions(_records(samples), _records(events), start_ms, end_ms, cal):
        if (out := into(s.start_ms)) is None:
            continue
        out.add_device((s.site, s.lab, s.device), 1)
        if registered((s.site, s.lab, s.device)):
            out.add((s.site, s.lab, s.device, s.category), 1, {s.user})


def _records(results: list[QueryResult]) -> list[dict[str, object]]:
    return [record for series in results for record in series.records()]
