"""What deploy/mosquitto promises, shown on real mosquitto 2.0 with the shipped config."""

from __future__ import annotations

import dataclasses
import grp
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from labmeter.agent.publisher import Publisher
from labmeter.agent.queue import DurableQueue
from labmeter.collector.service import Collector
from labmeter.config import Config, MqttConfig
from labmeter.contract import Sample, Topic, confirm_writer, encode
from labmeter.deploy import COLLECTOR_USER, BrokerAccess, add_collector, add_device
from labmeter.influx import InfluxV1
from labmeter.localstack import Service, free_port, require_binary
from tests.deploy.conftest import SecureBroker
from tests.helpers import wait_for


def _client(broker: SecureBroker, username: str | None, *, ca: bool = True) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if username is not None:
        client.username_pw_set(username, broker.passwords.get(username, "wrong"))
    if ca:
        client.tls_set(ca_certs=str(broker.ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    else:  # the system's CAs only, as a client that was not given the lab's CA
        client.tls_set(tls_version=ssl.PROTOCOL_TLS_CLIENT)
    return client


def _connack(broker: SecureBroker, username: str | None, password: str | None = None) -> str:
    """The broker's CONNACK reason for this login, as text."""
    client = _client(broker, username)
    if password is not None:
        client.username_pw_set(username, password)
    got: list[str] = []
    done = threading.Event()

    def on_connect(*args: object) -> None:
        got.append(str(args[3]))
        done.set()

    client.on_connect = on_connect
    client.connect("localhost", broker.service.port)
    client.loop_start()
    try:
        assert done.wait(10), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return got[0]


def test_anonymous_and_wrong_password_are_refused(secure_broker: SecureBroker) -> None:
    assert _connack(secure_broker, None) == "Not authorized"
    assert _connack(secure_broker, "site-a/lab-1/pc-01", "guess") == "Not authorized"
    assert _connack(secure_broker, "site-a/lab-1/pc-01") == "Success"


def test_a_client_without_the_lab_ca_cannot_connect(secure_broker: SecureBroker) -> None:
    client = _client(secure_broker, "site-a/lab-1/pc-01", ca=False)
    with pytest.raises(ssl.SSLCertVerificationError):
        client.connect("localhost", secure_broker.service.port)


def _sample(ts: int, in_use: float) -> Sample:
    return Sample(ts, 1, 60, {"in_use": in_use, "idle": 60 - in_use}, category="school")


def test_collector_gets_a_device_samples_over_tls_and_no_forged_ones(
    secure_broker: SecureBroker, config: Config, influx: InfluxV1
) -> None:
    tls = MqttConfig(url=secure_broker.url, ca_file=str(secure_broker.ca_file))
    collector_cfg = dataclasses.replace(
        config,
        mqtt=dataclasses.replace(
            tls,
            username=COLLECTOR_USER,
            password=secure_broker.passwords[COLLECTOR_USER],
        ),
        # Through a shared subscription, as N collectors would: the ACL must allow it too.
        collector=dataclasses.replace(config.collector, site="site-a", shared_group="labmeter"),
    )
    collector = Collector(collector_cfg, influx)
    collector.start()
    assert collector.connected.wait(10)
    time.sleep(0.3)
    now = int(time.time() // 60 * 60_000)
    try:
        # pc-01 forges a sample for pc-02 (same lab), then the collector forges one too.
        for user, ts in (("site-a/lab-1/pc-01", now - 120_000), (COLLECTOR_USER, now)):
            forger = _client(secure_broker, user)
            forger.connect("localhost", secure_broker.service.port)
            forger.loop_start()
            info = forger.publish(
                "labmeter/v1/site-a/lab-1/pc-02/sample", encode(_sample(ts, 60)), qos=1
            )
            info.wait_for_publish(10)
            forger.disconnect()
            forger.loop_stop()
        # Then pc-01 publishes its own sample through the agent's real publisher, over TLS.
        user = "site-a/lab-1/pc-01"
        device = Publisher(
            dataclasses.replace(tls, username=user, password=secure_broker.passwords[user]),
            Topic("site-a", "lab-1", "pc-01", "sample"),
            kind="pc",
            interval_s=60,
        )
        device.connect()
        device.sample(_sample(now - 60_000, 42.5))
        assert device.wait_acked(10)
        device.close()

        def arrived() -> list[list[object]]:
            rows = influx.query("SELECT in_use_s FROM sample WHERE device = 'pc-01'")
            return rows[0].values if rows else []

        assert wait_for(arrived, timeout=20) == [[now - 120_000, 42.5]]
        # pc-01's status went through too: the collector reads every channel of the device.
        wait_for(lambda: influx.query("SELECT count(online) FROM status WHERE device = 'pc-01'"))
    finally:
        collector.stop()
    # The forged samples never reached the collector (they are not even dead letters).
    assert influx.query("SELECT * FROM sample WHERE device = 'pc-02'") == []
    assert sum(collector.dead_letters.counts.values()) == 0


def _listen(
    broker: SecureBroker, username: str, topic_filter: str
) -> tuple[mqtt.Client, list[str], list[str]]:
    """``username``'s client subscribed to ``topic_filter``: (client, SUBACK codes, topics got)."""
    client = _client(broker, username)
    reasons: list[str] = []
    got: list[str] = []
    subscribed = threading.Event()

    def on_subscribe(*args: object) -> None:
        reasons.extend(str(r) for r in args[3])  # type: ignore[attr-defined]
        subscribed.set()

    client.on_subscribe = on_subscribe
    client.on_message = lambda _c, _u, msg: got.append(msg.topic)
    client.connect("localhost", broker.service.port)
    client.loop_start()
    client.subscribe(topic_filter, qos=1)
    assert subscribed.wait(10)
    return client, reasons, got


def test_a_device_reads_only_its_own_confirmations_and_no_device_can_forge_one(
    secure_broker: SecureBroker, config: Config, influx: InfluxV1, tmp_path: Path
) -> None:
    """Over TLS with the shipped ACL: pc-01's real agent publisher and queue, and the
    collector; the collector's confirmations reach pc-01 (its queue empties), none reaches
    pc-02 subscribed to them (Mosquitto 2.0 grants the subscription and checks each message),
    and neither pc-01 nor pc-02 can publish one."""
    tls = MqttConfig(url=secure_broker.url, ca_file=str(secure_broker.ca_file))
    collector = Collector(
        dataclasses.replace(
            config,
            mqtt=dataclasses.replace(
                tls, username=COLLECTOR_USER, password=secure_broker.passwords[COLLECTOR_USER]
            ),
            collector=dataclasses.replace(config.collector, site="site-a"),
        ),
        influx,
    )
    collector.start()
    assert collector.connected.wait(10)
    mine = "labmeter/v1/site-a/lab-1/pc-01/confirm/+"
    spy, spy_reasons, spied = _listen(secure_broker, "site-a/lab-1/pc-02", mine)
    own, own_reasons, owned = _listen(secure_broker, "site-a/lab-1/pc-01", mine)
    user = "site-a/lab-1/pc-01"
    topic = Topic("site-a", "lab-1", "pc-01", "sample")
    queue = DurableQueue(tmp_path / "q.db")
    device = Publisher(
        dataclasses.replace(tls, username=user, password=secure_broker.passwords[user]),
        topic,
        client_id=f"agent-{tmp_path.name}",
    )
    try:
        assert own_reasons == ["Granted QoS 1"] and len(spy_reasons) == 1
        # Forgeries, by a device on its own confirmation topic and on another's.
        for forger in ("site-a/lab-1/pc-01", "site-a/lab-1/pc-02"):
            client = _client(secure_broker, forger)
            client.connect("localhost", secure_broker.service.port)
            client.loop_start()
            client.publish(
                "labmeter/v1/site-a/lab-1/pc-01/confirm/labmeter-collector",
                b'{"v":1,"queue":"0000000000000001","rows":[[1,99]]}',
                qos=1,
            ).wait_for_publish(10)
            client.disconnect()
            client.loop_stop()
        now = int(time.time() // 60 * 60_000)
        for i in range(3):
            ts = now - (10 - i) * 60_000
            queue.put(topic, ts, encode(_sample(ts, 30.0)))
        device.connect()
        deadline = time.monotonic() + 20
        while not (queue.confirmed_by_collector and len(queue) == 0):
            assert time.monotonic() < deadline, "no confirmation reached the device"
            device.pump(queue)
            time.sleep(0.05)
        time.sleep(0.5)
        assert spied == []  # pc-02 saw nothing of pc-01's
        writer = confirm_writer(config.collector.client_id)  # the forgeries never came
        assert owned and set(owned) == {f"labmeter/v1/site-a/lab-1/pc-01/confirm/{writer}"}
    finally:
        device.close()
        queue.close()
        for client in (spy, own):
            client.disconnect()
            client.loop_stop()
        collector.stop()


def test_a_device_added_while_the_broker_runs_connects_after_a_reload(
    secure_broker: SecureBroker,
) -> None:
    """add-device rewrites the file the broker reads as user mosquitto; a SIGHUP applies it."""
    user = "site-a/lab-2/cnc-01"
    secure_broker.passwords[user] = "cnc-pw"
    assert _connack(secure_broker, user) == "Not authorized"
    access = BrokerAccess(secure_broker.url, str(secure_broker.ca_file))
    add_device(secure_broker.dir / "config" / "passwd", access, *user.split("/"), password="cnc-pw")
    assert secure_broker.service.proc is not None
    secure_broker.service.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: _connack(secure_broker, user) == "Success", timeout=10)
    assert _connack(secure_broker, "site-a/lab-1/pc-01") == "Success"  # the others still can


def test_the_debian_install_script_gives_a_working_secure_broker() -> None:
    """install-debian.sh into a scratch root, then the README's B.2 steps, on real mosquitto."""
    root = Path(tempfile.mkdtemp(prefix="labmeter-debian-"))
    root.chmod(0o755)
    try:
        shipped = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
        subprocess.run(["bash", str(shipped / "install-debian.sh"), str(root)], check=True)
        etc = root / "etc" / "mosquitto"
        conf = (etc / "mosquitto.conf").read_text()
        assert "/mosquitto/config/" not in conf and f"include_dir {etc}/conf.d" in conf
        certs = etc / "certs"
        subprocess.run(
            ["bash", str(shipped / "make-certs.sh"), "-d", str(certs), "server", "localhost"],
            check=True, capture_output=True,
        )  # fmt: skip
        access = BrokerAccess("mqtts://localhost:8883", str(etc / "certs" / "ca.crt"))
        add_collector(etc / "passwd", access, "debian-pw")
        if os.geteuid() == 0:  # the README's chgrp: the broker reads these as user mosquitto
            gid = grp.getgrnam("mosquitto").gr_gid
            for path in (etc / "passwd", etc / "certs" / "server.key"):
                os.chown(path, 0, gid)
                path.chmod(0o640)
        port = free_port()
        (etc / "mosquitto.conf").write_text(
            conf.replace("listener 8883\n", f"listener {port} 127.0.0.1\n")
        )
        service = Service(
            "mosquitto",
            [require_binary("mosquitto"), "-c", str(etc / "mosquitto.conf")],
            port,
            root,
        )
        service.start()
        try:
            broker = SecureBroker(
                service, root, etc / "certs" / "ca.crt", {COLLECTOR_USER: "debian-pw"}
            )
            assert _connack(broker, COLLECTOR_USER) == "Success"
            assert _connack(broker, None) == "Not authorized"
        finally:
            service.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
