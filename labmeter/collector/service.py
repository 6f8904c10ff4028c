"""MQTT -> InfluxDB with ack after write.

The MQTT session (``subscriber.py``) hands over each read's PUBLISHes as one list, and the
callback only queues it (an HTTP write in the network thread stalls it, and made the broker
drop messages, DESIGN.md). A converter thread validates the queued messages and builds their
line protocol (``convert.py``); one worker thread batches the lines, writes, and only then
acks, in arrival order, and confirms the agents' rows to them (``confirm.py``). A crash
before the write leaves the messages unacked in the broker's persistent session, which
redelivers them, and unconfirmed on the agents, which send them again; the rewrite lands on
the same points.

Parsing is now most of the collector's Python per message; it used to run in a child process
while paho's thread held the GIL, but with the session's bulk reads that process cost more
(pickling both ways, a wake-up per trip) than it gave: in-process parsing drained 1.5-2.7x
faster on the same backlogs, alternating (docs/benchmarks.md). More cores are used through
``--workers`` instead (``workers.py``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from labmeter.collector.admission import Admission, PeriodWatch
from labmeter.collector.confirm import Confirmer
from labmeter.collector.convert import Converted, Delivery, convert
from labmeter.collector.deadletter import DeadLetters
from labmeter.collector.metrics import HealthServer, Metrics
from labmeter.collector.rollups import Reader, Rollups
from labmeter.collector.subscriber import Subscriber
from labmeter.config import Config
from labmeter.contract import subscription
from labmeter.errors import InfluxError, WriteError
from labmeter.influx import LineWriter
from labmeter.inventory import load as load_inventory
from labmeter.opening import OpeningHours
from labmeter.schema import DAY_MS

log = logging.getLogger(__name__)

POLL_S = 0.005  # how often the converter and the worker look for work when they have none
CHUNK = 500  # messages converted at a time at most (~1,500 lines)
# Messages in a batch plus those waiting after its write that mean the collector is behind
# (a backlog drains): at a steady load a batch holds a handful, in a drain thousands.
BEHIND = 200


class HourLedger(Protocol):
    """Where written hours are owed their rollup: this process's ``Rollups``, or the owner's."""

    def touch(self, hours: set[int], behind: bool) -> None: ...


@dataclass(slots=True)
class Received:
    """One read's PUBLISHes, as the session handed them over."""

    generation: int  # the connection they came on: their acks go to that one only
    received_ms: int
    deliveries: list[Delivery]


@dataclass(slots=True)
class Chunk:
    """Converted messages waiting for their write: what to ack, and what to write."""

    acks: list[tuple[int, list[int]]]  # (generation, mids) in arrival order: acked once written
    deliveries: list[Delivery]  # kept to convert them again if closed periods change
    received_ms: int
    lines: list[str]
    hours: set[int]  # the hours its samples fall in, owed a rollup once written
    version: int  # the closed periods it was converted under (``collector/admission.py``)
    rejected: frozenset[int]  # indices in ``deliveries`` already sent to dead letters

    @property
    def messages(self) -> int:
        return len(self.deliveries)


class _Stale(Exception):
    """Closed periods changed since the batch was converted: convert it again first."""


class _Abandon(Exception):
    """Shutting down while the database refuses: leave the batch unacked for redelivery."""


class _LedgerLost(Exception):
    """The rollup owner (``--workers``' parent) is gone: acking now could forget an hour."""


class _LocalRollups:
    """The ``HourLedger`` of a collector that owns its rollups."""

    def __init__(self, rollups: Rollups, behind: Callable[[], None]) -> None:
        self.rollups = rollups
        self.behind = behind

    def touch(self, hours: set[int], behind: bool) -> None:
        if behind:
            self.behind()
        if hours:
            self.rollups.touch(hours)


