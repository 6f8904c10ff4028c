"""The queue in front of a real Mosquitto: outages, evictions and restarts lose nothing.

Each test has its own mosquitto (it is stopped and started) and a subscriber with a persistent
session, so what the broker accepted while the subscriber was away still reaches it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from labmeter.agent.meter import Reading
from labmeter.agent.publisher import Publisher
from labmeter.agent.queue import DurableQueue
from labmeter.agent.runner import Agent
from labmeter.config import AgentConfig, Config, MqttConfig
from labmeter.contract import Sample, Topic, encode
from labmeter.localstack import Service, free_port, mosquitto
from tests.helpers import wait_for

SECRET = "a-test-secret-of-enough-length"


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Service]:
    # Run as root (CI), mosquitto drops to its own user and cannot write its persistence file
    # into pytest's private temp dir; staying root keeps the subscriber's session on restart.
    service = mosquitto(tmp_path / "mosquitto")
    service.start()
    yield service
    service.stop()


class Subscriber:
    """Collects payloads of one site in arrival order over a persistent MQTT 5 session."""

    def __init__(self, port: int, site: str) -> None:
        self.messages: list[tuple[str, dict[str, object]]] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sub-{site}", protocol=mqtt.MQTTv5
        )
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        props = mqtt.Properties(mqtt.PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 600
        self.client.connect("127.0.0.1", port, clean_start=False, properties=props)
        self.client.subscribe(f"labmeter/v1/{site}/+/+/+", qos=1)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, orjson.loads(msg.payload)))

    def of(self, channel: str) -> list[dict[str, object]]:
        with self._lock:
            return [p for t, p in self.messages if t.rsplit("/", 1)[1] == channel]

    def on(self, channel: str) -> list[tuple[str, dict[str, object]]]:
        """(lab, payload) of each message of ``channel``, in arrival order."""
        with self._lock:
            return [(t.split("/")[3], p) for t, p in self.messages if t.endswith("/" + channel)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def sample(i: int) -> Sample:
    return Sample(ts=1_764_147_600_000 + i * 60_000, seq=i, interval_s=60, state_s={"idle": 60})


def test_backlog_from_an_outage_arrives_once_in_order(
    own_broker: Service, uid: str, tmp_path: Path
) -> None:
    sub = Subscriber(own_broker.port, uid)
    own_broker.stop()
    queue = DurableQueue(tmp_path / "q.db", clock_ms=lambda: 1_764_147_600_000)
    publisher = Publisher(
        MqttConfig(url=f"mqtt://127.0.0.1:{own_broker.port}"), Topic(uid, "lab", "pc", "sample")
    )
    publisher.start()
    try:
        for i in range(300):
            queue.put(publisher.topic, sample(i).ts, encode(sample(i)))
        assert publisher.pump(queue) == 0  # offline: nothing handed to paho, all on disk
        own_broker.start()
        assert publisher.connected.wait(30)
        assert publisher.drain(queue, 30)
        got = wait_for(lambda: len(sub.of("sample")) >= 300 and sub.of("sample"))
        time.sleep(0.3)  # a duplicate would arrive right behind
        assert [m["ts"] for m in sub.of("sample")] == [sample(i).ts for i in range(300)]
        assert [m["seq"] for m in got] == list(range(300))
        assert len(queue) == 0
    finally:
        publisher.close()
        sub.close()
        queue.close()


class Steady:
    """A source that always sees the same thing: the runner's logic is what is tested."""

    def poll(self) -> Reading:
        return Reading("in_use", category="school")

    def close(self) -> None:
        return None


def agent_config(port: int, site: str, db: Path, lab: str = "lab", **agent: object) -> Config:
    return Config(
        mqtt=MqttConfig(url=f"mqtt://127.0.0.1:{port}"),
        agent=AgentConfig(
            site=site,
            lab=lab,
            device="pc-1",
            interval_s=60,
            pseudonym_secret=SECRET,
            queue_path=str(db),
            **agent,  # type: ignore[arg-type]
        ),
    )


