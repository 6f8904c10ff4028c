"""Seconds within arbitrary spans of time, exactly: in use per device and category, or
running per device and app.

Bookings start and end at any minute while rollups are whole hours and days, so each span is
cut as the request's plan cuts a window (``ReadPlan.parts``): the whole hours and days inside
come from the rollups, read as points once per lab and period for every span at once and
added to the span holding each point; the unaligned edges from raw samples, one small
``sum()`` per edge, sent many statements to a request. A sample belongs to the span its start
falls in, as it belongs to a window everywhere else in the API.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable

from labmeter.api.plan import ReadPlan
from labmeter.influx import InfluxV1
from labmeter.influxql import Select, agg, col, select
from labmeter.schema import (
    APP,
    APP_USAGE,
    CATEGORY,
    DEVICE,
    IN_USE,
    RUNNING,
    SAMPLE,
    Measurement,
    Period,
    app_rollup,
    device_rollup,
)

Span = tuple[str, str, int, int]  # site, lab, start ms, end ms
Seconds = dict[Span, dict[tuple[str, str], float]]  # span -> (device, category or app) -> s
STATEMENTS_PER_REQUEST = 200


class SpanReader:
    """Reads seconds within spans as one request's plan says where they live."""

    def __init__(self, influx: InfluxV1, plan: ReadPlan) -> None:
        self.influx = influx
        self.plan = plan

    def in_use(self, spans: Collection[Span]) -> Seconds:
        """In-use seconds per (device, category) within each span (spans of a lab must not
        overlap)."""
        return self._read(spans, SAMPLE, device_rollup, IN_USE, CATEGORY)

    def running(self, spans: Collection[Span], apps: Collection[str]) -> Seconds:
        """Seconds each of ``apps`` ran per (device, app) within each span."""
        if not apps:
            return {span: {} for span in spans}
        return self._read(spans, APP_USAGE, app_rollup, RUNNING, APP, apps)

    def _read(
        self,
        spans: Collection[Span],
        raw: Measurement,
        rollup: Callable[[Period], Measurement],
        field: str,
        by: str,
        only: Collection[str] = (),
    ) -> Seconds:
        out: dict[Span, dict[tuple[str, str], float]] = {s: defaultdict(float) for s in spans}
        edges: list[tuple[Span, Select]] = []
        rolled: dict[tuple[str, str, Period], list[tuple[int, int, Span]]] = defaultdict(list)
        device = self.plan.filters.device
        for span in spans:
            site, lab, a, b = span
            for part in self.plan.parts(a, b):
                period = part.period
                if period is None:
                    q = select(agg("sum", field), source=raw).between(part.start_ms, part.end_ms)
                    q = self._narrow(q.where(site=site, lab=lab, device=device), by, only)
                    edges.append((span, q.group_by(DEVICE, by)))
                else:
                    rolled[(site, lab, period)].append((part.start_ms, part.end_ms, span))
        for n in range(0, len(edges), STATEMENTS_PER_REQUEST):
            chunk = edges[n : n + STATEMENTS_PER_REQUEST]
            for (span, _q), found in zip(
                chunk, self.influx.query_each([q for _, q in chunk]), strict=True
            ):
                for series in found:
                    value = series.values[0][1] if series.values else None
                    out[span][(series.tags[DEVICE], series.tags[by])] += value or 0.0
        for (site, lab, period), parts in rolled.items():
            parts.sort()
            starts = [a for a, _b, _s in parts]
            q = select(col(field), source=rollup(period))
            q = q.between(parts[0][0], max(b for _a, b, _s in parts))
            q = self._narrow(q.where(site=site, lab=lab, device=device), by, only)
            for series in self.influx.query(q.where_field(field, ">", 0).group_by(DEVICE, by)):
                key = (series.tags[DEVICE], series.tags[by])
                for t, value in series.values:
                    i = bisect_right(starts, t) - 1
                    if i >= 0 and t < parts[i][1]:
                        out[parts[i][2]][key] += value or 0.0
        return {span: dict(found) for span, found in out.items()}

    @staticmethod
    def _narrow(q: Select, by: str, only: Iterable[str]) -> Select:
        values = list(only)
        return q.where_in(by, values) if values else q
