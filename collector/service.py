"""MQTT -> InfluxDB with ack after write.

paho's callback only queues the message (blocking there stalls the client and made the broker
drop messages, DESIGN.md). One worker thread validates, converts, batches, writes, and only
then acks, in arrival order. A crash before the write leaves the messages unacked in the
broker's persistent session, which redelivers them; the rewrite lands on the same points.
"""

from __future__ import annotations

import logging
import queue
import random
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from collector.convert import to_lines
from collector.deadletter import DeadLetters
from labmeter.config import Config
from labmeter.contract import decode, subscription
from labmeter.errors import PayloadRejected, WriteError

log = logging.getLogger(__name__)


class LineWriter(Protocol):
    def write_lines(self, lines: list[str]) -> None: ...


@dataclass(slots=True)
class Received:
    topic: bytes
    payload: bytes
    mid: int
    qos: int
    received_ms: int
    generation: int


@dataclass
class Stats:
    received: int = 0
    written_lines: int = 0
    acked: int = 0
    batches: int = 0
    write_errors: Counter[str] = field(default_factory=Counter)
    last_batch_size: int = 0
    last_batch_seconds: float = 0.0


class _Abandon(Exception):
    """Shutting down while the database refuses: leave the batch unacked for redelivery."""


class Collector:
    def __init__(self, config: Config, writer: LineWriter) -> None:
        self.config = config
        self.cfg = config.collector
        self.writer = writer
        self.dead_letters = DeadLetters(self.cfg.dead_letter_path)
        self.stats = Stats()
        self._inbox: queue.SimpleQueue[Received] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._drain_deadline = float("inf")
        self._generation = 0
        self._gen_lock = threading.Lock()
        self.connected = threading.Event()
        self._worker = threading.Thread(target=self._run, name="collector-writer", daemon=True)
        self.client = self._make_client()

    # --- MQTT side (paho's network thread) -----------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.cfg.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        mq = self.config.mqtt
        if mq.username:
            client.username_pw_set(mq.username, mq.password)
        if mq.tls:
            client.tls_set(ca_certs=mq.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    @property
    def topic_filter(self) -> str:
        base = subscription(self.cfg.site)
        return f"$share/{self.cfg.shared_group}/{base}" if self.cfg.shared_group else base

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
        client.subscribe(self.topic_filter, qos=1)
        self.connected.set()
        log.info("connected (session present: %s)", flags.session_present)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        # Message ids restart with each connection: an ack for an old mid could ack a new,
        # unwritten message. Bump the generation so old ones are never acked.
        with self._gen_lock:
            self._generation += 1
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("disconnected from broker: %s", reason)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self._inbox.put(
            Received(
                msg._topic,  # raw bytes: .topic raises on invalid UTF-8
                bytes(msg.payload),
                msg.mid,
                msg.qos,
                time.time_ns() // 1_000_000,
                self._generation,
            )
        )

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        mq = self.config.mqtt
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.cfg.session_expiry_s
        # The cap on unacked messages: the broker sends no more until we ack (DESIGN.md).
        props.ReceiveMaximum = self.cfg.max_unacked
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
        self.dead_letters.close()

    # --- worker -------------------------------------------------------------------------------

    def _run(self) -> None:
        batch: list[Received] = []
        lines: list[str] = []
        deadline = time.monotonic() + self.cfg.batch_interval_s
        while True:
            timeout = max(0.0, deadline - time.monotonic())
            try:
                item = self._inbox.get(timeout=min(timeout, 0.2))
            except queue.Empty:
                item = None
            if item is not None:
                self.stats.received += 1
                batch.append(item)
                lines.extend(self._convert(item))
            full = len(lines) >= self.cfg.batch_lines
            if batch and (full or time.monotonic() >= deadline or self._stop.is_set()):
                try:
                    self._flush(batch, lines)
                except _Abandon:
                    return
                batch, lines = [], []
            if not batch:
                deadline = time.monotonic() + self.cfg.batch_interval_s
            if self._stop.is_set() and not batch and self._inbox.empty():
                return

    def _convert(self, item: Received) -> list[str]:
        try:
            topic = item.topic.decode("utf-8")
        except UnicodeDecodeError:
            self._reject(item, PayloadRejected("topic_invalid", "topic is not UTF-8"), "")
            return []
        try:
            return to_lines(decode(topic, item.payload, item.received_ms), item.received_ms)
        except PayloadRejected as exc:
            self._reject(item, exc, topic)
            return []

    def _reject(self, item: Received, exc: PayloadRejected, topic: str) -> None:
        self.dead_letters.add(
            exc.reason, exc.detail, topic=topic, payload=item.payload, received_ms=item.received_ms
        )

    def _flush(self, batch: list[Received], lines: list[str]) -> None:
        started = time.monotonic()
        self._write(lines)
        self.dead_letters.sync()  # refused messages are on disk before they are acked
        with self._gen_lock:
            generation = self._generation
        for item in batch:
            if item.generation == generation and item.qos > 0:
                self.client.ack(item.mid, item.qos)
                self.stats.acked += 1
        self.stats.batches += 1
        self.stats.written_lines += len(lines)
        self.stats.last_batch_size = len(lines)
        self.stats.last_batch_seconds = time.monotonic() - started

    def _write(self, lines: list[str]) -> None:
        """Write until it succeeds; split on 413; bisect a 400/422 down to the lines refused."""
        if not lines:
            return
        attempt = 0
        while True:
            try:
                self.writer.write_lines(lines)
                return
            except WriteError as exc:
                self.stats.write_errors[str(exc.status)] += 1
                if exc.status == 413 and len(lines) > 1:
                    half = len(lines) // 2
                    self._write(lines[:half])
                    self._write(lines[half:])
                    return
                if exc.status in (400, 422):
                    if len(lines) == 1:
                        # The data itself is refused (e.g. a field type conflict): keep it.
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
                # 401/403 and anything unknown: hold and report, never drop.
                # 429/5xx/connection errors: back off with jitter, honouring Retry-After.
                attempt += 1
                delay = min(30.0, 0.2 * 2 ** min(attempt, 8)) * random.uniform(0.5, 1.0)
                if exc.retry_after is not None:
                    delay = max(delay, exc.retry_after)
                log.warning("write failed (%s); retrying in %.1f s", exc, delay)
                if self._stop.is_set() and time.monotonic() + delay > self._drain_deadline:
                    raise _Abandon() from exc
                time.sleep(delay)
