"""Confirmations to agents, on real Mosquitto and InfluxDB: only for rows that were written.

Messages are published as agents send them (a ``row`` user property with a queue id and a row
id); a watcher subscribed like the devices reads the confirmations, and InfluxDB is asked, as
each one arrives, whether every row it names is there.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time

import mqtt5
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from labmeter.collector.confirm import Confirmer
from labmeter.collector.metrics import Metrics
from labmeter.collector.service import Collector
from labmeter.config import Config
from labmeter.contract import Sample, Topic, decode_confirmation, encode, row_label
from labmeter.influx import InfluxV1
from tests.helpers import wait_for

QUEUE = "00c0ffee00c0ffee"
HOUR_MS = 3_600_000


class Watcher:
    """Reads confirmations as a device would (retained ones first), with when they came."""

    def __init__(self, port: int, topic_filter: str) -> None:
        self.got: queue.Queue[tuple[str, tuple[tuple[int, int], ...], bool]] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(topic_filter, qos=1)
        assert subscribed.wait(10)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        confirmation = decode_confirmation(msg.payload)
        assert confirmation.queue == QUEUE
        self.got.put((msg.topic, confirmation.rows, bool(msg.retain)))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish(port: int, messages: list[tuple[str, bytes, int | None]]) -> None:
    """Messages as an agent sends them: each row labelled (None: an agent that does not)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = []
        for topic, payload, row in messages:
            props = None
            if row is not None:
                props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                props.UserProperty = [("row", row_label(QUEUE, row))]
            infos.append(client.publish(topic, payload, qos=1, properties=props))
        for info in infos:
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def samples(uid: str, device: str, rows: range) -> list[tuple[str, bytes, int | None]]:
    """Row ``r`` is the sample of seq ``r``: a confirmation's rows are seqs to look up."""
    now = int(time.time() * 1000)
    base = now - now % HOUR_MS - 8 * HOUR_MS  # 400 minutes of rows stay in the past
    topic = str(Topic(uid, "lab", device, "sample"))
    return [
        (topic, encode(Sample(base + r * 60_000, r, 60.0, {"in_use": 60.0}, "school")), r)
        for r in rows
    ]


def written(influx: InfluxV1, device: str) -> set[int]:
    rows = influx.query(f"SELECT seq FROM sample WHERE device = '{device}'")
    return {int(seq) for series in rows for _, seq in series.values}


def test_rows_are_confirmed_once_written_and_not_before(
    config: Config, uid: str, influx: InfluxV1
) -> None:
    """InfluxDB answers 404 (no database): the collector holds, and confirms nothing. Once
    the database exists the batch is written, then confirmed: exactly its labelled rows,
    the refused one too (it is in the dead letters), none for an unlabelled message."""
    influx.query(f'DROP DATABASE "{config.influx.database}"')
    service = Collector(config, influx)
    service.start()
    assert service.connected.wait(10)
    time.sleep(0.2)
    watcher = Watcher(config.mqtt.port, f"labmeter/v1/{uid}/+/+/confirm/+")
    try:
        messages = samples(uid, "pc-1", range(1, 6))
        refused = (messages[0][0], b'{"v": 1, "ts": 1}', 6)  # breaks the contract: dead letter
        unlabelled = (*samples(uid, "pc-1", range(7, 8))[0][:2], None)
        publish(config.mqtt.port, [*messages, refused, unlabelled])
        wait_for(lambda: service.problems(), timeout=10)  # held: 404
        time.sleep(2 * config.collector.confirm_interval_s)
        assert watcher.got.empty()
        influx.create_database()
        topic, rows, retained = watcher.got.get(timeout=20)
        assert written(influx, "pc-1") == {1, 2, 3, 4, 5, 7}  # before the confirmation came
        assert (topic, rows, retained) == (
            f"labmeter/v1/{uid}/lab/pc-1/confirm/collector-{uid}",
            ((1, 6),),
            False,
        )
        assert service.dead_letters.counts == {"field_type": 1}
        time.sleep(2 * config.collector.confirm_interval_s)
        assert watcher.got.empty()  # once, and nothing for the unlabelled message
    finally:
        watcher.close()
        service.stop()
    # Retained: a device that subscribes later (an agent restarting) reads it at once.
    late = Watcher(config.mqtt.port, f"labmeter/v1/{uid}/lab/pc-1/confirm/+")
    try:
        assert late.got.get(timeout=10)[1:] == (((1, 6),), True)
    finally:
        late.close()


