"""MQTT publishing for one device: QoS 1, ``online`` on connect, ``offline`` as the last will.

The agent publishes from its durable queue (``pump``): rows go to paho in order under the
topic each was measured under, at most a window of them unacknowledged, and a row leaves the
queue only when its PUBACK came. On every connection, the queue's replay tail (rows a broker
acknowledged lately, which a broker that crashed before saving has lost) goes out first.
"""

from __future__ import annotations

import logging
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from labmeter import __version__
from labmeter.agent.queue import DurableQueue
from labmeter.config import MqttConfig
from labmeter.contract import Event, Sample, Status, Topic, encode
from labmeter.errors import LabmeterError
from labmeter.mqtt import make_client

log = logging.getLogger(__name__)


class PublishError(LabmeterError):
    """paho refused a publish (its queue is full or the client is gone)."""


class Publisher:
    """Publishes one device's samples, events and status; knows which messages are unacked."""

    def __init__(
        self,
        mqtt_config: MqttConfig,
        topic: Topic,
        *,
        kind: str | None = None,
        interval_s: float | None = None,
        client_id: str | None = None,
    ) -> None:
        self.topic = topic
        self._status_online = Status("online", kind=kind, interval_s=interval_s, agent=__version__)
        # Counters, not a set of mids: paho may call on_publish before publish() returns, and
        # holding our lock around publish() would deadlock with paho's own mutex.
        self._sent = 0
        self._acked = 0
        self._lock = threading.Condition()
        self.connected = threading.Event()
        # Queue rows handed to paho and awaiting PUBACK (mid -> row id), and the mids paho
        # reported acked; both are resolved by ``pump`` on its own thread, not in a callback.
        self._rows: dict[int, int] = {}
        self._acked_mids: list[int] = []
        self._handed_upto = 0
        self._generation = 0  # connections so far; a reconnect lets paho resend first
        self._pumped_generation = 0
        self._replay_generation = 0  # the connection whose replay is set up
        self._replay_after = 0  # the replay tail's cursor, and where this replay ends
        self._replay_upto = 0
        self.replayed = 0  # acknowledged rows sent again, over the publisher's life
        self._pump_lock = threading.Lock()
        self._pumping = False
        self.client = make_client(
            mqtt_config, client_id or f"labmeter-agent-{topic.site}-{topic.lab}-{topic.device}"
        )
        # paho's default of 20 inflight messages throttles a backlog replay for no gain.
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        # Days offline must not mean minutes between retries once the broker is back.
        self.client.reconnect_delay_set(1, 30)
        self.client.will_set(
            str(topic.with_channel("status")), encode(Status("offline")), qos=1, retain=True
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
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

    def pump(self, queue: DurableQueue, window: int = 1000, batch: int = 200) -> int:
        """Delete acknowledged rows, then hand the next rows to paho in order; return how many.

        At most ``window`` rows wait for PUBACK at once, far below paho's 65,535 limit; if paho
        still refuses (``MQTT_ERR_QUEUE_SIZE``) the row stays queued and is tried next time.
        """
        with self._pump_lock:
            if not self._pumping:
                with self._lock:
                    self._pumping = True
            self._settle(queue)
            if not self.connected.is_set():
                return 0
            with self._lock:
                generation = self._generation
            if generation != self._replay_generation:
                # A new connection, perhaps to a broker that lost what it acknowledged before
                # its last save: the tail as it is now goes out again (not the rows acked
                # from here on, which this broker has).
                self._replay_generation = generation
                self._replay_after, self._replay_upto = 0, queue.tail_end()
            if generation != self._pumped_generation:
                # After a reconnect paho resends the rows it held; new rows wait behind them
                # so that the broker sees the backlog in its original order.
                if self._rows:
                    return 0
                self._pumped_generation = generation
            handed = 0
            while len(self._rows) < window:
                room = min(batch, window - len(self._rows))
                replaying = self._replay_after < self._replay_upto
                if replaying:
                    rows = queue.tail(self._replay_after, self._replay_upto, room)
                    if not rows:  # pruned meanwhile
                        self._replay_after = self._replay_upto
                        continue
                else:
                    rows = queue.after(self._handed_upto, room)
                if not rows:
                    break
                for row in rows:
                    # The row's own topic: a backlog from before a move keeps its old identity.
                    info = self.client.publish(
                        row.topic,
                        row.payload,
                        qos=1,
                    )
                    if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                        log.warning("paho's queue is full: %d rows wait on disk", len(queue))
                        return handed
                    # NO_CONN: the link dropped just now; paho keeps the message and resends it.
                    if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                        raise PublishError(f"publish refused: {mqtt.error_string(info.rc)}")
                    with self._lock:
                        self._sent += 1
                    self._rows[info.mid] = row.id
                    if replaying:
                        self._replay_after = row.id
                        self.replayed += 1
                    else:
                        self._handed_upto = row.id
                    handed += 1
            return handed

    @property
    def handed_upto(self) -> int:
        """The last queue row id handed to paho; rows above it have not left the disk."""
        return self._handed_upto

    def _settle(self, queue: DurableQueue) -> None:
        with self._lock:
            mids, self._acked_mids = self._acked_mids, []
        # Mids not in ``_rows`` belong to status or direct publishes: nothing to delete.
        queue.acknowledge([self._rows.pop(mid) for mid in mids if mid in self._rows])

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
