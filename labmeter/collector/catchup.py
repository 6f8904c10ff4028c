"""Days of an older rollup layout, or with hourly rollups only, brought up to date by the
collector itself, in the background: no manual step after an upgrade.

An upgrade that adds rollups (per asset and per lab, sessions, sessions per lab) leaves the
days rolled up before it in the older layout, and a deployment from before daily rollups has
hourly ones only; the API reads such days the slow way (hourly per device, sessions from raw
points) until they are recomputed. So the rollup owner (``rollups.py``) looks once at start,
and once a day, for local days before today whose label (``rollup_hours_daily``) is missing,
of an older layout (``schema.LAYOUT_VERSION``) or zone, or split at other opening hours than
its inventory's, and recomputes them with the same code as the live rollups when it has no
hour due:

- **newest first.** The API reads every day after the first one of the current layout from
  daily rollups (``api/plan.py``): days done one after the other from the newest backwards
  keep every answer exact meanwhile, where days done oldest first would leave days not yet
  done between done ones, which the API cannot tell from days that had no sample at all;
- one day per step, its month recomputed once its last owed day is done; a day of layout 3
  or 4 only gets what its layout lacks that its rollups can give: session rollups per asset
  and per lab, summed from those per device, and busy rollups, from the hourly ones per asset
  (its raw samples are not read again);
- **throttled.** Never while a backlog drains, and after each step it rests ``rest`` times as
  long as the step took, so that live writes and live rollups keep their latency; a closed
  period's days are never touched (their rollups are evidence).

Progress: ``labmeter_collector_catchup_days`` (days still owed) and
``labmeter_collector_catchup_done_total`` in ``/metrics``, and one ``rollup_catchup`` point per
collector run that the API's ``/healthz`` reports.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from labmeter.collector import sessions
from labmeter.collector.daily import (
    Reader,
    busy_day_lines,
    busy_month_lines,
    daily_lines,
    monthly_lines,
    write_sliced,
)
from labmeter.collector.metrics import Metrics
from labmeter.influx import FieldValue, LineWriter, line
from labmeter.influxql import agg, col, select
from labmeter.opening import OpeningHours
from labmeter.schema import (
    DEFAULT_TZ,
    HOURS_DAILY,
    HOURS_LABEL,
    HOURS_TZ,
    LAB,
    LAYOUT,
    LAYOUT_VERSION,
    ROLLUP_CATCHUP,
    SAMPLES,
    SESSIONS_LAYOUT,
    SITE,
    Period,
    device_rollup,
)

log = logging.getLogger(__name__)

REST = 3.0  # seconds of rest per second of work: at most a quarter of the time working
RESCAN_S = 24 * 3600.0  # how often the days are looked at again
IDLE_S = 60.0  # how often it looks again when nothing is owed, or after a failure


@dataclass(frozen=True)
class Owed:
    """A day to bring up to date: whole, or only the rollups its layout lacks that need no
    raw read (``partial``)."""

    day_ms: int
    partial: bool


class CatchUp:
    """The days owed a recompute, newest first, and the steps that pay them."""

    def __init__(
        self,
        reader: Reader,
        writer: LineWriter,
        metrics: Metrics,
        *,
        site: str,
        opening: OpeningHours,
        frozen: Callable[[int], bool] = lambda _day: False,
        owed_hours: Callable[[int, int], bool] = lambda _a, _b: False,
        name: str = "",
        rest: float = REST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``frozen(day)``: the day lies in a closed period. ``owed_hours(a, b)``: the live
        rollups owe an hour in [a, b) (that day is theirs)."""
        self.reader = reader
        self.writer = writer
        self.metrics = metrics
        self.site = site
        self.opening = opening
        self.frozen = frozen
        self.owed_hours = owed_hours
        self.name = name
        self.rest = rest
        self.clock = clock
        self._owed: list[Owed] = []  # newest first
        self._done: set[int] = set()  # days recomputed by this run (an empty day stays unlabelled)
        self._month: int | None = None  # the month of the last day done, not yet recomputed
        self._month_full = False
        self._scanned = float("-inf")
        self._next = float("-inf")  # when the next step may run
        self._reported: int | None = None
        self._run_ms = time.time_ns() // 1_000_000

    @property
    def left(self) -> int:
        return len(self._owed)

    def scan(self, now_ms: int) -> list[Owed]:
        """Find the owed days before today (``now_ms``'s local day), newest first."""
        cal = self.opening.calendar
        today = cal.day_of(now_ms)
        q = select(agg("first", SAMPLES), source=device_rollup(Period.hourly))
        q = q.where(site=None if self.site == "+" else self.site)
        found = [int(s.values[0][0]) for s in self.reader.query(q) if s.values]
        if not found or found[0] >= today:
            return []
        first = cal.day_of(found[0])
        labels: dict[int, list[tuple[str, str, object, object, object]]] = {}
        q = select(col(HOURS_LABEL), col(HOURS_TZ), col(LAYOUT), source=HOURS_DAILY)
        q = q.between(first, today).where(site=None if self.site == "+" else self.site)
        for series in self.reader.query(q.group_by(SITE, LAB)):
            site, lab = series.tags[SITE], series.tags[LAB]
            for t, hours, tz, layout in series.values:
                labels.setdefault(int(t), []).append((site, lab, hours, tz, layout))
        owed = []
        day = first
        while day < today:
            after = cal.next_day(day)
            verdict = self._verdict(day, labels.get(day, []))
            if verdict is not None and day not in self._done and not self.frozen(day):
                owed.append(Owed(day, verdict))
            day = after
        return owed[::-1]

    def _verdict(
        self, day: int, labels: list[tuple[str, str, object, object, object]]
    ) -> bool | None:
        """None: up to date; True: the rollups its layout lacks only; False: whole."""
        if not labels:
            return False
        inventory = self.opening.inventory
        layouts = set()
        for site, lab, hours, tz, layout in labels:
            if (tz or DEFAULT_TZ) != self.opening.calendar.tz or not isinstance(layout, int):
                return False
            checked = inventory is not None and (site, lab) in inventory.labs
            if checked and hours != self.opening.label(site, lab, day):
                return False  # split at other opening hours than the inventory's
            layouts.add(layout)
        low = min(layouts)
        if low >= LAYOUT_VERSION:
            return None
        return low >= SESSIONS_LAYOUT

    def due(self, now: float) -> bool:
        return now >= self._next

    def rest_s(self) -> float:
        """Seconds until the next step may run."""
        return max(0.0, self._next - self.clock())

    def step(self, now_ms: int) -> bool:
        """Bring the newest owed day up to date (first looking for owed days, if it is time);
        True when it did some work."""
        started = self.clock()
        if started - self._scanned >= RESCAN_S:
            self._scanned = started
            self._owed = self.scan(now_ms)
            if self._owed:
                log.warning(
                    "%d days of older rollups to bring up to date, from %s back",
                    len(self._owed),
                    self.opening.calendar.date_of(self._owed[0].day_ms),
                )
        cal = self.opening.calendar
        if not self._owed:
            self._finish_month()
            self._report()
            self._next = started + IDLE_S
            return False
        item = self._owed[0]
        if self.frozen(item.day_ms):
            self._owed.pop(0)
            return True
        if self.owed_hours(item.day_ms, cal.next_day(item.day_ms)):
            self._owed.pop(0)  # the live rollups recompute it with its hours
            return True
        month = cal.month_of(item.day_ms)
        if self._month is not None and self._month != month:
            self._finish_month()
        self._day(item)
        self._owed.pop(0)
        self._done.add(item.day_ms)
        self._month = month
        self._month_full = self._month_full or not item.partial
        self.metrics.catchup_total.inc()
        if not self._owed:
            self._finish_month()
        self._report()
        self._next = self.clock() + (self.clock() - started) * self.rest
        return True

    def _day(self, item: Owed) -> None:
        cal = self.opening.calendar
        day, after = item.day_ms, cal.next_day(item.day_ms)
        if not item.partial:
            write_sliced(self.writer, daily_lines(self.reader, day, after, self.site, self.opening))
            return
        write_sliced(self.writer, sessions.coarse_lines(self.reader, day, after, Period.daily))
        write_sliced(self.writer, busy_day_lines(self.reader, day, after, self.site, self.opening))
        q = select(col(HOURS_LABEL), col(HOURS_TZ), col(SAMPLES), source=HOURS_DAILY)
        q = q.between(day, after).where(site=None if self.site == "+" else self.site)
        relabelled = []
        for series in self.reader.query(q.group_by(SITE, LAB)):
            for t, hours, tz, samples in series.values:
                fields: dict[str, FieldValue] = {
                    HOURS_LABEL: str(hours or ""),
                    HOURS_TZ: str(tz or DEFAULT_TZ),
                    LAYOUT: LAYOUT_VERSION,
                }
                if samples is not None:
                    fields[SAMPLES] = int(samples)
                relabelled.append(line(HOURS_DAILY.name, series.tags, fields, int(t)))
        write_sliced(self.writer, relabelled)  # after the rollups it vouches for

    def _finish_month(self) -> None:
        """The month of the days just done, from their daily rollups."""
        month, self._month = self._month, None
        if month is None:
            return
        if self._month_full:
            lines = monthly_lines(self.reader, month, self.site, self.opening)
        else:
            end = self.opening.calendar.next_month(month)
            lines = sessions.coarse_lines(self.reader, month, end, Period.monthly)
            lines += busy_month_lines(self.reader, month, end, self.site)
        self._month_full = False
        write_sliced(self.writer, lines)

    def pause(self) -> None:
        """After a failure: try again in a while (the day stays owed)."""
        self._next = self.clock() + IDLE_S

    def _report(self) -> None:
        left = len(self._owed)
        self.metrics.catchup_days.set(left)
        if left == self._reported == 0:
            return
        self._reported = left
        fields: dict[str, FieldValue] = {
            "days_left": left,
            "day_ms": self._owed[0].day_ms if self._owed else -1,
            "seen_ms": time.time_ns() // 1_000_000,
        }
        tags = {"collector": self.name, SITE: "" if self.site == "+" else self.site}
        self.writer.write_lines([line(ROLLUP_CATCHUP.name, tags, fields, self._run_ms)])