def test_collectors_sharing_a_subscription_confirm_only_what_each_wrote(
    config: Config, uid: str, influx: InfluxV1
) -> None:
    """Two collectors on one shared subscription each get every other message of a device.
    Each confirms its own rows and no others: every confirmation, as it arrives, names only
    rows already in InfluxDB (a 'highest seq written' would name the other's rows too)."""
    shared = dataclasses.replace(config.collector, shared_group=f"g{uid}", confirm_interval_s=0.2)
    services = [
        Collector(
            dataclasses.replace(
                config,
                collector=dataclasses.replace(
                    shared,
                    client_id=f"c{i}-{uid}",
                    dead_letter_path=f"{config.collector.dead_letter_path}.{i}",
                ),
            ),
            influx,
        )
        for i in range(2)
    ]
    for service in services:
        service.start()
        assert service.connected.wait(10)
    time.sleep(0.3)
    watcher = Watcher(config.mqtt.port, f"labmeter/v1/{uid}/+/+/confirm/+")
    by_writer: dict[str, set[int]] = {}
    try:
        publish(config.mqtt.port, samples(uid, "pc-1", range(1, 401)))
        while sum(len(rows) for rows in by_writer.values()) < 400:
            topic, ranges, _ = watcher.got.get(timeout=20)
            rows = {r for first, last in ranges for r in range(first, last + 1)}
            assert rows <= written(influx, "pc-1"), "a confirmation named an unwritten row"
            by_writer.setdefault(topic.rsplit("/", 1)[1], set()).update(rows)
    finally:
        watcher.close()
        for service in services:
            service.stop()
    assert not any(s.dead_letters.counts for s in services)
    assert sorted(by_writer) == [f"c0-{uid}", f"c1-{uid}"]
    first, second = by_writer.values()
    assert first | second == set(range(1, 401)) and not first & second
    assert first and second


def test_a_collector_told_not_to_confirm_publishes_nothing(
    config: Config, uid: str, influx: InfluxV1
) -> None:
    quiet = dataclasses.replace(
        config, collector=dataclasses.replace(config.collector, confirm=False)
    )
    service = Collector(quiet, influx)
    service.start()
    assert service.connected.wait(10)
    time.sleep(0.2)
    watcher = Watcher(config.mqtt.port, f"labmeter/v1/{uid}/+/+/confirm/+")
    try:
        publish(config.mqtt.port, samples(uid, "pc-1", range(1, 11)))
        wait_for(lambda: len(written(influx, "pc-1")) == 10)
        time.sleep(3 * config.collector.confirm_interval_s)
        assert watcher.got.empty()
    finally:
        watcher.close()
        service.stop()


def _props(*pairs: tuple[str, str], expiry: int | None = None) -> bytes:
    """A PUBLISH's raw properties as a broker forwards them (what the session hands over)."""
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if expiry is not None:
        props.MessageExpiryInterval = expiry
    props.UserProperty = list(pairs)
    packed: bytes = props.pack()
    return packed[1:]  # without the length that precedes them


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        (_props(("row", f"{QUEUE}:7")), (QUEUE, 7)),  # as agents send it
        (_props(("trace", "x"), ("row", f"{QUEUE}:7")), (QUEUE, 7)),
        (_props(("row", f"{QUEUE}:7"), expiry=60), (QUEUE, 7)),
        (_props(("row", f"{QUEUE}:18446744073709551615")), None),  # beyond SQLite's row ids
        (_props(("row", f"{QUEUE}:0")), None),
        (_props(("row", f"{QUEUE}:+7")), None),
        (_props(("row", f"{QUEUE.upper()}:7")), None),
        (_props(("row", f"{QUEUE}-7")), None),
        (_props(("row", f"{QUEUE}:7"))[:-1], None),  # cut short
        (_props(("label", f"{QUEUE}:7")), None),
        (b"", None),
    ],
)
def test_only_a_well_formed_row_label_is_ever_confirmed(
    props: bytes, expected: tuple[str, int] | None
) -> None:
    """The collector's fast path for the labels agents send and the general one for any
    other properties agree, and a label that is not exactly right confirms nothing."""
    sent: list[bytes] = []
    confirmer = Confirmer("collector-w1", 1.0, sent.append, Metrics())
    topic = b"labmeter/v1/s/lab/pc-1/sample"
    for _ in range(2):  # the second time, the queue id is known: the fast path's cache
        confirmer.settled([(1, 1, topic, b"{}", props)])
        confirmer.tick(force=True)
    if expected is None:
        assert sent == []
        return
    assert len(sent) == 2 and sent[0] == sent[1]
    packet, _ = mqtt5.read(memoryview(sent[0]))
    assert isinstance(packet, mqtt5.PublishPacket) and packet.retain
    assert packet.topic == "labmeter/v1/s/lab/pc-1/confirm/collector-w1"
    got = decode_confirmation(packet.payload)
    assert (got.queue, got.rows) == (expected[0], ((expected[1], expected[1]),))
