"""The collector's MQTT 5 session against a real Mosquitto: reads, acks, window, generations."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import mqtt5
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from labmeter.collector.convert import Delivery
from labmeter.collector.subscriber import Subscriber, user_property
from labmeter.config import Config, MqttConfig
from labmeter.localstack import mosquitto
from tests.helpers import publish_raw, wait_for


class Inbox:
    def __init__(self) -> None:
        self.got: list[tuple[int, Delivery]] = []
        self.lock = threading.Lock()

    def __call__(self, generation: int, deliveries: list[Delivery]) -> None:
        with self.lock:
            self.got += [(generation, d) for d in deliveries]


def _session(mqtt: MqttConfig, client_id: str, topic: str, inbox: Inbox, **kw: int) -> Subscriber:
    sub = Subscriber(
        mqtt,
        client_id,
        topic,
        receive_max=kw.get("receive_max", 1000),
        session_expiry_s=300,
        on_messages=inbox,
    )
    sub.start()
    return sub


def test_reads_every_size_in_order_and_acked_messages_do_not_come_back(
    config: Config, uid: str
) -> None:
    """Payloads of 0 B to 300 KiB (remaining lengths of one to three bytes, packets split
    across reads), QoS 0 and 1, in publish order; acked ones are gone from the session."""
    sizes = [0, 1, 100, 127, 128, 300, 16_383, 16_384, 70_000, 300_000] * 20
    messages = [(f"test/{uid}/{i % 3}", bytes([i % 251]) * n) for i, n in enumerate(sizes)]
    inbox = Inbox()
    sub = _session(config.mqtt, f"sub-{uid}", f"test/{uid}/#", inbox)
    try:
        time.sleep(0.3)
        publish_raw(config.mqtt.host, config.mqtt.port, messages)
        publish_raw(config.mqtt.host, config.mqtt.port, [(f"test/{uid}/q0", b"zero")], qos=0)
        wait_for(lambda: len(inbox.got) == len(messages) + 1, timeout=20)
        got = [(topic.decode(), payload) for _, (_, _, topic, payload, _) in inbox.got]
        assert got[:-1] == messages
        assert inbox.got[-1][1][:2] == (0, 0)  # QoS 0: no packet id, nothing to ack
        generation = inbox.got[0][0]
        sub.ack(generation, [mid for _, (mid, *_rest) in inbox.got])
        time.sleep(0.5)
    finally:
        sub.stop()
    again = Inbox()
    sub = _session(config.mqtt, f"sub-{uid}", f"test/{uid}/#", again)
    try:
        time.sleep(1.0)
        assert again.got == []
    finally:
        sub.stop()


def test_receive_maximum_caps_unacked_and_an_old_generation_is_never_acked(
    tmp_path: Path, uid: str
) -> None:
    """The broker sends Receive Maximum messages and no more until acked; after a reconnect
    (a new generation) acks of the old one are dropped, and the broker redelivers."""
    broker = mosquitto(tmp_path / "mosquitto")
    broker.start()
    mqtt = MqttConfig(url=f"mqtt://127.0.0.1:{broker.port}", keepalive_s=5)
    inbox = Inbox()
    sub = _session(mqtt, f"sub-{uid}", f"test/{uid}", inbox, receive_max=50)
    try:
        time.sleep(0.3)
        publish_raw("127.0.0.1", broker.port, [(f"test/{uid}", b"%d" % i) for i in range(120)])
        wait_for(lambda: len(inbox.got) == 50)
        time.sleep(0.5)
        assert len(inbox.got) == 50  # the window, nothing beyond it
        first = sub.generation
        old = [mid for _, (mid, *_rest) in inbox.got]
        broker.stop()  # saves the session; the client reconnects to the restarted broker
        broker.start()
        wait_for(lambda: sub.generation == first + 1, timeout=20)
        sub.ack(first, old)  # stale: must not ack whatever now carries those ids
        wait_for(lambda: len(inbox.got) == 100)
        time.sleep(0.5)
        assert len(inbox.got) == 100  # the same 50 again, still unacked
        payloads = [d[3] for g, d in inbox.got if g == first + 1]
        assert payloads == [b"%d" % i for i in range(50)]
        for _ in range(3):  # ack in windows until all 120 are through
            batch = [mid for g, (mid, *_rest) in inbox.got if g == first + 1]
            sub.ack(first + 1, batch)
            time.sleep(0.5)
        assert sorted({d[3] for _, d in inbox.got}) == sorted(b"%d" % i for i in range(120))
    finally:
        sub.stop()
        broker.stop()


def test_keepalive_holds_an_idle_connection(tmp_path: Path, uid: str) -> None:
    broker = mosquitto(tmp_path / "mosquitto")
    broker.start()
    mqtt = MqttConfig(url=f"mqtt://127.0.0.1:{broker.port}", keepalive_s=1)
    inbox = Inbox()
    sub = _session(mqtt, f"sub-{uid}", f"test/{uid}", inbox)
    try:
        wait_for(lambda: sub.generation == 1)
        time.sleep(4.0)  # past 1.5 keepalives with nothing to read
        assert sub.generation == 1
        publish_raw("127.0.0.1", broker.port, [(f"test/{uid}", b"still here")])
        wait_for(lambda: len(inbox.got) == 1)
    finally:
        sub.stop()
        broker.stop()


def test_a_backlog_that_arrives_with_the_connack_is_read_whole(config: Config, uid: str) -> None:
    """A resumed session gets its queue right behind the CONNACK, in the same read."""
    topic = f"test/{uid}"
    inbox = Inbox()
    sub = _session(config.mqtt, f"sub-{uid}", topic, inbox)
    wait_for(lambda: sub.generation == 1)
    time.sleep(0.3)
    sub.stop()
    payloads = [b"%d:" % i + b"x" * (i % 700) for i in range(3000)]
    publish_raw(config.mqtt.host, config.mqtt.port, [(topic, p) for p in payloads])
    again = Inbox()
    sub = _session(config.mqtt, f"sub-{uid}", topic, again, receive_max=5000)
    try:
        wait_for(lambda: len(again.got) >= 3000, timeout=20)
        time.sleep(0.5)
        assert [d[3] for _, d in again.got] == payloads
        assert sub.generation == 1  # no protocol error, no reconnect
    finally:
        sub.stop()


def test_a_packet_split_right_after_the_connack_is_joined(uid: str) -> None:
    """The CONNACK's read may end inside a PUBLISH: its rest comes with the next read. A
    broker played by the test, so that the split falls exactly there."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    first = mqtt5.PublishPacket("t/a", b"one", qos=mqtt5.QoS.AT_LEAST_ONCE, packet_id=1).write()
    second = mqtt5.PublishPacket("t/b", b"two" * 50, qos=mqtt5.QoS.AT_LEAST_ONCE, packet_id=2)
    split = second.write()
    inbox = Inbox()
    sub = _session(MqttConfig(url=f"mqtt://127.0.0.1:{port}"), f"sub-{uid}", "t/#", inbox)
    try:
        conn, _ = server.accept()
        conn.recv(65536)  # CONNECT
        conn.sendall(mqtt5.ConnAckPacket(session_present=True).write() + first + split[:20])
        time.sleep(0.3)
        conn.sendall(split[20:])
        wait_for(lambda: len(inbox.got) == 2)
        assert [(d[0], d[2], d[3]) for _, d in inbox.got] == [
            (1, b"t/a", b"one"),
            (2, b"t/b", b"two" * 50),
        ]
        assert sub.generation == 1
        conn.close()
    finally:
        sub.stop()
        server.close()


