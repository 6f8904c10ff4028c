"""Hourly rollups, recomputed from InfluxDB for every hour the collector wrote raw points into.

After an hour's rollup its local day's and month's rollups are recomputed too
(``collector/daily.py``).

Each rollup is computed from the database, never from this collector's own stream, and written
as the same points each time (measurement + tags + hour), so recomputing is idempotent and N
collectors on one shared subscription converge on the same numbers. An hour is recomputed
once it is closed (plus a grace delay for stragglers), and again whenever late data lands in
it (an agent replaying a backlog). Every recompute is confirmed once more ``settle_s`` later:
two collectors recomputing the same hour at once could otherwise let the one that read first
write last. The hours still owed are kept in a small state file, written before the batch
that touched them is acked, so a crash cannot forget them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from labmeter.collector import sessions
from labmeter.collector.catchup import CatchUp
from labmeter.collector.daily import Reader as Reader  # re-exported: the collector's query protocol
from labmeter.collector.daily import daily_lines, monthly_lines
from labmeter.collector.metrics import Metrics
from labmeter.errors import InfluxError
from labmeter.influx import FieldValue, LineWriter, line
from labmeter.influxql import Select, agg, select, sums
from labmeter.opening import OpeningHours
from labmeter.schema import (
    APP,
    APP_TAGS,
    APP_USAGE,
    DEVICE,
    FACT_TAGS,
    HALF_HOUR_MS,
    HOUR_MS,
    OBSERVED,
    PEAK_SEATS,
    RUNNING,
    SAMPLE,
    SAMPLES,
    SEAT_HOURS,
    SEAT_TAGS,
    SECONDS_FIELDS,
    SITE,
    SPLIT_FIELDS,
    Period,
    app_rollup,
    device_rollup,
    h1_name,
    seats_rollup,
)
from labmeter.sessions import SESSION_LOOK_BACK_MS

log = logging.getLogger(__name__)

MAX_DEFER_S = 300.0  # rollups wait for a backlog to drain, but never longer than this


@dataclass
class _Due:
    at: float  # monotonic-free wall clock seconds: hours are wall-clock facts
    confirmed: bool = False


def rollup_lines(reader: Reader, hour: int, site: str) -> list[str]:
    """The rollup points of one hour, computed with InfluxQL from the raw points."""

    def scoped(q: Select, end_ms: int = hour + HOUR_MS) -> Select:
        return q.between(hour, end_ms).where(site=None if site == "+" else site)

    lines: list[str] = []
    # The first half hour apart, so that opening hours on the half hour can split the hour.
    q = select(*sums(SPLIT_FIELDS), source=SAMPLE)
    heads = {
        tuple(sorted(series.tags.items())): series.records()[0]
        for series in reader.query(scoped(q, hour + HALF_HOUR_MS).group_by(*FACT_TAGS))
    }
    device = device_rollup(Period.hourly).name
    q = select(*sums(SECONDS_FIELDS), agg("count", OBSERVED, SAMPLES), source=SAMPLE)
    for series in reader.query(scoped(q).group_by(*FACT_TAGS)):
        head = heads.get(tuple(sorted(series.tags.items())), {})
        for rec in series.records():
            fields: dict[str, FieldValue] = {f: float(rec[f] or 0.0) for f in SECONDS_FIELDS}
            fields |= {h1_name(f): float(head.get(f) or 0.0) for f in SPLIT_FIELDS}
            fields[SAMPLES] = int(rec[SAMPLES])
            lines.append(line(device, series.tags, fields, hour))
    q = select(agg("sum", RUNNING), source=APP_USAGE)
    for series in reader.query(scoped(q).group_by(*APP_TAGS)):
        for rec in series.records():
            running: dict[str, FieldValue] = {RUNNING: float(rec[RUNNING])}
            lines.append(line(app_rollup(Period.hourly).name, series.tags, running, hour))
    # Seats: devices with the app running in each minute (a device's several points in one
    # minute, e.g. cut at a category change, count once), then the hour's maximum.
    per_device = scoped(select(agg("sum", RUNNING), source=APP_USAGE)).group_by(
        SITE, APP, DEVICE, every_ms=60_000
    )
    per_minute = (
        select(agg("count", RUNNING, "n"), source=per_device)
        .where_field(RUNNING, ">", 0)
        .group_by(SITE, APP, every_ms=60_000)
    )
    peaks = reader.query(select(agg("max", "n", "peak"), source=per_minute).group_by(SITE, APP))
    peak = {(s.tags[SITE], s.tags[APP]): int(s.values[0][1] or 0) for s in peaks}
    q = select(agg("sum", RUNNING), source=APP_USAGE)
    for series in reader.query(scoped(q).group_by(*SEAT_TAGS)):
        key = (series.tags[SITE], series.tags[APP])
        seats: dict[str, FieldValue] = {
            PEAK_SEATS: peak.get(key, 0),
            SEAT_HOURS: float(series.values[0][1]) / 3600.0,
        }
        lines.append(line(seats_rollup(Period.hourly).name, series.tags, seats, hour))
    return lines


class Rollups:
    """Hours owed a recompute, and the thread that pays them."""

    def __init__(
        self,
        reader: Reader,
        writer: LineWriter,
        metrics: Metrics,
        *,
        site: str,
        state_path: Path,
        grace_s: float,
        settle_s: float,
        busy: Callable[[], bool] = lambda: False,
        opening: OpeningHours | None = None,
        frozen: Callable[[int], bool] = lambda _hour: False,
        catch_up: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``frozen(hour)``: the hour lies in a closed period; its rollups are never redone.
        ``catch_up``: this collector's name, to bring days of older rollups up to date when no
        hour is due (``catchup.py``); None: not. ``clock``: the wall clock its thread reads."""
        self.reader = reader
        self.opening = opening or OpeningHours(None)
        self.writer = writer
        self.metrics = metrics
        self.site = site
        self.state_path = state_path
        self.grace_s = grace_s
        self.settle_s = settle_s
        self.busy = busy
        self.frozen = frozen
        self.clock = clock
        self._lock = threading.Lock()
        self._due: dict[int, _Due] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="collector-rollups", daemon=True)
        self.catchup = (
            CatchUp(
                reader, writer, metrics, site=site, opening=self.opening, frozen=frozen,
                owed_hours=self._owes, name=catch_up,
            )
            if catch_up is not None
            else None
        )  # fmt: skip
        for hour in self._load():
            self._due[hour] = _Due(self._due_at(hour, time.time()))

    def _due_at(self, hour: int, now: float) -> float:
        return max((hour + HOUR_MS) / 1000 + self.grace_s, now + self.settle_s)

    def _load(self) -> list[int]:
        try:
            return [int(h) for h in orjson.loads(self.state_path.read_bytes())]
        except FileNotFoundError:
            return []
        except (orjson.JSONDecodeError, TypeError, ValueError):
            log.error("rollup state %s unreadable; recomputing nothing from it", self.state_path)
            return []

    def _save(self) -> None:
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        with tmp.open("wb") as fh:
            fh.write(orjson.dumps(sorted(self._due)))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.state_path)

    def touch(self, hours: Iterable[int]) -> None:
        """Raw points were written into these hours: owe them a recompute (before the ack)."""
        now = time.time()
        with self._lock:
            new = False
            for hour in hours:
                due = self._due.get(hour)
                if due is None:
                    new = True
                self._due[hour] = _Due(self._due_at(hour, now))
            if new:
                self._save()

    def pending(self) -> list[int]:
        with self._lock:
            return sorted(self._due)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _owes(self, start_ms: int, end_ms: int) -> bool:
        with self._lock:
            return any(start_ms <= hour < end_ms for hour in self._due)

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.wait(delay):
            delay = 0.5
            now = self.clock()
            self.run_due(now)
            catchup = self.catchup
            if catchup is None or self.busy() or not catchup.due(time.monotonic()):
                continue
            with self._lock:
                if any(d.at <= now for d in self._due.values()):
                    continue  # live hours first
            try:
                if catchup.step(int(now * 1000)):
                    delay = min(delay, catchup.rest_s())  # the next day once rested
            except InfluxError as exc:
                log.warning("catching up older rollups failed (%s); will retry", exc)
                catchup.pause()

    def _next_day_sessions(self, hour: int) -> None:
        """An hour within ``SESSION_LOOK_BACK_MS`` of the next local day can tell whether that day's
        first sample continues a session begun before: its session rollups follow."""
        calendar = self.opening.calendar
        after = calendar.next_day(hour)
        if hour + HOUR_MS + SESSION_LOOK_BACK_MS <= after or self.frozen(after):
            return
        end = calendar.next_day(after)
        lines = sessions.day_lines(self.reader, after, end, self.site, calendar)
        if lines:
            self.writer.write_lines(lines)
            month = calendar.month_of(after)
            self.writer.write_lines(sessions.month_lines(self.reader, month, self.site, calendar))

    def run_due(self, now: float) -> None:
        """Recompute every hour whose time has come; keep the ones the database refused."""
        with self._lock:
            ready = sorted((h, d) for h, d in self._due.items() if d.at <= now)
            lag = max((now - d.at for d in self._due.values() if d.at <= now), default=0.0)
        self.metrics.rollup_lag.set(lag)
        if ready and lag < MAX_DEFER_S and self.busy():
            # Draining a backlog: each recompute scans whole hours and took InfluxDB (and the
            # GIL) from the writes, halving the drain. The data are in the database; wait.
            return
        for i, (hour, due) in enumerate(ready):
            if self._stop.is_set():
                return
            if self.frozen(hour):
                # Owed from before the closure by a collector that was down when the period
                # was closed: the archived rollups are the evidence now, keep them as they are.
                log.warning("hour %d lies in a closed period: its rollups are not recomputed", hour)
                with self._lock:
                    if self._due.get(hour) is due:
                        del self._due[hour]
                        self._save()
                continue
            try:
                lines = rollup_lines(self.reader, hour, self.site)
                if lines:
                    self.writer.write_lines(lines)
                # The day follows its hours: recomputed after the last of them in this pass
                # (from the hourly rollups just written); if that fails, so does this hour.
                calendar = self.opening.calendar
                day = calendar.day_of(hour)
                if i + 1 == len(ready) or calendar.day_of(ready[i + 1][0]) != day:
                    days = daily_lines(
                        self.reader, day, calendar.next_day(day), self.site, self.opening
                    )
                    if days:
                        self.writer.write_lines(days)
                        # And the month follows its days, from the daily rollups just written.
                        self.writer.write_lines(
                            monthly_lines(
                                self.reader, calendar.month_of(day), self.site, self.opening
                            )
                        )
                    self._next_day_sessions(hour)
            except InfluxError as exc:
                log.warning("rollup of hour %d failed (%s); will retry", hour, exc)
                with self._lock, contextlib.suppress(KeyError):
                    self._due[hour].at = time.time() + 5.0
                continue
            self.metrics.rollups_total.inc()
            with self._lock:
                current = self._due.get(hour)
                if current is not due:
                    continue  # touched again meanwhile: its new schedule stands
                if due.confirmed:
                    del self._due[hour]
                    self._save()
                else:
                    self._due[hour] = _Due(time.time() + self.settle_s, confirmed=True)
