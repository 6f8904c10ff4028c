"""One way to build a paho client from ``[mqtt]``: MQTT 5, credentials and TLS as configured."""

from __future__ import annotations

import ssl
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from labmeter.config import MqttConfig

READ_SIZE = 65536


class ReadBuffer:
    """A socket whose small reads are served from one large ``recv()``.

    paho reads every packet with four ``recv()`` calls (its type, length, the rest); each is
    a syscall that releases the GIL, and in the collector, whose other threads want it, paho
    waited to get it back after every one. ``pending()`` is the SSL socket's hook that paho's
    loop already honours: while it is non-zero paho reads on without waiting in ``select()``.
    """

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0
        self._inner_pending = getattr(sock, "pending", None)  # an SSL socket's own buffer

    def recv(self, bufsize: int) -> bytes:
        pos = self._pos
        if pos >= len(self._buf):
            data: bytes = self._sock.recv(max(bufsize, READ_SIZE))  # raises as the socket does
            if len(data) <= bufsize:
                return data
            self._buf, self._pos = data, bufsize
            return data[:bufsize]
        end = self._pos = pos + bufsize
        return self._buf[pos:end]

    def pending(self) -> int:  # paho asks once per packet
        inner = self._inner_pending() if self._inner_pending is not None else 0
        return len(self._buf) - self._pos + inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)  # fileno, send, setblocking, close, ...


class Client(mqtt.Client):
    """paho's client reading through a ``ReadBuffer``.

    ``_create_socket`` is paho's private factory (2.1, 2.2); ``tests/labmeter/test_mqtt.py``
    fails if a paho release stops calling it, rather than the collector silently slowing.
    """

    def _create_socket(self) -> Any:
        return ReadBuffer(super()._create_socket())


def make_client(config: MqttConfig, client_id: str, *, manual_ack: bool = False) -> mqtt.Client:
    client = Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if config.username:
        client.username_pw_set(config.username, config.password)
    if config.tls:
        client.tls_set(ca_certs=config.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    return client
