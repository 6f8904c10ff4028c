"""The Mosquitto finding behind deploy/mosquitto/conf.d/10-queues.conf, on the real broker.

An MQTT 5 subscriber that does not ack gets exactly its Receive Maximum of messages in flight
(max_inflight_messages does not cap it); the rest waits in its session queue, and with
Mosquitto's default queue (1,000) everything beyond is dropped silently, even at QoS 1. The
shipped file keeps them all.
"""

from __future__ import annotations

import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from labmeter.localstack import Service, free_port, require_binary
from tests.helpers import publish_raw, wait_for

SHIPPED = Path(__file__).parents[2] / "deploy/mosquitto/conf.d/10-queues.conf"
WINDOW = 100  # the subscriber's Receive Maximum
PUBLISHED = 5000


def _broker(workdir: Path, with_shipped_queues: bool) -> Service:
    port = free_port()
    conf = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "user root",
        f"log_dest file {workdir}/mosquitto.log",
        "max_inflight_messages 20",
    ]
    if with_shipped_queues:
        confd = workdir / "conf.d"
        confd.mkdir()
        text = SHIPPED.read_text().replace("/var/lib/mosquitto/", f"{workdir}/")
        (confd / SHIPPED.name).write_text(text)
        conf.append(f"include_dir {confd}")
    (workdir / "mosquitto.conf").write_text("\n".join(conf) + "\n")
    return Service(
        "mosquitto", [require_binary("mosquitto"), "-c", f"{workdir}/mosquitto.conf"], port, workdir
    )


def _stalled_then_acking(port: int) -> tuple[int, int]:
    """Messages held before any ack (all QoS 1), and in total once the subscriber acks."""
    got: list[int] = []
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, "stalled", protocol=mqtt.MQTTv5, manual_ack=True
    )
    client.on_message = lambda _c, _u, m: got.append(m.mid)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 600
    props.ReceiveMaximum = WINDOW
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    client.subscribe("q/#", qos=1)
    time.sleep(0.3)
    publish_raw("127.0.0.1", port, [("q/x", b"%d" % i) for i in range(PUBLISHED)])
    time.sleep(0.5)
    held = len(got)
    acked = 0
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 1.0:
        fresh = got[acked:]
        for mid in fresh:
            client.ack(mid, 1)
        acked += len(fresh)
        if fresh:
            quiet_since = time.monotonic()
        time.sleep(0.02)
    client.disconnect()
    client.loop_stop()
    return held, len(got)


def test_default_queue_drops_silently_and_the_shipped_one_does_not(tmp_path: Path) -> None:
    for shipped in (False, True):
        workdir = tmp_path / ("shipped" if shipped else "default")
        workdir.mkdir()
        broker = _broker(workdir, shipped)
        broker.start()
        try:
            held, total = _stalled_then_acking(broker.port)
        finally:
            broker.stop()
        assert held == WINDOW  # the Receive Maximum, not max_inflight_messages (20)
        if shipped:
            assert total == PUBLISHED
        else:
            assert total == WINDOW + 1000  # Mosquitto's default max_queued_messages
            log = workdir / "mosquitto.log"
            wait_for(lambda log=log: "dropped" in log.read_text())
