"""Sessions begun and distinct users over any window, per device and category.

A session counts in the window its start falls in (``labmeter/sessions.py``). Whole local
days the collector has rolled up with session rollups (``rollup_hours_daily`` layout 3 or
later, and every hour of the day rolled up) are read from them, whole local months of such
days from the monthly ones; the rest of the window (its unaligned edges, recent days, days
rolled up before session rollups existed) is read from raw samples and events by the same
definition the listing uses. Distinct users are the union of the parts' pseudonyms, so they
are exact over any window; only counts leave this module.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from labmeter.api.plan import ReadPlan
from labmeter.api.records import LabSessions, SessionFigures, SessionSummary
from labmeter.contract import CATEGORIES
from labmeter.influx import InfluxV1, QueryResult
from labmeter.influxql import Select, col, select
from labmeter.schema import (
    DEFAULT_TZ,
    HOURS_DAILY,
    HOURS_TZ,
    LAB,
    LAYOUT,
    SESSION_TAGS,
    SESSIONS,
    SESSIONS_LAYOUT,
    SITE,
    USERS,
    Calendar,
    Period,
    sessions_rollup,
)
from labmeter.sessions import events_query, samples_query, sessions, split_users

SessionKey = tuple[str, str, str, str]  # site, lab, device, category
LabKey = tuple[str, str]
Span = tuple[int, int]
K = TypeVar("K", bound=Hashable)


@dataclass
class SessionCounts:
    """Sessions begun and their pseudonyms per device and category."""

    sessions: dict[SessionKey, int] = field(default_factory=lambda: defaultdict(int))
    users: dict[SessionKey, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, key: SessionKey, n: int, users: set[str]) -> None:
        if not n:
            return  # a day recomputed to none (collector/sessions.py)
        self.sessions[key] += n
        self.users[key] |= users

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


def summary(counts: SessionCounts, included: Callable[[SessionKey], bool]) -> SessionSummary:
    """In all, per category and per lab (every category listed), of the ``included`` devices;
    a user counts once in each group they had a session in."""

    def figures(found: tuple[int, int] | None) -> SessionFigures:
        n, users = found or (0, 0)
        return SessionFigures(sessions=n, users=users)

    def kept(by: Callable[[SessionKey], K]) -> Callable[[SessionKey], K | None]:
        return lambda key: by(key) if included(key) else None

    total = counts.by(kept(lambda _k: ()))
    per_category = counts.by(kept(lambda k: k[3]))
    per_lab = counts.by(kept(lambda k: (k[0], k[1])))
    per_lab_category = counts.by(kept(lambda k: (k[0], k[1], k[3])))
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


def count(influx: InfluxV1, plan: ReadPlan) -> SessionCounts:
    """Sessions begun in the plan's window and their pseudonyms, per device and category."""
    return count_per(influx, plan, [(plan.start_ms, plan.end_ms)])[0]


def count_per(
    influx: InfluxV1, plan: ReadPlan, spans: list[Span], labels: Labels | None = None
) -> list[SessionCounts]:
    """Sessions begun in each of ``spans`` (sorted, disjoint, within the plan's window) and
    their pseudonyms, per device and category: a month's rollup is read only when the month
    lies within one span, so weekly spans read daily rollups and yearly spans monthly ones.
    ``labels``: the plan's ``labelled_days``, when the caller has read them already."""
    outs = [SessionCounts() for _ in spans]
    cal = plan.calendar
    days = _rolled_days(labelled_days(influx, plan) if labels is None else labels)
    months: dict[LabKey, dict[int, int]] = {}  # lab -> month -> the span it counts in
    daily: dict[LabKey, dict[int, int]] = {}
    raw: dict[tuple[int, Span], list[LabKey]] = defaultdict(list)
    after = {d: cal.next_day(d) for d in set().union(*days.values())} if days else {}
    for lab, found in days.items():
        months[lab], daily[lab] = {}, {}
        ordered = sorted(found)
        for i, (a, b) in enumerate(spans):
            parts: list[Span] = []
            within = ordered[bisect_left(ordered, a) : bisect_left(ordered, b)]
            for day in (d for d in within if after[d] <= b):
                if parts and day < parts[-1][1]:
                    continue  # inside a month already taken whole
                month_end = cal.next_month(day)
                if (
                    cal.month_of(day) == day
                    and month_end <= b
                    and _whole(found, day, month_end, cal)
                ):
                    months[lab][day] = i
                    parts.append((day, month_end))
                else:
                    daily[lab][day] = i
                    parts.append((day, after[day]))
            for span in _gaps(a, b, parts):
                raw[(i, span)].append(lab)
    _rolled(influx, plan, Period.monthly, months, outs)
    _rolled(influx, plan, Period.daily, daily, outs)
    for (i, (x, y)), labs in sorted(raw.items()):
        _raw(influx, plan, x, y, partial(_only, labs), _into(spans, outs[i : i + 1], i))
    # Labs with no rolled-up day in the window: all of it from raw points.
    for x, y in _runs_of(spans):
        _raw(influx, plan, x, y, partial(_without, list(days)), _into(spans, outs))
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


