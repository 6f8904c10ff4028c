"""MQTT publishing for one device: QoS 1, ``online`` on connect, ``offline`` as the last will."""

from __future__ import annotations

import logging
import ssl
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from labmeter import __version__
from labmeter.config import MqttConfig
from labmeter.contract import Event, Sample, Status, Topic, encode
from labmeter.errors import LabmeterError

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
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"labmeter-agent-{topic.site}-{topic.lab}-{topic.device}",
            protocol=mqtt.MQTTv5,
        )
        # paho's default of 20 inflight messages throttles a backlog replay for no gain.
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        if mqtt_config.username:
            self.client.username_pw_set(mqtt_config.username, mqtt_config.password)
        if mqtt_config.tls:
            self.client.tls_set(ca_certs=mqtt_config.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
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
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            with self._lock:
                self._sent += 1
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
            self._lock.notify_all()

    def connect(self, timeout: float = 10.0) -> None:
        """Start the network thread; paho reconnects by itself from then on."""
        self.client.connect_async(self._config.host, self._config.port, self._config.keepalive_s)
        self.client.loop_start()
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
        if not self.wait_acked(timeout):
            log.warning("%d messages still unacked at close", self.unacked)
        self.client.disconnect()
        self.client.loop_stop()
