"""MQTT publishing for one device: QoS 1, ``online`` on connect, ``offline`` as the last will.

The agent publishes from its durable queue (``pump``): rows go to paho in order under the
topic each was measured under, each labelled with the queue's id and its own
(``contract.ROW_PROPERTY``). A row leaves the queue when the collector confirms it
(``contract.Confirmation`` on the device's confirmation topic, subscribed to on every
connection): its message is in InfluxDB, or in the collector's dead letters with its reason.
A broker's PUBACK only says the broker holds it for now. Until confirmed, a row is sent again:

- on every connection, with every other row sent and not confirmed: a broker restarted, or
  killed before its last save, may have lost what it acknowledged;
- ``resend_s`` after a row sent later than it was confirmed: the broker dropped it (a shared
  subscription not restored across a restart, a full queue), or the collector that holds it
  is that far behind the one that confirmed the later row;
- as a probe, the oldest one, when nothing was confirmed or sent for ``resend_s`` (doubling
  up to PROBE_MAX_S while nothing comes back): rows a broker lost when nothing was sent after
  them are not left waiting for the next connection.

At most ``window`` rows wait for a confirmation at once, so while the collector is away the
backlog waits on the agent's disk rather than in the broker's memory. A row sent again carries
the same payload and lands on the same InfluxDB points. A queue file of which no collector has
ever confirmed a row (a collector that does not publish confirmations) deletes rows on PUBACK.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from labmeter import __version__
from labmeter.agent.queue import DurableQueue, Queued
from labmeter.config import MqttConfig
from labmeter.contract import (
    MAX_ROW_ID,
    ROW_PROPERTY,
    Event,
    Sample,
    Status,
    Topic,
    confirm_filter,
    decode_confirmation,
    encode,
    row_label,
)
from labmeter.errors import LabmeterError, PayloadRejected
from labmeter.mqtt import make_client

log = logging.getLogger(__name__)

PUBACK_WINDOW = 1000  # rows handed to paho and awaiting PUBACK at once (its limit: 65,535)
PROBE_MAX_S = 1800.0


class PublishError(LabmeterError):
    """paho refused a publish (its queue is full or the client is gone)."""


class Publisher:
    """Publishes one device's samples, events and status; knows which rows are unconfirmed."""

    def __init__(
        self,
        mqtt_config: MqttConfig,
        topic: Topic,
        *,
        kind: str | None = None,
        interval_s: float | None = None,
        client_id: str | None = None,
        resend_s: float = 30.0,
        window: int = 60,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topic = topic
        self.resend_s = resend_s
        self.window = window
        self._clock = clock
        self._status_online = Status("online", kind=kind, interval_s=interval_s, agent=__version__)
        # Counters, not a set of mids: paho may call on_publish before publish() returns, and
        # holding our lock around publish() would deadlock with paho's own mutex.
        self._sent = 0
        self._acked = 0
        self._lock = threading.Condition()
        self.connected = threading.Event()
        # What paho's callbacks hand over (PUBACKed mids, SUBACKs, confirmation payloads),
        # resolved by ``pump`` on its own thread, never in a callback.
        self._acked_mids: list[int] = []
        self._subacks: dict[int, bool] = {}
        self._confirmations: list[bytes] = []
        self._generation = 0  # connections so far
        # pump's own state (under _pump_lock)
        self._mids: dict[int, int] = {}  # mid -> row id, awaiting PUBACK
        self._unconfirmed: dict[int, float] = {}  # row id -> when last sent, in send order
        self._evidence: deque[tuple[float, float]] = deque()  # (seen, latest send confirmed)
        self._overtaken = float("-inf")  # rows sent before this were overtaken by a confirmed one
        self._probe_s = resend_s
        self._active = clock()  # when a row was last sent or confirmed
        self._handed_upto = 0
        self._pumped_generation = 0
        self._subscription = (0, 0)  # (generation, SUBSCRIBE mid) of the confirmations
        self.resent = 0  # rows sent again, over the publisher's life
        self.confirmed = 0  # rows deleted on a collector's confirmation
        self._pump_lock = threading.Lock()
        self._pumping = False
        self.client = make_client(
            mqtt_config, client_id or f"labmeter-agent-{topic.site}-{topic.lab}-{topic.device}"
        )
        # paho's default of 20 inflight messages throttles a backlog for no gain.
        self.client.max_inflight_messages_set(PUBACK_WINDOW)
        self.client.max_queued_messages_set(0)
        # Days offline must not mean minutes between retries once the broker is back.
        self.client.reconnect_delay_set(1, 30)
        self.client.will_set(
            str(topic.with_channel("status")), encode(Status("offline")), qos=1, retain=True
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self._config = mqtt_config

    # paho callbacks run on its network thread: keep them short.
    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("broker refused connection: %s", reason)
            return
        status = Status(
            "online",
            ts=int(time.time() * 1000),
            kind=self._status_online.kind,
            interval_s=self._status_online.interval_s,
            agent=__version__,
        )
        info = client.publish(
            str(self.topic.with_channel("status")), encode(status), qos=1, retain=True
        )
        with self._lock:
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                self._sent += 1
            self._generation += 1
        self.connected.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.connected.clear()
        if reason.is_failure:
            log.warning("disconnected from broker: %s", reason)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            self._acked += 1
            if self._pumping:  # direct publishers (the simulator) never settle: keep nothing
                self._acked_mids.append(mid)
            self._lock.notify_all()

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        with self._lock:
            self._subacks[mid] = not any(r.is_failure for r in reasons)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._confirmations.append(bytes(msg.payload))
            self._lock.notify_all()

    def start(self) -> None:
        """Start the network thread without waiting: an agent must run while the broker is down."""
        self.client.connect_async(self._config.host, self._config.port, self._config.keepalive_s)
        self.client.loop_start()

    def connect(self, timeout: float = 10.0) -> None:
        """Start the network thread and wait for the broker; paho reconnects by itself later."""
        self.start()
        if not self.connected.wait(timeout):
            raise PublishError(f"could not connect to {self._config.url} within {timeout:.0f} s")

    def _publish(self, channel: str, payload: bytes, *, retain: bool = False) -> int:
        info = self.client.publish(
            str(self.topic.with_channel(channel)),  # type: ignore[arg-type]
            payload,
            qos=1,
            retain=retain,
        )
        # paho 2.x returns MQTT_ERR_QUEUE_SIZE instead of raising past 65,535 unacked.
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise PublishError(f"publish refused: {mqtt.error_string(info.rc)}")
        with self._lock:
            self._sent += 1
        return info.mid

    def sample(self, sample: Sample) -> int:
        return self._publish("sample", encode(sample))

    def event(self, event: Event) -> int:
        return self._publish("event", encode(event))

    def pump(self, queue: DurableQueue, batch: int = 200) -> int:
        """Apply confirmations and PUBACKs, send again what looks lost, then hand the next
        rows to paho in order; return how many rows were handed over (new or again).

        If paho refuses a row (``MQTT_ERR_QUEUE_SIZE``) it stays queued and is tried next time.
        """
        with self._pump_lock:
            if not self._pumping:
                with self._lock:
                    self._pumping = True
            self._confirm(queue)
            self._settle(queue)
            if not self.connected.is_set():
                return 0
            with self._lock:
                generation = self._generation
            confirmed = queue.confirmed_by_collector
            if generation != self._subscription[0]:
                self._subscribe(queue, generation)
            handed = 0
            if generation != self._pumped_generation:
                # After a reconnect paho resends the rows it held; new rows wait behind them
                # so that the broker sees the backlog in its original order. And the retained
                # confirmations come first, sparing rows written while we were away.
                with self._lock:
                    granted = self._subacks.get(self._subscription[1])
                if self._mids or (confirmed and granted is None):
                    return 0
                if granted is False:
                    log.warning(
                        "the broker refused the subscription to %s: no confirmation can come "
                        "(its ACL must let this device read it, deploy/mosquitto/acl)",
                        confirm_filter(self.topic),
                    )
                self._pumped_generation = generation
                if confirmed:
                    again = self._still_queued(queue, self._unconfirmed_not_in_paho())
                    handed += self._send(queue, again, again=True)
            if confirmed:
                handed += self._send(queue, self._still_queued(queue, self._lost()), again=True)
            while len(self._mids) < PUBACK_WINDOW and (
                not confirmed or len(self._unconfirmed) < self.window
            ):
                room = min(batch, PUBACK_WINDOW - len(self._mids))
                if confirmed:
                    room = min(room, self.window - len(self._unconfirmed))
                rows = queue.after(self._handed_upto, room)
                sent = self._send(queue, rows, again=False)
                handed += sent
                if sent < len(rows) or not rows:
                    break
            return handed

    def _subscribe(self, queue: DurableQueue, generation: int) -> None:
        """Subscribe to the confirmations of every identity rows are queued under."""
        filters = {confirm_filter(self.topic)}
        filters |= {confirm_filter(Topic.parse(t)) for t in queue.topics()}
        with self._lock:
            self._subacks.clear()
        rc, mid = self.client.subscribe([(f, 1) for f in sorted(filters)])
        if rc == mqtt.MQTT_ERR_SUCCESS and mid is not None:
            self._subscription = (generation, mid)

    def _send(self, queue: DurableQueue, rows: Iterable[Queued], *, again: bool) -> int:
        handed = 0
        for row in rows:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.UserProperty = [(ROW_PROPERTY, row_label(queue.queue_id, row.id))]
            # The row's own topic: a backlog from before a move keeps its old identity.
            info = self.client.publish(row.topic, row.payload, qos=1, properties=props)
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                log.warning("paho's queue is full: rows wait on disk")
                return handed
            # NO_CONN: the link dropped just now; paho keeps the message and resends it.
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                raise PublishError(f"publish refused: {mqtt.error_string(info.rc)}")
            with self._lock:
                self._sent += 1
            now = self._clock()
            self._mids[info.mid] = row.id
            self._unconfirmed.pop(row.id, None)  # to the end: the dict is in send order
            self._unconfirmed[row.id] = now
            self._active = now
            if again:
                self.resent += 1
            else:
                self._handed_upto = row.id
            handed += 1
        return handed

    def _confirm(self, queue: DurableQueue) -> None:
        """Delete the rows the collector confirmed; note what they prove about earlier ones."""
        with self._lock:
            payloads, self._confirmations = self._confirmations, []
        now = self._clock()
        for payload in payloads:
            try:
                confirmation = decode_confirmation(payload)
            except PayloadRejected as exc:
                log.warning("unreadable confirmation ignored (%s: %s)", exc.reason, exc.detail)
                continue
            if confirmation.queue != queue.queue_id:
                continue  # another queue file of this device (the agent was reinstalled)
            self.confirmed += queue.confirm(confirmation.rows)
            covered = [r for r in self._unconfirmed if _within(r, confirmation.rows)]
            if covered:
                latest = max(self._unconfirmed.pop(row_id) for row_id in covered)
                self._evidence.append((now, latest))
                self._active = now
                self._probe_s = self.resend_s

    def _settle(self, queue: DurableQueue) -> None:
        """PUBACKs: the broker holds the rows; they are deleted only if no collector ever
        confirmed a row of this queue file."""
        with self._lock:
            mids, self._acked_mids = self._acked_mids, []
        # Mids not in ``_mids`` belong to status or direct publishes: nothing to delete.
        rows = [self._mids.pop(mid) for mid in mids if mid in self._mids]
        if rows and not queue.confirmed_by_collector:
            queue.acknowledge(rows)
            for row_id in rows:
                self._unconfirmed.pop(row_id, None)

    def _still_queued(self, queue: DurableQueue, ids: list[int]) -> list[Queued]:
        """The rows of ``ids`` still in the queue; the others (evicted by its bounds, and
        reported so) are no longer awaited."""
        rows = queue.get(ids)
        for gone in set(ids) - {row.id for row in rows}:
            self._unconfirmed.pop(gone, None)
        return rows

    def _unconfirmed_not_in_paho(self) -> list[int]:
        """Rows sent and not confirmed, but those paho still holds (it resends them itself)."""
        in_paho = set(self._mids.values())
        return [row_id for row_id in self._unconfirmed if row_id not in in_paho]

    def _lost(self) -> list[int]:
        """Rows overtaken by a confirmed row ``resend_s`` ago; else, after ``resend_s`` of
        silence, the oldest row as a probe."""
        now = self._clock()
        while self._evidence and self._evidence[0][0] <= now - self.resend_s:
            self._overtaken = max(self._overtaken, self._evidence.popleft()[1])
        in_paho = set(self._mids.values())
        lost = []
        for row_id, sent in self._unconfirmed.items():
            if sent >= self._overtaken:
                break
            if row_id not in in_paho:
                lost.append(row_id)
        if lost or not self._unconfirmed or now - self._active < self._probe_s:
            return lost
        self._probe_s = min(self._probe_s * 2, PROBE_MAX_S)
        oldest = next((r for r in self._unconfirmed if r not in in_paho), None)
        return [] if oldest is None else [oldest]

    @property
    def handed_upto(self) -> int:
        """The last queue row id handed to paho; rows above it have not left the disk."""
        return self._handed_upto

    def drain(self, queue: DurableQueue, timeout: float) -> bool:
        """Pump until the queue is empty (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        while True:
            self.pump(queue)
            if len(queue) == 0:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._lock:
                self._lock.wait(min(remaining, 0.05))

    @property
    def unacked(self) -> int:
        with self._lock:
            return self._sent - self._acked

    def wait_acked(self, timeout: float = 30.0, below: int = 1) -> bool:
        """Block until fewer than ``below`` publishes await PUBACK (back-pressure)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._sent - self._acked >= below:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True

    def close(self, timeout: float = 10.0, *, announce_offline: bool = True) -> None:
        """Flush, say ``offline`` (retained) and disconnect."""
        if announce_offline and self.connected.is_set():
            self._publish(
                "status", encode(Status("offline", ts=int(time.time() * 1000))), retain=True
            )
        if self.connected.is_set() and not self.wait_acked(timeout):
            log.warning("%d messages still unacked at close", self.unacked)
        self.client.disconnect()
        self.client.loop_stop()


def _within(row_id: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    """``row_id`` is in one of the sorted inclusive ``ranges``."""
    at = bisect.bisect_right(ranges, (row_id, MAX_ROW_ID)) - 1
    return at >= 0 and ranges[at][0] <= row_id <= ranges[at][1]
