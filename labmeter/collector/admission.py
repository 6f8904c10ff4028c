"""What the collector refuses beyond the wire contract: closed periods and the late-data horizon.

Samples, events and statuses alike: a message whose point or span touches a closed period,
or the hour before it, is refused (``period_closed``), and one stamped before the horizon
(``too_old``).

``Admission`` is a small frozen value handed to the converter process with every chunk; the
``PeriodWatch`` keeps it current from InfluxDB (``labmeter/periods.py``).

The race between closing a period and a collector that has not yet seen the closure is
closed on the collector's side by checking right before every write attempt, not only at
conversion: a batch converted under older closures is converted again first, and while an
attempt is in flight the heartbeat still reports the closures it was checked against. So once
a collector's heartbeat reports a closure as applied, nothing it writes afterwards falls in
it. ``labmeter period close`` waits for that from every live collector before it exports.
A collector that cannot read the closures for ``STALE_S`` reads them again before it writes
(or does not write): one that was cut off from InfluxDB when the period was closed cannot
slip an old batch in when it comes back.
"""

from __future__ import annotations

import bisect
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Protocol

from labmeter.contract import SEGMENT_PATTERN, Event, Message, Sample
from labmeter.errors import InfluxError, PayloadRejected
from labmeter.influx import LineWriter, QueryResult, line
from labmeter.influxql import Select
from labmeter.periods import (
    Closure,
    closures_query,
    heartbeat_line,
    parse_closures,
)
from labmeter.schema import DAY_MS, REFUSALS
from labmeter.timeparse import iso

log = logging.getLogger(__name__)

_SEGMENT: Final = re.compile(SEGMENT_PATTERN.encode())  # topics arrive as bytes
# Closures older than this are read again before a write (a refresh runs every few seconds).
STALE_S: Final = 20.0


class Reader(Protocol):
    def query(self, influxql: Select | str, *, epoch: str = "ms") -> list[QueryResult]: ...


@dataclass(frozen=True, slots=True)
class Admission:
    """The closures applied (``version`` = the newest id, 0 for none) and the horizon."""

    version: int = 0
    closed: tuple[Closure, ...] = ()
    max_age_ms: int = 0  # 0: no horizon
    offset_ms: int = 0  # added to the receive time: a test's lab pinned in the past
    _after: int = field(default=0, init=False, repr=False, compare=False)
    _ends: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Live data lies after every closed period: one comparison on the hot path.
        object.__setattr__(self, "_after", max((c.end_ms for c in self.closed), default=0))
        ordered = tuple(sorted(self.closed, key=lambda c: c.end_ms))
        object.__setattr__(self, "closed", ordered)
        object.__setattr__(self, "_ends", tuple(c.end_ms for c in ordered))

    def check(self, message: Message, received_ms: int) -> None:
        """Raise ``PayloadRejected`` (``too_old``, ``period_closed``) for a refused message."""
        body = message.payload
        site = message.topic.site
        if isinstance(body, Sample):
            self.check_span(site, body.start_ms, body.ts, received_ms)
        elif isinstance(body, Event):
            self.check_span(site, body.ts, body.ts + 1, received_ms)
        elif body.ts is not None:
            # A status is a point like any other. A retained one replayed on subscribe is
            # refused too: the same point is in InfluxDB already, so nothing is lost. The
            # last will carries no ts and is stamped on arrival: now, never in a closed past.
            self.check_span(site, body.ts, body.ts + 1, received_ms)

    def check_span(self, site: str, start: int, end: int, received_ms: int) -> None:
        """``check`` of a message of ``site`` about ``[start, end)``, its point stamped at
        ``start``: what the converter's fast path asks without building a ``Message``
        (``collector/convert.py``).

        The horizon applies to the point's time, so a long interval cannot carry a point
        into the past. A closure refuses the span's every millisecond and the point's own
        (``start``, even when the span is empty), and the hour before the period
        (``Closure.refuses``).
        """
        if self.max_age_ms and start < received_ms + self.offset_ms - self.max_age_ms:
            days = (received_ms + self.offset_ms - start) / DAY_MS
            raise PayloadRejected(
                "too_old",
                f"its time is {days:.1f} days old; the horizon is {self.max_age_ms / DAY_MS:g}",
            )
        if start >= self._after:
            return
        # Only closures ending after the start can hold the interval.
        for closure in self.closed[bisect.bisect_right(self._ends, start) :]:
            if closure.refuses(start, end, site):
                raise PayloadRejected(
                    "period_closed",
                    f"{iso(start)} lies in the period closed {iso(closure.start_ms)} - "
                    f"{iso(closure.end_ms)} or the hour before it",
                )

    def frozen_hour(self, hour_ms: int, site: str) -> bool:
        """The hour lies in a completed closure covering ``site`` ("+": every site): its
        rollups are evidence now and are never recomputed."""
        return any(
            c.state == "closed"
            and (not c.site or c.site == site)
            and c.start_ms <= hour_ms < c.end_ms
            for c in self.closed
        )