def test_a_row_label_is_read_among_any_other_properties(config: Config, uid: str) -> None:
    """The properties stay raw in the delivery; ``user_property`` finds the agent's label
    whatever comes before it (properties a broker forwards: expiry, content type, response
    topic, correlation data, other user properties), and a message without one has none."""
    inbox = Inbox()
    sub = _session(config.mqtt, f"sub-{uid}", f"test/{uid}/#", inbox)
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    try:
        wait_for(lambda: sub.generation == 1)
        time.sleep(0.2)
        client.connect("127.0.0.1", config.mqtt.port)
        client.loop_start()
        busy = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        busy.MessageExpiryInterval = 3600
        busy.ContentType = "application/json"
        busy.ResponseTopic = "somewhere/else"
        busy.CorrelationData = b"\x00\x01"
        busy.UserProperty = [("trace", "x" * 300), ("row", "3f9a0c1d2e4b5a69:812")]
        plain = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        plain.UserProperty = [("row", "3f9a0c1d2e4b5a69:813")]
        for props in (busy, plain, None):
            client.publish(f"test/{uid}/p", b"{}", qos=1, properties=props).wait_for_publish(10)
        wait_for(lambda: len(inbox.got) == 3)
        found = [user_property(d[4], b"row") for _, d in inbox.got]
        assert found == [b"3f9a0c1d2e4b5a69:812", b"3f9a0c1d2e4b5a69:813", None]
        assert inbox.got[2][1][4] == b""
        assert user_property(inbox.got[0][1][4], b"trace") == b"x" * 300
        # Cut short, or of an unknown kind: nothing is read, so nothing is confirmed.
        whole = inbox.got[1][1][4]
        assert [user_property(whole[:n], b"row") for n in (1, 5, len(whole) - 1)] == [None] * 3
        assert user_property(b"\x7f" + whole, b"row") is None
    finally:
        client.disconnect()
        client.loop_stop()
        sub.stop()
