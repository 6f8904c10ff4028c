"""MQTT -> InfluxDB with ack after write.

paho's callback validates and converts the message (CPU only, never blocking: an HTTP write
there stalls the client and made the broker drop messages, DESIGN.md) and queues its lines.
One worker thread batches, writes, and only then acks, in arrival order. A crash before the
write leaves the messages unacked in the broker's persistent session, which redelivers them;
the rewrite lands on the same points.
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

from collector.convert import parse
from collector.deadletter import DeadLetters
from collector.metrics import HealthServer, Metrics
from collector.rollups import Reader, Rollups, hour_of
from labmeter.config import Config
from labmeter.contract import Sample, subscription
from labmeter.errors import PayloadRejected, WriteError
from labmeter.influx import LineWriter
from labmeter.inventory import load as load_inventory
from labmeter.mqtt import make_client
from labmeter.opening import OpeningHours

log = logging.getLogger(__name__)

POLL_S = 0.005  # how often the worker looks for new messages when it has none
# Messages in a batch plus those waiting after its write that mean the collector is behind
# (a backlog drains): at a steady load a batch holds a handful, in a drain thousands.
BEHIND = 200
# How long written batches wait for paho's thread to ack them before the worker does: paho's
# thread gets to them within a message when messages flow; the worker is only the fallback.
ACK_WAIT_S = 0.02


@dataclass(slots=True)
class Received:
    """A converted message waiting for its write: what to ack, and what to write."""

    mid: int
    qos: int
    generation: int
    lines: list[str]
    hour: int | None  # the hour a sample falls in, owed a rollup once written


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
                opening=OpeningHours(
                    load_inventory(self.cfg.inventory) if self.cfg.inventory else None
                ),
            )
        self.health: HealthServer | None = None
        if self.cfg.metrics_port is not None:
            self.health = HealthServer(
                self.cfg.metrics_host, self.cfg.metrics_port, self.metrics, self.problems
            )
        # A bare deque the worker polls, not a queue that wakes it: waking the worker for every
        # message cost two thread switches per message and capped the drain at ~1/3 of a bare
        # subscriber. append/popleft are atomic; polling adds at most POLL_S of latency.
        self._inbox: deque[Received] = deque()
        # Written batches whose acks are owed, oldest first, with the time each was queued.
        # paho's thread sends them as the next message arrives (see ``_send_acks``); the
        # worker only when they waited ACK_WAIT_S, when nothing arrives.
        self._acks: deque[tuple[float, list[Received]]] = deque()
        self._stop = threading.Event()
        self._drain_deadline = float("inf")
        self._last_behind = 0.0  # monotonic time a batch last showed a backlog (BEHIND)
        self._generation = 0
        self._gen_lock = threading.Lock()
        self.connected = threading.Event()
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
        # Converting here rather than in a second thread is deliberate: paho's thread does a
        # select() per message, and after each one it waited for the GIL behind a CPU-bound
        # converter thread (the convoy effect), which capped the drain at ~1/3 of a bare
        # subscriber. Parsing never blocks and only raises PayloadRejected.
        if self._acks:
            self._send_acks()
        if self._stop.is_set():
            # Draining: what arrives now stays unacked in the broker for the next start.
            return
        received_ms = time.time_ns() // 1_000_000
        payload = bytes(msg.payload)  # already bytes from paho: no copy
        lines: list[str] = []
        hour = None
        try:
            message, lines = parse(msg._topic, payload, received_ms)  # raw topic bytes
        except PayloadRejected as exc:
            self._reject(exc, msg._topic.decode("utf-8", "replace"), payload, received_ms)
        else:
            body = message.payload
            if isinstance(body, Sample):
                hour = hour_of(body.ts - round(body.interval_s * 1000))
        self._inbox.append(Received(msg.mid, msg.qos, self._generation, lines, hour))

    # --- lifecycle --------------------------------------------------------------------------

    def problems(self) -> list[str]:
        """Why the collector is not healthy (empty when it is): what ``/healthz`` reports."""
        out = []
        if not self.connected.is_set():
            out.append("not connected to the broker")
        if not self._worker.is_alive():
            out.append("writer thread not running")
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
        batch: list[Received] = []
        lines: list[str] = []
        hours: set[int] = set()
        oldest = 0.0  # monotonic time the batch's first message was taken
        linger = min(self.cfg.batch_linger_s, self.cfg.batch_interval_s)
        inbox = self._inbox
        while True:
            taken = 0
            while inbox and len(lines) < self.cfg.batch_lines:
                item = inbox.popleft()
                taken += 1
                batch.append(item)
                lines.extend(item.lines)
                if item.hour is not None:
                    hours.add(item.hour)
            if taken:
                self.metrics.received_total.inc(taken)
                self.metrics.unacked.inc(taken)
                if len(batch) == taken:
                    oldest = time.monotonic()
            if batch and (
                len(lines) >= self.cfg.batch_lines
                or self._stop.is_set()
                or time.monotonic() - oldest >= linger
            ):
                try:
                    self._flush(batch, lines, hours)
                except _Abandon:
                    self._send_acks()  # what was written before
                    return
                batch, lines, hours = [], [], set()
            if not inbox:
                if self._stop.is_set() and not batch:
                    self._send_acks()
                    return
                self._send_late_acks()
                time.sleep(POLL_S)

    def _reject(self, exc: PayloadRejected, topic: str, payload: bytes, received_ms: int) -> None:
        self.metrics.rejected_total.labels(exc.reason).inc()
        self.dead_letters.add(
            exc.reason, exc.detail, topic=topic, payload=payload, received_ms=received_ms
        )

    def _draining(self) -> bool:
        """True while batches are big or many messages wait behind them: a backlog drains."""
        return time.monotonic() - self._last_behind < 2.0

    def _flush(self, batch: list[Received], lines: list[str], hours: set[int]) -> None:
        started = time.monotonic()
        self._write(lines)
        if len(lines) >= self.cfg.batch_lines or len(batch) + len(self._inbox) >= BEHIND:
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
            while self._acks:
                _, batch = self._acks.popleft()
                given += len(batch)
                for item in batch:
                    if item.generation == self._generation and item.qos > 0:
                        self.client.ack(item.mid, item.qos)
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

    def _write(self, lines: list[str]) -> None:
        """Write until it succeeds; split on 413; bisect a 400/422 down to the lines refused."""
        if not lines:
            return
        attempt = 0
        while True:
            try:
                self.writer.write_lines(lines)
                if self._held:
                    log.warning("InfluxDB accepts writes again")
                    self._held = ""
                    self.metrics.write_held.set(0)
                return
            except WriteError as exc:
                self.metrics.write_errors_total.labels(str(exc.status)).inc()
                if exc.status == 413 and len(lines) > 1:
                    half = len(lines) // 2
                    self._write(lines[:half])
                    self._write(lines[half:])
                    return
                if exc.status in (400, 422):
                    if len(lines) == 1:
                        # The data itself is refused (e.g. a field type conflict): keep it.
                        self.metrics.rejected_total.labels("write_rejected").inc()
                        self.dead_letters.add(
                            "write_rejected",
                            exc.message,
                            topic="",
                            payload=lines[0].encode(),
                            received_ms=time.time_ns() // 1_000_000,
                        )
                        return
                    # Rewriting accepted lines is harmless: same points, same values.
                    half = len(lines) // 2
                    self._write(lines[:half])
                    self._write(lines[half:])
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
