"""The collector's and agent's paho client reads through ReadBuffer, against a real broker."""

from __future__ import annotations

import socket
import threading

from labmeter.config import Config
from labmeter.mqtt import ReadBuffer, make_client


def test_read_buffer_serves_small_reads_from_one_recv() -> None:
    left, right = socket.socketpair()
    try:
        right.sendall(b"\x30\x05hello\x40\x02\x00\x01")
        buffered = ReadBuffer(left)
        assert buffered.recv(1) == b"\x30"
        assert buffered.pending() == 10  # the rest arrived with the first recv()
        assert buffered.recv(1) == b"\x05"
        assert buffered.recv(5) == b"hello"
        assert buffered.recv(4) == b"\x40\x02\x00\x01"
        assert buffered.pending() == 0
        right.close()
        assert buffered.recv(1) == b""  # end of stream passes through
        assert buffered.fileno() == left.fileno()
    finally:
        left.close()


def test_client_uses_read_buffer_and_receives(config: Config, uid: str) -> None:
    """Fails if a paho release stops building its socket through ``_create_socket``."""
    got: list[bytes] = []
    done = threading.Event()
    subscribed = threading.Event()
    client = make_client(config.mqtt, f"sub-{uid}")
    client.on_subscribe = lambda *_: subscribed.set()

    def on_message(_c: object, _u: object, msg: object) -> None:
        got.append(msg.payload)  # type: ignore[attr-defined]
        if len(got) == 500:
            done.set()

    client.on_message = on_message
    client.connect(config.mqtt.host, config.mqtt.port)
    client.loop_start()
    try:
        client.subscribe(f"test/{uid}", qos=1)
        assert subscribed.wait(10)
        assert isinstance(client.socket(), ReadBuffer)
        publisher = make_client(config.mqtt, f"pub-{uid}")
        publisher.connect(config.mqtt.host, config.mqtt.port)
        publisher.loop_start()
        for i in range(500):
            publisher.publish(f"test/{uid}", f"m{i}".encode() * (i % 7 + 1), qos=1)
        assert done.wait(20), f"{len(got)} of 500 arrived"
        publisher.disconnect()
        publisher.loop_stop()
    finally:
        client.disconnect()
        client.loop_stop()
    assert got == [f"m{i}".encode() * (i % 7 + 1) for i in range(500)]