class Collector:
    def __init__(
        self,
        config: Config,
        writer: LineWriter,
        reader: Reader | None = None,
        *,
        ledger: HourLedger | None = None,
        retire: bool = False,
    ) -> None:
        """``reader`` (InfluxQL) enables the hourly rollups; without it none are written.

        ``ledger``: a worker of ``labmeter collector --workers N`` hands its written hours to
        the rollup owner instead of rolling them up itself (``workers.py``). ``retire``: the
        session of a worker no longer run: take no new share, drain what it holds, end it.
        """
        self.config = config
        self.cfg = config.collector
        self.writer = writer
        self.dead_letters = DeadLetters(self.cfg.dead_letter_path)
        self.metrics = Metrics()
        self._held = ""  # why writes are held (401/403/404), empty while they flow
        self._last_behind = 0.0  # monotonic time a batch last showed a backlog (BEHIND)
        self.rollups: Rollups | None = None
        self.ledger = ledger
        self.periods = make_periods(
            config, reader, writer, self.metrics, self.cfg.client_id, lambda: self.rollups
        )
        if ledger is None and reader is not None and self.cfg.rollups:
            self.rollups = make_rollups(
                config, reader, writer, self.metrics, self._draining, self.periods
            )
            self.ledger = _LocalRollups(self.rollups, self._mark_behind)
        self.health: HealthServer | None = None
        if self.cfg.metrics_port is not None:
            self.health = HealthServer(
                self.cfg.metrics_host, self.cfg.metrics_port, self.metrics, self.problems
            )
        # Bare deques polled, not queues that wake their reader: waking a thread for every
        # message cost two thread switches per message and capped the drain at ~1/3 of a
        # bare subscriber. append/popleft are atomic; polling adds at most POLL_S of latency.
        self._raw: deque[Received] = deque()  # network thread -> converter thread
        self._inbox: deque[Chunk] = deque()  # converter thread -> worker
        # Messages taken from the session and not yet acked: at most ``max_unacked`` (and one
        # read), so a backlog of any size drains within a fixed memory budget. Mosquitto 2.0
        # sent a resumed session's queued backlog past the Receive Maximum (80,000 of a
        # 100,000 backlog held, +80 MB), so the session stops reading instead.
        self._taken = 0
        self._taken_lock = threading.Lock()
        self._stop = threading.Event()
        self._drain_deadline = float("inf")
        self._last_read = time.monotonic()  # when the session last handed messages over
        self.connected = threading.Event()
        self._converting = threading.Thread(
            target=self._convert, name="collector-converter", daemon=True
        )
        self._worker = threading.Thread(target=self._run, name="collector-writer", daemon=True)
        self.subscriber = Subscriber(
            config.mqtt,
            self.cfg.client_id,
            self.topic_filter,
            receive_max=self.cfg.max_unacked,  # the cap on unacked messages (DESIGN.md)
            session_expiry_s=self.cfg.session_expiry_s,
            on_messages=self._on_messages,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            on_acked=self._on_acked,
            unsubscribe=self.other_filter,
            retire=retire,
            ready=lambda: self._taken < self.cfg.max_unacked,
        )
        self.confirmer: Confirmer | None = None
        if self.cfg.confirm:
            self.confirmer = Confirmer(
                self.cfg.client_id,
                self.cfg.confirm_interval_s,
                self.subscriber.publish,
                self.metrics,
            )

    # --- MQTT side (the session's network thread) ------------------------------------------

    @property
    def topic_filter(self) -> str:
        base = subscription(self.cfg.site)
        return f"$share/{self.cfg.shared_group}/{base}" if self.cfg.shared_group else base

    @property
    def other_filter(self) -> str:
        """The subscription this session may hold from the other layout (alone / shared).

        Subscriptions live in the persistent session: a collector that ran alone and now runs
        as worker 0 (same client id) would otherwise get every message twice, once on each.
        """
        base = subscription(self.cfg.site)
        return base if self.cfg.shared_group else f"$share/labmeter/{base}"

    def _on_connect(self, session_present: bool) -> None:
        self.connected.set()
        self.metrics.connected.set(1)
        log.info("connected (session present: %s)", session_present)

    def _on_disconnect(self, reason: str) -> None:
        self.connected.clear()
        self.metrics.connected.set(0)

    def _on_messages(self, generation: int, deliveries: list[Delivery]) -> None:
        if self._stop.is_set():
            # Draining: what arrives now stays unacked in the broker for the next start.
            self._last_read = float("inf")  # and this session is not empty: keep it
            return
        with self._taken_lock:
            self._taken += len(deliveries)
        self._raw.append(Received(generation, time.time_ns() // 1_000_000, deliveries))
        self._last_read = time.monotonic()

    def _on_acked(self, sent: int, settled: int) -> None:
        self.metrics.acked_total.inc(sent)
        self.metrics.unacked.dec(settled)

    # --- lifecycle --------------------------------------------------------------------------

    def writing(self) -> bool:
        """False once the worker thread has ended (stopped, or the rollup owner is gone)."""
        return self._worker.is_alive()

    def drained(self, idle_s: float = 3.0) -> bool:
        """Connected, nothing for ``idle_s``, everything taken acked: a retired session is empty."""
        return (
            self.connected.is_set()
            and time.monotonic() - self._last_read > idle_s  # never after a late read
            and not self._raw
            and not self._inbox
            and self.metrics.unacked_now == 0
        )

    def problems(self) -> list[str]:
        """Why the collector is not healthy (empty when it is): what ``/healthz`` reports."""
        out = []
        if not self.connected.is_set():
            out.append("not connected to the broker")
        if not self._worker.is_alive():
            out.append("writer thread not running")
        if not self._converting.is_alive() and not self._stop.is_set():
            out.append("converter thread not running")
        if self._held:
            out.append(f"InfluxDB refuses our writes ({self._held}): held, nothing dropped")
        return out

    def start(self, timeout: float = 10.0) -> None:
        if self.health is not None:
            self.health.start()
            log.info("metrics on http://%s:%d/metrics", self.cfg.metrics_host, self.health.port)
        if self.rollups is not None:
            self.rollups.start()
        start_periods(self.periods)
        self._converting.start()
        self._worker.start()
        self.subscriber.start()
        if not self.connected.wait(timeout):
            mq = self.config.mqtt
            log.warning("not connected to %s after %.0f s; retrying in background", mq.url, timeout)

    def stop(self, drain_timeout: float = 10.0) -> None:
        """Write and ack what has arrived, then disconnect; the rest stays in the broker.

        A write that cannot be made within ``drain_timeout`` is given up: its messages stay
        unacked in the broker's session for the next start, and one log line says so.
        """
        self._drain_deadline = time.monotonic() + drain_timeout
        self._stop.set()
        self._worker.join(drain_timeout + 5)
        if self.confirmer is not None and not self._worker.is_alive():
            self.confirmer.tick(force=True)  # what was written: before the DISCONNECT
        self.subscriber.end_session = self.subscriber.retire and self.drained(0.0)
        self.subscriber.stop()
        self._converting.join(5)
        self.periods.stop()
        if self.rollups is not None:
            self.rollups.stop()
        if self.health is not None:
            self.health.stop()
        self.dead_letters.close()

    # --- worker -------------------------------------------------------------------------------

    def _run(self) -> None:
        """Batch and write, then ack; until stopped.

        A batch is written when it reaches ``batch_lines`` lines or when its first message has
        waited ``batch_linger_s`` (or ``batch_interval_s``, the shorter). Batches still grow
        under load because there is one write at a time: whatever arrives while it is in
        flight is the next batch. Waiting for a 1 s timer at a steady 500 msg/s put most of
        a second into the p99 latency.
        """
        batch: list[Chunk] = []
        messages = 0  # in the batch
        lines: list[str] = []
        hours: set[int] = set()
        oldest = 0.0  # monotonic time the batch's first message was taken
        linger = min(self.cfg.batch_linger_s, self.cfg.batch_interval_s)
        inbox = self._inbox
        while True:
            taken = 0
            while inbox and len(lines) < self.cfg.batch_lines:
                chunk = inbox.popleft()
                taken += chunk.messages
                batch.append(chunk)
                lines.extend(chunk.lines)
                hours |= chunk.hours
            if taken:
                self.metrics.received_total.inc(taken)
                self.metrics.unacked.inc(taken)
                if messages == 0:
                    oldest = time.monotonic()
                messages += taken
            if batch and (
                len(lines) >= self.cfg.batch_lines
                or self._stop.is_set()
                or time.monotonic() - oldest >= linger
            ):
                try:
                    self._flush(batch, messages, lines, hours)
                except _Abandon:
                    left = messages + sum(c.messages for c in inbox)
                    log.warning(
                        "stopping: InfluxDB did not take the last writes within the drain "
                        "budget; %d messages stay unacked in the broker for the next start",
                        left,
                    )
                    return
                except _LedgerLost:
                    log.error("the rollup owner is gone: stopping, the rest stays unacked")
                    return
                batch, messages, lines, hours = [], 0, [], set()
            if self.confirmer is not None:
                self.confirmer.tick()
            if not inbox:
                # Only an inbox found empty *after* the converter finished is the end: its
                # last chunk may land between two looks (then the next turn takes it).
                if (
                    self._stop.is_set()
                    and not batch
                    and not self._converting.is_alive()
                    and not inbox
                ):
                    return
                time.sleep(POLL_S)

    def _convert(self) -> None:
        """Convert queued reads, several at a time (up to CHUNK messages), until stopped.

        After a stop it converts what was queued, so that the worker can write and ack it.
        """
        raw = self._raw
        while True:
            if not raw:
                if self._stop.is_set():
                    return
                time.sleep(POLL_S)
                continue
            first = raw.popleft()
            reads, deliveries = [first], list(first.deliveries)
            while raw and len(deliveries) < CHUNK:
                read = raw.popleft()
                reads.append(read)
                deliveries.extend(read.deliveries)
            received_ms = reads[-1].received_ms  # the reads are milliseconds apart
            acks: list[tuple[int, list[int]]] = []
            for read in reads:
                mids = [d[0] for d in read.deliveries]
                if acks and acks[-1][0] == read.generation:
                    acks[-1][1].extend(mids)
                else:
                    acks.append((read.generation, mids))
            admission = self.periods.admission
            converted = convert(deliveries, received_ms, admission)
            self._inbox.append(
                self._chunk(acks, deliveries, received_ms, converted, admission.version)
            )

    def _chunk(
        self,
        acks: list[tuple[int, list[int]]],
        deliveries: list[Delivery],
        received_ms: int,
        converted: Converted,
        version: int,
        known: frozenset[int] = frozenset(),
    ) -> Chunk:
        """A converted chunk; its refusals (but those in ``known``) go to dead letters."""
        for i, reason, detail in converted.rejected:
            if i in known:
                continue
            _mid, _qos, topic, payload, _props = deliveries[i]
            self._dead_letter(
                reason,
                detail,
                topic=topic.decode("utf-8", "replace"),
                payload=payload,
                received_ms=received_ms,
            )
        refused = self.periods.refusal_lines(
            (reason, deliveries[i][2]) for i, reason, _ in converted.rejected
        )
        rejected = frozenset(i for i, _, _ in converted.rejected)
        return Chunk(
            acks,
            deliveries,
            received_ms,
            converted.lines + refused,
            converted.hours,
            version,
            rejected,
        )

    def _dead_letter(
        self, reason: str, detail: str, *, topic: str, payload: bytes, received_ms: int
    ) -> None:
        """Counted by reason and kept on disk: nothing refused is silent."""
        self.metrics.rejected_total.labels(reason).inc()
        self.dead_letters.add(reason, detail, topic=topic, payload=payload, received_ms=received_ms)

    def _mark_behind(self) -> None:
        self._last_behind = time.monotonic()

    def _draining(self) -> bool:
        """True while batches are big or many messages wait behind them: a backlog drains."""
        return time.monotonic() - self._last_behind < 2.0

    def _flush(self, batch: list[Chunk], messages: int, lines: list[str], hours: set[int]) -> None:
        started = time.monotonic()
        while True:
            version = self.periods.admission.version
            if any(chunk.version != version for chunk in batch):
                lines, hours = self._readmit(batch)
            try:
                self._write(lines, version)
                break
            except _Stale:
                continue
        behind = len(lines) >= self.cfg.batch_lines or messages + len(self._raw) >= BEHIND
        self.dead_letters.sync()  # refused messages are on disk before they are acked
        if self.ledger is not None and (hours or behind):
            try:
                self.ledger.touch(hours, behind)  # owed hours are on disk before the acks
            except (EOFError, OSError) as exc:
                raise _LedgerLost() from exc
        # The budget first: an ack wakes the session, which must find room to read again
        # (woken before, it waited up to a quarter of a second: a fifth of a drain's rate).
        with self._taken_lock:
            self._taken -= messages
        # Acks in arrival order, with their connection; the session sends them as one write
        # and drops those of a connection that is gone (the broker redelivers those).
        for chunk in batch:
            for generation, mids in chunk.acks:
                self.subscriber.ack(generation, mids)
        if self.confirmer is not None:  # written, or refused and in dead letters
            for chunk in batch:
                self.confirmer.settled(chunk.deliveries)
        self.metrics.written_total.inc(len(lines))
        self.metrics.batch_lines.observe(len(lines))
        self.metrics.batch_seconds.observe(time.monotonic() - started)

    def _readmit(self, batch: list[Chunk]) -> tuple[list[str], set[int]]:
        """Convert again, in this thread, the chunks converted under older closed periods (a
        period was closed meanwhile: rare); return the batch's lines and hours."""
        admission = self.periods.admission
        for n, chunk in enumerate(batch):
            if chunk.version != admission.version:
                converted = convert(chunk.deliveries, chunk.received_ms, admission)
                batch[n] = self._chunk(
                    chunk.acks,
                    chunk.deliveries,
                    chunk.received_ms,
                    converted,
                    admission.version,
                    chunk.rejected,
                )
        return [ln for chunk in batch for ln in chunk.lines], {h for c in batch for h in c.hours}

    def _write(self, lines: list[str], version: int) -> None:
        """Write until it succeeds; split on 413; bisect a 400/422 down to the lines refused.

        Every attempt is checked against the closed periods the lines were converted under
        (``_Stale`` when they changed): see ``collector/admission.py``. Once stopping, a
        write that fails is retried only within the drain budget, quietly: the caller says
        once what stays unacked.
        """
        if not lines:
            return
        attempt = 0
        while True:
            try:
                if not self.periods.begin_write(version):
                    raise _Stale()
                try:
                    self.writer.write_lines(lines)
                finally:
                    self.periods.end_write()
                if self._held:
                    log.warning("InfluxDB accepts writes again")
                    self._held = ""
                    self.metrics.write_held.set(0)
                return
            except InfluxError as exc:
                self.metrics.write_errors_total.labels(str(exc.status)).inc()
                # A failed read of the closures (QueryError) says nothing of the lines: it
                # waits like a failed write, it never splits nor dead-letters them.
                refused = isinstance(exc, WriteError)
                if refused and exc.status == 413 and len(lines) > 1:
                    half = len(lines) // 2
                    self._write(lines[:half], version)
                    self._write(lines[half:], version)
                    return
                if refused and exc.status in (400, 422):
                    if len(lines) == 1:
                        # The data itself is refused (e.g. a field type conflict): keep it.
                        self._dead_letter(
                            "write_rejected",
                            exc.message,
                            topic="",
                            payload=lines[0].encode(),
                            received_ms=time.time_ns() // 1_000_000,
                        )
                        return
                    # Rewriting accepted lines is harmless: same points, same values.
                    half = len(lines) // 2
                    self._write(lines[:half], version)
                    self._write(lines[half:], version)
                    return
                attempt += 1
                delay = min(10.0, 0.2 * 2 ** min(attempt, 8)) * random.uniform(0.5, 1.0)
                if exc.retry_after is not None:
                    delay = max(delay, exc.retry_after)
                stopping = self._stop.is_set()
                if stopping and time.monotonic() + delay > self._drain_deadline:
                    raise _Abandon() from exc
                if exc.status in (401, 403, 404):
                    # Credentials or a missing database: only an operator can fix them, but
                    # dropping would lose data. Hold (the broker keeps the rest), say so
                    # loudly on /healthz, the metric and the log, and keep trying.
                    self._held = f"HTTP {exc.status}: {exc.message[:200]}"
                    self.metrics.write_held.set(1)
                    if not stopping:
                        log.error("InfluxDB refuses our writes (%s): held", exc)
                elif not stopping:
                    # 429/5xx/connection errors, and anything unknown: back off with jitter.
                    log.warning("write failed (%s); retrying in %.1f s", exc, delay)
                if stopping:
                    time.sleep(delay)
                elif self._stop.wait(delay):
                    attempt = 0  # stopped meanwhile: try once more now, within the budget


def make_periods(
    config: Config,
    reader: Reader | None,
    writer: LineWriter,
    metrics: Metrics,
    name: str,
    rollups: Callable[[], Rollups | None],
) -> PeriodWatch:
    """The closed periods and late-data horizon applied by ``name`` (its heartbeat's name)."""
    cfg = config.collector

    def owed_from() -> int | None:
        owner = rollups()
        return min(owner.pending(), default=None) if owner is not None else None

    def on_refresh(admission: Admission) -> None:
        metrics.closed_periods.set(len(admission.closed))

    return PeriodWatch(
        reader,
        writer,
        collector=name,
        max_age_ms=round(cfg.max_age_days * DAY_MS),
        offset_ms=round(cfg.clock_offset_s * 1000),
        refresh_s=cfg.periods_refresh_s,
        owed_from=owed_from,
        on_refresh=on_refresh,
    )


def start_periods(periods: PeriodWatch) -> None:
    try:  # closed periods before the first message; else the first write reads them
        periods.refresh()
    except InfluxError as exc:
        log.warning("closed periods not read at start (%s)", exc)
    periods.start()


def make_rollups(
    config: Config,
    reader: Reader,
    writer: LineWriter,
    metrics: Metrics,
    busy: Callable[[], bool],
    periods: PeriodWatch,
) -> Rollups:
    """The hourly rollups of this collector's site, with their state file."""
    cfg = config.collector
    state = cfg.rollup_state_path or str(Path(cfg.dead_letter_path).with_suffix(".rollups.json"))
    return Rollups(
        reader,
        writer,
        metrics,
        site=cfg.site,
        state_path=Path(state),
        grace_s=cfg.rollup_grace_s,
        settle_s=cfg.rollup_settle_s,
        busy=busy,
        frozen=lambda hour: periods.admission.frozen_hour(hour, cfg.site),
        opening=OpeningHours(load_inventory(cfg.inventory) if cfg.inventory else None),
        catch_up=cfg.client_id if cfg.catch_up else None,
    )
