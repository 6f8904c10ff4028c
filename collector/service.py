"""MQTT -> InfluxDB with ack after write.

paho's callback only queues the message (never blocking: an HTTP write there stalls the
client and made the broker drop messages, DESIGN.md). A converter thread hands queued
messages in chunks to a child process that validates and converts them (``converter.py``);
one worker thread batches the lines, writes, and only then acks, in arrival order. A crash
before the write leaves the messages unacked in the broker's persistent session, which
redelivers them; the rewrite lands on the same points.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from collector.admission import DAY_MS, PeriodWatch
from collector.converter import Converted, Converter, Raw, convert
from collector.deadletter import DeadLetters
from collector.metrics import HealthServer, Metrics
from collector.rollups import Reader, Rollups
from labmeter.config import Config
from labmeter.contract import subscription
from labmeter.errors import WriteError
from labmeter.influx import LineWriter
from labmeter.inventory import load as load_inventory
from labmeter.mqtt import make_client
from labmeter.opening import OpeningHours

log = logging.getLogger(__name__)

POLL_S = 0.005  # how often the converter and the worker look for work when they have none
CHUNK = 250  # messages per trip to the converter process (~750 lines; a batch is ~5,000)
# Messages in a batch plus those waiting after its write that mean the collector is behind
# (a backlog drains): at a steady load a batch holds a handful, in a drain thousands.
BEHIND = 200
# How long written batches wait for paho's thread to ack them before the worker does: paho's
# thread gets to them within a message when messages flow; the worker is only the fallback.
ACK_WAIT_S = 0.02


@dataclass(slots=True)
class Chunk:
    """Converted messages waiting for their write: what to ack, and what to write."""

    raw: list[Raw]  # in arrival order; each acked (mid, qos, generation) once written
    lines: list[str]
    hours: set[int]  # the hours its samples fall in, owed a rollup once written
    version: int  # the closed periods it was converted under (``collector/admission.py``)
    rejected: frozenset[int]  # indices in ``raw`` already sent to dead letters


class _Stale(Exception):
    """Closed periods changed since the batch was converted: convert it again first."""


class _Abandon(Exception):
    """Shutting down while the database refuses: leave the batch unacked for redelivery."""


class Collector:
    def __init__(self, config: Config, writer: LineWriter, reader: Reader | None = None) -> None:
        """``reader`` (InfluxQL) enables the hourly rollups; without it none are written."""
        self.config = config
        self.cfg = config.collector
        self.writer = writer
        self.dead_letters = DeadLetters(self.cfg.dead_letter_path)
        self.metrics = Metrics()
        self._held = ""  # why writes are held (401/403/404), empty while they flow
        self.rollups: Rollups | None = None
        self.periods = PeriodWatch(
            reader,
            writer,
            collector=self.cfg.client_id,
            max_age_ms=round(self.cfg.max_age_days * DAY_MS),
            offset_ms=round(self.cfg.clock_offset_s * 1000),
            refresh_s=self.cfg.periods_refresh_s,
            owed_from=lambda: min(self.rollups.pending(), default=None) if self.rollups else None,
            on_refresh=lambda admission: self.metrics.closed_periods.set(len(admission.closed)),
        )
        if reader is not None and self.cfg.rollups:
            state = self.cfg.rollup_state_path or str(
                Path(self.cfg.dead_letter_path).with_suffix(".rollups.json")
            )
            self.rollups = Rollups(
                reader,
                writer,
                self.metrics,
                site=self.cfg.site,
                state_path=Path(state),
                grace_s=self.cfg.rollup_grace_s,
                settle_s=self.cfg.rollup_settle_s,
                busy=self._draining,
                frozen=lambda hour: self.periods.admission.frozen_hour(hour, self.cfg.site),
                opening=OpeningHours(
                    load_inventory(self.cfg.inventory) if self.cfg.inventory else None
                ),
            )
        self.health: HealthServer | None = None
        if self.cfg.metrics_port is not None:
            self.health = HealthServer(
                self.cfg.metrics_host, self.cfg.metrics_port, self.metrics, self.problems
            )
        # Bare deques polled, not queues that wake their reader: waking a thread for every
        # message cost two thread switches per message and capped the drain at ~1/3 of a
        # bare subscriber. append/popleft are atomic; polling adds at most POLL_S of latency.
        self._raw: deque[Raw] = deque()  # paho's thread -> converter thread
        self._inbox: deque[Chunk] = deque()  # converter thread -> worker
        # Written batches whose acks are owed, oldest first, with the time each was queued.
        # paho's thread sends them as the next message arrives (see ``_send_acks``); the
        # worker only when they waited ACK_WAIT_S, when nothing arrives.
        self._acks: deque[tuple[float, list[Chunk]]] = deque()
        self.converter = Converter(self.metrics.converter_restarts_total.inc)
        self._stop = threading.Event()
        self._drain_deadline = float("inf")
        self._last_behind = 0.0  # monotonic time a batch last showed a backlog (BEHIND)
        self._generation = 0
        self._gen_lock = threading.Lock()
        self.connected = threading.Event()
        self._converting = threading.Thread(
            target=self._convert, name="collector-converter", daemon=True
        )
        self._worker = threading.Thread(target=self._run, name="collector-writer", daemon=True)
        self.client = self._make_client()

    # --- MQTT side (paho's network thread) -----------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = make_client(self.config.mqtt, self.cfg.client_id, manual_ack=True)
        # A restarted broker should get its collector back within seconds, not paho's 120 s.
        client.reconnect_delay_set(1, 10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    @property
    def topic_filter(self) -> str:
        base = subscription(self.cfg.site)
        return f"$share/{self.cfg.shared_group}/{base}" if self.cfg.shared_group else base

    def _new_generation(self) -> None:
        # Message ids restart with each connection: an ack for an old mid could ack a new,
        # unwritten message. A new generation on every (dis)connect means old ones never are.
        with self._gen_lock:
            self._generation += 1

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the collector: %s", reason)
            return
        self._new_generation()
        client.subscribe(self.topic_filter, qos=1)
        self.connected.set()
        self.metrics.connected.set(1)
        log.info("connected (session present: %s)", flags.session_present)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._new_generation()
        self.connected.clear()
        self.metrics.connected.set(0)
        if not self._stop.is_set():
            log.warning("disconnected from broker: %s", reason)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        # Only queued: paho's thread is the drain's bottleneck (it reads, decodes and acks
        # every message under the GIL), so parsing happens in the converter process.
        if self._acks:
            self._send_acks()
        if self._stop.is_set():
            # Draining: what arrives now stays unacked in the broker for the next start.
            return
        self._raw.append(
            (
                msg.mid,
                msg.qos,
                self._generation,
                msg._topic,  # raw topic bytes: parse() checks the UTF-8 and says why not
                bytes(msg.payload),  # already bytes from paho: no copy
                time.time_ns() // 1_000_000,
            )
        )

    # --- lifecycle --------------------------------------------------------------------------

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
        mq = self.config.mqtt
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.cfg.session_expiry_s
        # The cap on unacked messages: the broker sends no more until we ack (DESIGN.md).
        props.ReceiveMaximum = self.cfg.max_unacked
        if self.health is not None:
            self.health.start()
            log.info("metrics on http://%s:%d/metrics", self.cfg.metrics_host, self.health.port)
        if self.rollups is not None:
            self.rollups.start()
        try:  # closed periods before the first message; else the first write reads them
            self.periods.refresh()
        except WriteError as exc:
            log.warning("closed periods not read at start (%s)", exc)
        self.periods.start()
        self.converter.start()
        self._converting.start()
        self._worker.start()
        self.client.connect_async(
            mq.host, mq.port, mq.keepalive_s, clean_start=False, properties=props
        )
        self.client.loop_start()
        if not self.connected.wait(timeout):
            log.warning("not connected to %s after %.0f s; retrying in background", mq.url, timeout)

    def stop(self, drain_timeout: float = 10.0) -> None:
        """Write and ack what has arrived, then disconnect; the rest stays in the broker."""
        self._drain_deadline = time.monotonic() + drain_timeout
        self._stop.set()
        self._worker.join(drain_timeout + 5)
        self.client.disconnect()
        self.client.loop_stop()
        self._converting.join(5)
        self.converter.close()
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
                taken += len(chunk.raw)
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
                    self._send_acks()  # what was written before
                    return
                batch, messages, lines, hours = [], 0, [], set()
            if not inbox:
                # Only an inbox found empty *after* the converter finished is the end: its
                # last chunk may land between two looks (then the next turn takes it).
                if (
                    self._stop.is_set()
                    and not batch
                    and not self._converting.is_alive()
                    and not inbox
                ):
                    self._send_acks()
                    return
                self._send_late_acks()
                time.sleep(POLL_S)

    def _convert(self) -> None:
        """Hand queued messages to the converter process in chunks, in order, until stopped.

        Mostly waiting on the pipe, without the GIL. After a stop it converts what was queued,
        so that the worker can write and ack it.
        """
        raw = self._raw
        while True:
            if not raw:
                if self._stop.is_set():
                    return
                time.sleep(POLL_S)
                continue
            chunk = [raw.popleft() for _ in range(min(len(raw), CHUNK))]
            admission = self.periods.admission
            self._inbox.append(
                self._chunk(chunk, self.converter(chunk, admission), admission.version)
            )

    def _chunk(
        self,
        raw: list[Raw],
        converted: Converted,
        version: int,
        known: frozenset[int] = frozenset(),
    ) -> Chunk:
        """A converted chunk; its refusals (but those in ``known``) go to dead letters."""
        for i, reason, detail in converted.rejected:
            if i in known:
                continue
            _mid, _qos, _gen, topic, payload, received_ms = raw[i]
            self._dead_letter(
                reason,
                detail,
                topic=topic.decode("utf-8", "replace"),
                payload=payload,
                received_ms=received_ms,
            )
        refused = self.periods.refusal_lines((r, raw[i][3]) for i, r, _ in converted.rejected)
        rejected = frozenset(i for i, _, _ in converted.rejected)
        return Chunk(raw, converted.lines + refused, converted.hours, version, rejected)

    def _dead_letter(
        self, reason: str, detail: str, *, topic: str, payload: bytes, received_ms: int
    ) -> None:
        """Counted by reason and kept on disk: nothing refused is silent."""
        self.metrics.rejected_total.labels(reason).inc()
        self.dead_letters.add(reason, detail, topic=topic, payload=payload, received_ms=received_ms)

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
        if len(lines) >= self.cfg.batch_lines or messages + len(self._raw) >= BEHIND:
            self._last_behind = time.monotonic()
        self.dead_letters.sync()  # refused messages are on disk before they are acked
        if self.rollups is not None and hours:
            self.rollups.touch(hours)  # owed hours are on disk before they are acked
        self._acks.append((time.monotonic(), batch))
        self.metrics.written_total.inc(len(lines))
        self.metrics.batch_lines.observe(len(lines))
        self.metrics.batch_seconds.observe(time.monotonic() - started)

    def _send_acks(self) -> None:
        """Ack the written batches, in order; from paho's thread, or the worker's when idle.

        Acking from the worker cost paho's thread a GIL hand-off per ack: every ``ack()``
        writes to paho's wake-up socket, releasing the GIL, and paho's thread releases it four
        times per message it reads, so the two threads took turns ack by ack. In paho's own
        thread the acks run between two messages, as a bare subscriber's do.
        """
        acked = given = 0
        # Held across the acks: a reconnect cannot slip in between the check and the send,
        # and the two threads cannot interleave batches (PUBACKs go in arrival order).
        with self._gen_lock:
            generation = self._generation
            while self._acks:
                _, batch = self._acks.popleft()
                for chunk in batch:
                    given += len(chunk.raw)
                    for mid, qos, gen, _topic, _payload, _ms in chunk.raw:
                        if gen == generation and qos > 0:
                            self.client.ack(mid, qos)
                            acked += 1
        if given:
            self.metrics.acked_total.inc(acked)
            self.metrics.unacked.dec(given)

    def _send_late_acks(self) -> None:
        """The worker's fallback: ack what paho's thread has left waiting (nothing arrives)."""
        try:
            queued, _ = self._acks[0]
        except IndexError:  # none owed, or paho's thread took the last one meanwhile
            return
        if time.monotonic() - queued >= ACK_WAIT_S:
            self._send_acks()

    def _readmit(self, batch: list[Chunk]) -> tuple[list[str], set[int]]:
        """Convert again, in this thread, the chunks converted under older closed periods (a
        period was closed meanwhile: rare); return the batch's lines and hours."""
        admission = self.periods.admission
        for n, chunk in enumerate(batch):
            if chunk.version != admission.version:
                converted = convert(chunk.raw, admission)
                batch[n] = self._chunk(chunk.raw, converted, admission.version, chunk.rejected)
        return [ln for chunk in batch for ln in chunk.lines], {h for c in batch for h in c.hours}

    def _write(self, lines: list[str], version: int) -> None:
        """Write until it succeeds; split on 413; bisect a 400/422 down to the lines refused.

        Every attempt is checked against the closed periods the lines were converted under
        (``_Stale`` when they changed): see ``collector/admission.py``.
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
            except WriteError as exc:
                self.metrics.write_errors_total.labels(str(exc.status)).inc()
                if exc.status == 413 and len(lines) > 1:
                    half = len(lines) // 2
                    self._write(lines[:half], version)
                    self._write(lines[half:], version)
                    return
                if exc.status in (400, 422):
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
                if exc.status in (401, 403, 404):
                    # Credentials or a missing database: only an operator can fix them, but
                    # dropping would lose data. Hold (the broker keeps the rest), say so
                    # loudly on /healthz, the metric and the log, and keep trying.
                    self._held = f"HTTP {exc.status}: {exc.message[:200]}"
                    self.metrics.write_held.set(1)
                    log.error("InfluxDB refuses our writes (%s): held", exc)
                else:
                    # 429/5xx/connection errors, and anything unknown: back off with jitter.
                    log.warning("write failed (%s); retrying in %.1f s", exc, delay)
                if self._stop.is_set() and time.monotonic() + delay > self._drain_deadline:
                    raise _Abandon() from exc
                time.sleep(delay)