def test_eviction_is_published_and_a_restarted_agent_replays(
    own_broker: Service, uid: str, tmp_path: Path
) -> None:
    sub = Subscriber(own_broker.port, uid)
    db = tmp_path / "agent-queue.db"
    # First run: the broker is unreachable (wrong port); 30 minutes of samples pile up.
    offline = Agent(agent_config(free_port(), uid, db, queue_max_rows=12, poll_s=10.0), Steady())
    offline.publisher.start()
    t0 = (offline.meter.accounted_until // 60_000 + 1) * 60_000
    mono0 = 10_000_000
    for minute in range(30):
        for second in range(0, 60, 10):
            step = minute * 60_000 + second * 1000
            offline.tick(wall=t0 + step, mono=mono0 + step)
    offline.publisher.close(timeout=0)
    queued_before = len(offline.queue)
    offline.queue.close()
    assert queued_before <= 12

    # Second run, same queue file, broker reachable: the backlog goes out, the queue empties.
    online = Agent(agent_config(own_broker.port, uid, db, queue_max_rows=12, poll_s=10.0), Steady())
    backlog = len(online.queue)
    online.publisher.start()
    assert online.publisher.connected.wait(10)
    assert online.publisher.drain(online.queue, 20)
    online.pump()  # reports the evictions counted while the last report waited to be sent
    backlog += 1
    assert online.publisher.drain(online.queue, 20)
    wait_for(lambda: len(sub.of("sample")) + len(sub.of("event")) >= backlog)
    time.sleep(0.3)
    online.publisher.close()
    online.queue.close()
    sub.close()
    samples, events = sub.of("sample"), sub.of("event")
    assert len(samples) + len(events) == backlog

    evictions = [e for e in events if e["type"] == "queue_eviction"]
    assert evictions, "an eviction must be reported, never silent"
    reported = max(int(e["data"]["evicted_total"]) for e in evictions)  # type: ignore[index]
    # Every message ever queued either arrived or is counted as evicted, exactly once.
    ledger = DurableQueue(db)
    made = ledger.counter("sample_seq") + ledger.counter("event_seq")
    evicted_total = ledger.counter("evicted_total")
    ledger.close()
    assert len(samples) + len(events) + evicted_total == made
    assert reported == evicted_total  # every eviction reported
    # Oldest first: what survived are the latest samples, in order, each once.
    cut = offline.meter.seq
    seqs = [int(s["seq"]) for s in samples]  # type: ignore[call-overload]
    assert seqs == list(range(cut - len(seqs), cut)) and seqs
    # seq goes on across the restart: the second run's meter starts where the first stopped.
    assert online.meter.seq == cut


def test_a_backlog_queued_before_a_move_keeps_the_lab_it_was_measured_in(
    own_broker: Service, uid: str, tmp_path: Path
) -> None:
    sub = Subscriber(own_broker.port, uid)
    db = tmp_path / "agent-queue.db"
    # In the CAD lab, offline: ten minutes of samples wait on disk.
    t0 = (time.time_ns() // 60_000_000_000 - 60) * 60_000  # a minute boundary an hour ago
    cad_config = agent_config(free_port(), uid, db, lab="cad", poll_s=10.0)
    cad = Agent(cad_config, Steady(), clocks=(t0, 10_000_000))
    for step in range(10_000, 600_001, 10_000):
        cad.tick(wall=t0 + step, mono=10_000_000 + step)
    cad.publisher.close(timeout=0)
    queued = [r.ts for r in cad.queue.after(0, 1000) if r.channel == "sample"]
    cad.queue.close()
    # Moved to the fablab (its config edited), restarted on the same queue, broker reachable.
    fab_config = agent_config(own_broker.port, uid, db, lab="fablab", poll_s=10.0)
    fab = Agent(fab_config, Steady(), clocks=(t0 + 600_000, 20_000_000))
    for step in range(10_000, 240_001, 10_000):
        fab.tick(wall=t0 + 600_000 + step, mono=20_000_000 + step)
    made = len(fab.queue)
    fab.publisher.start()
    assert fab.publisher.connected.wait(10) and fab.publisher.drain(fab.queue, 20)
    wait_for(lambda: len(sub.on("sample")) + len(sub.on("event")) >= made)
    time.sleep(0.3)
    fab.publisher.close()
    fab.queue.close()
    sub.close()
    samples = sub.on("sample")
    before = [int(str(p["ts"])) for lab, p in samples if lab == "cad"]
    after = [int(str(p["ts"])) for lab, p in samples if lab == "fablab"]
    # Every sample measured in the CAD lab arrives under it, and only those.
    assert before == queued and len(before) >= 10 and max(before) <= t0 + 600_000
    assert len(after) >= 3 and min(after) > t0 + 600_000
    events = [(lab, p["type"]) for lab, p in sub.on("event")]
    assert events == [("cad", "agent_start"), ("fablab", "agent_start")]
    assert len(samples) + len(events) == made
    # The status (retained, from the connection) is the device's identity now.
    assert {lab for lab, _ in sub.on("status")} == {"fablab"}


def test_agent_killed_while_offline_loses_and_duplicates_nothing(
    own_broker: Service, uid: str, tmp_path: Path
) -> None:
    sub = Subscriber(own_broker.port, uid)
    toml = tmp_path / "agent.toml"
    toml.write_text(
        f"""
[mqtt]
url = "mqtt://127.0.0.1:{own_broker.port}"
[agent]
site = "{uid}"
lab = "lab"
device = "pc-1"
interval_s = 1
poll_s = 0.25
idle_threshold_s = 1  # the PC source holds samples open this long (look-back)
pseudonym_secret = "{SECRET}"
queue_path = "{tmp_path / "queue.db"}"
"""
    )
    cmd = [str(Path(sys.executable).parent / "labmeter"), "agent", "-c", str(toml)]
    first = subprocess.Popen(cmd)
    second = first
    try:
        wait_for(lambda: len(sub.of("sample")) >= 2, timeout=30)
        own_broker.stop()
        time.sleep(3)  # samples pile up on disk
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = subprocess.Popen(cmd)
        time.sleep(3)
        own_broker.start()
        wait_for(
            lambda: len({e["seq"] for e in sub.of("event") if e["type"] == "agent_start"}) >= 2,
            timeout=60,
        )
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
        time.sleep(0.5)
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
        sub.close()
    samples = sub.of("sample")
    distinct = {int(str(s["seq"])): s for s in samples}
    # One seq per sample, persisted across the kill: no gap means none lost.
    assert sorted(distinct) == list(range(len(distinct)))
    assert len({s["ts"] for s in samples}) == len(distinct)
    # A seq seen twice is the replay tail (acknowledged rows sent again when the second run
    # connects): the very same sample, so the same InfluxDB point, never a second one.
    assert all(s == distinct[int(str(s["seq"]))] for s in samples)
    assert len(distinct) >= 6  # about 3 s offline + 3 s down after the restart, at 1 s each
    # Session events depend on who is logged on to the test machine; the agent starts do not.
    starts = list({e["seq"]: e for e in sub.of("event") if e["type"] == "agent_start"}.values())
    assert [e["data"]["queued"] > 0 for e in starts] == [False, True]  # type: ignore[index,operator]


def test_paho_queue_full_pushes_back_without_loss(
    own_broker: Service, uid: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sub = Subscriber(own_broker.port, uid)
    queue = DurableQueue(tmp_path / "q.db", clock_ms=lambda: 1_764_147_600_000)
    publisher = Publisher(
        MqttConfig(url=f"mqtt://127.0.0.1:{own_broker.port}"), Topic(uid, "lab", "pc", "sample")
    )
    # Stand-in for paho's 65,535 limit: past 3 unacked, publish() answers MQTT_ERR_QUEUE_SIZE.
    publisher.client.max_queued_messages_set(3)
    publisher.connect()
    try:
        for i in range(200):
            queue.put(publisher.topic, sample(i).ts, encode(sample(i)))
        deadline = time.monotonic() + 30
        while len(queue) and time.monotonic() < deadline:
            publisher.pump(queue)
            time.sleep(0.002)
        assert len(queue) == 0
        assert "paho's queue is full" in caplog.text  # the refusal happened and was survived
        wait_for(lambda: len(sub.of("sample")) >= 200)
        time.sleep(0.3)
        assert [m["seq"] for m in sub.of("sample")] == list(range(200))
    finally:
        publisher.close()
        sub.close()
        queue.close()