Labels = dict[LabKey, dict[int, int]]  # lab -> local day -> its rollup layout


def labelled_days(influx: InfluxV1, plan: ReadPlan) -> Labels:
    """Per lab, the whole local days of the window that are rolled up (every hour), cut in
    the API's zone, and the rollup layout each was labelled with: read once, it serves every
    count of a request (and any reader that needs a later layout)."""
    if plan.rolled_until is None:
        return {}
    cal = plan.calendar
    first, end = cal.first_day_within(plan.start_ms), min(plan.end_ms, plan.rolled_until)
    if first >= end:
        return {}
    q = select(col(LAYOUT), col(HOURS_TZ), source=HOURS_DAILY).between(first, end)
    q = q.where_tags(plan.filters.without_device()).group_by(SITE, LAB)
    out: Labels = {}
    for series in influx.query(q):
        found = {
            int(t): int(layout)
            for t, layout, tz in series.values
            if layout is not None
            and (tz or DEFAULT_TZ) == cal.tz  # days cut in another zone are not the API's
            and cal.next_day(int(t)) <= end
        }
        if found:
            out[(series.tags[SITE], series.tags[LAB])] = found
    return out


def _rolled_days(labels: Labels) -> dict[LabKey, set[int]]:
    """Per lab, the labelled days with session rollups."""
    out = {
        lab: {d for d, layout in days.items() if layout >= SESSIONS_LAYOUT}
        for lab, days in labels.items()
    }
    return {lab: days for lab, days in out.items() if days}


def _whole(days: set[int], month: int, month_end: int, cal: Calendar) -> bool:
    day = month
    while day < month_end:
        if day not in days:
            return False
        day = cal.next_day(day)
    return True


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


def _rolled(
    influx: InfluxV1,
    plan: ReadPlan,
    period: Period,
    wanted: dict[LabKey, dict[int, int]],
    outs: list[SessionCounts],
) -> None:
    cal = plan.calendar
    step = cal.next_month if period is Period.monthly else cal.next_day
    starts = set().union(*(w.keys() for w in wanted.values())) if wanted else set()
    queries = [
        select(col(SESSIONS), col(USERS), source=sessions_rollup(period))
        .between(x, y)
        .where_tags(plan.filters.tags)
        .group_by(*SESSION_TAGS)
        for x, y in _runs(starts, step)
    ]
    for found in influx.query_each(queries) if queries else []:
        for series in found:
            key: SessionKey = tuple(series.tags[t] for t in SESSION_TAGS)  # type: ignore[assignment]
            taken = wanted.get((key[0], key[1]), {})
            for t, n, users in series.values:
                if (i := taken.get(int(t))) is not None:
                    outs[i].add(key, int(n or 0), split_users(users))


def _raw(
    influx: InfluxV1,
    plan: ReadPlan,
    start_ms: int,
    end_ms: int,
    narrow: Callable[[Select], Select],
    into: Callable[[int], SessionCounts | None],
) -> None:
    cal = plan.calendar
    samples = influx.query(narrow(samples_query(start_ms, end_ms).where_tags(plan.filters.tags)))
    events = influx.query(narrow(events_query(start_ms, end_ms, cal).where_tags(plan.filters.tags)))
    for s in sessions(_records(samples), _records(events), start_ms, end_ms, cal):
        if (out := into(s.start_ms)) is not None:
            out.add((s.site, s.lab, s.device, s.category), 1, {s.user})


def _records(results: list[QueryResult]) -> list[dict[str, object]]:
    return [record for series in results for record in series.records()]