NO_LIMITS: Final = Admission()


def site_of(topic: bytes) -> str:
    """The site segment of a raw topic, or "" when it has none worth a tag."""
    parts = topic.split(b"/")
    if len(parts) != 6:
        return ""
    return parts[2].decode() if _SEGMENT.fullmatch(parts[2]) else ""


class PeriodWatch:
    """Keeps the ``Admission`` current from InfluxDB, guards each write, sends a heartbeat."""

    def __init__(
        self,
        reader: Reader | None,
        writer: LineWriter,
        *,
        collector: str,
        max_age_ms: int,
        offset_ms: int,
        refresh_s: float,
        owed_from: Callable[[], int | None] = lambda: None,
        on_refresh: Callable[[Admission], None] = lambda _a: None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.collector = collector
        self.refresh_s = refresh_s
        self.owed_from = owed_from
        self.on_refresh = on_refresh
        self.admission = Admission(max_age_ms=max_age_ms, offset_ms=offset_ms)
        self._loaded = float("-inf")  # monotonic time of the last successful read
        self._run_ms = time.time_ns() // 1_000_000
        self._lock = threading.Lock()
        self._in_flight: int | None = None  # the version an ongoing write was checked against
        self._stamp = 0  # the last refusal point's time: strictly increasing
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="collector-periods", daemon=True)

    # --- reading the closures ----------------------------------------------------------------

    def refresh(self) -> Admission:
        """Read the closures now; ``QueryError`` when InfluxDB cannot answer."""
        if self.reader is None:
            return self.admission
        closed = tuple(parse_closures(self.reader.query(closures_query())))
        version = max((c.id for c in closed), default=0)
        with self._lock:
            current = self.admission
            if closed != current.closed or version != current.version:
                self.admission = Admission(version, closed, current.max_age_ms, current.offset_ms)
                if version != current.version:
                    log.warning("closed periods now: %s", ", ".join(map(str, closed)) or "none")
            self._loaded = time.monotonic()
        self.on_refresh(self.admission)
        return self.admission

    def start(self) -> None:
        if self.reader is not None:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        while True:
            try:
                self.refresh()
                self.heartbeat()
            except InfluxError as exc:
                log.warning("cannot read closed periods or send the heartbeat (%s)", exc)
            if self._stop.wait(self.refresh_s):
                return

    def heartbeat(self) -> None:
        with self._lock:
            applied = self._in_flight if self._in_flight is not None else self.admission.version
        owed = self.owed_from()
        self.writer.write_lines(
            [
                heartbeat_line(
                    self.collector,
                    self._run_ms,
                    time.time_ns() // 1_000_000,
                    applied,
                    -1 if owed is None else owed,
                )
            ]
        )

    # --- guarding writes ---------------------------------------------------------------------

    def begin_write(self, version: int) -> bool:
        """Before a write attempt of lines converted under ``version``: False when they must
        be converted again (closures changed). Reads the closures first if they are stale
        (``QueryError`` then: the write waits like any failed one)."""
        if self.reader is not None and time.monotonic() - self._loaded > STALE_S:
            self.refresh()
        with self._lock:
            if version != self.admission.version:
                return False
            self._in_flight = version
            return True

    def end_write(self) -> None:
        with self._lock:
            self._in_flight = None

    # --- counting refusals -------------------------------------------------------------------

    def refusal_lines(self, refused: Iterable[tuple[str, bytes]]) -> list[str]:
        """Points counting refused messages by reason and site (``refusals``), for reports.

        Each call gets its own millisecond so that two batches never overwrite each other.
        """
        counts = Counter((reason, site_of(topic)) for reason, topic in refused)
        if not counts:
            return []
        with self._lock:
            self._stamp = max(time.time_ns() // 1_000_000, self._stamp + 1)
            stamp = self._stamp
        return [
            line(
                REFUSALS.name,
                {"collector": self.collector, "reason": r, "site": s},
                {"count": n},
                stamp,
            )
            for (r, s), n in sorted(counts.items())
        ]
