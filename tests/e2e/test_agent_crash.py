"""A crashed or frozen agent shows offline through its last will, read back through the API.

The agent is the real ``labmeter agent`` process with a short MQTT keepalive; the broker,
the collector and InfluxDB are real, and occupancy is read through the API as a lab screen
would. The will (``{"status": "offline"}`` without a ``ts``: the agent never sent it) is also
watched on the broker, to know it was the will and not staleness that said offline.
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
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from labmeter.api.keys import Role
from labmeter.collector.service import Collector
from labmeter.config import Config
from labmeter.influx import InfluxV1
from tests.api.client import make_api
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

KEEPALIVE_S = 4
# Mosquitto 2.0 checks keepalives only every 6 s, in whole seconds (keepalive__check: "last
# check + 5 < now", then "now - last_msg_in <= 1.5 x keepalive"): a silent client is dropped
# up to 7 s after its 1.5 keepalives ran out (measured: 9.8-10.4 s for a 4 s keepalive).
BROKER_CHECK_S = 7.0
# From the will to the API: the collector batches for 0.2 s, the test polls every 0.1 s.
PIPELINE_S = 2.0


class Statuses:
    """The device's status messages as the broker delivers them (retained first)."""

    def __init__(self, port: int, topic: str) -> None:
        self.seen: list[tuple[float, dict[str, object]]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.seen.append((time.monotonic(), orjson.loads(msg.payload)))

    def offline_after(self, since: float) -> tuple[float, dict[str, object]] | None:
        with self._lock:
            return next(
                ((t, p) for t, p in self.seen if t >= since and p["status"] == "offline"), None
            )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def agent_cmd(config: Config, uid: str, tmp_path: Path) -> list[str]:
    toml = tmp_path / "agent.toml"
    toml.write_text(
        f"""
[mqtt]
url = "{config.mqtt.url}"
keepalive_s = {KEEPALIVE_S}
[agent]
site = "{uid}"
lab = "lab"
device = "pc-1"
interval_s = 60           # staleness (2 intervals) would take minutes: only the will is fast
pseudonym_secret = "a-test-secret-of-enough-length"
queue_path = "{tmp_path / "queue.db"}"
"""
    )
    return [str(Path(sys.executable).parent / "labmeter"), "agent", "-c", str(toml)]


@pytest.fixture
def pipeline(config: Config, influx: InfluxV1, tmp_path: Path) -> Iterator[TestClient]:
    collector = Collector(config, influx)
    collector.start()
    assert collector.connected.wait(10)
    try:
        yield make_api(config, tmp_path / "api", None).client_as(Role.viewer)
    finally:
        collector.stop()


def device_state(api: TestClient) -> str | None:
    rows = api.get("/api/v1/occupancy").json()
    return next((r["state"] for r in rows if r["device"] == "pc-1"), None)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGSTOP"])
def test_a_dead_agent_shows_offline_through_its_will_within_1_5_keepalives(
    how: str, config: Config, uid: str, agent_cmd: list[str], pipeline: TestClient
) -> None:
    """SIGKILL: the kernel closes the socket and the broker sends the will at once, well
    within 1.5 keepalives. SIGSTOP (a hung agent, or a cut cable): the socket stays open and
    only the keepalive can tell: 1.5 keepalives after the agent's last packet, plus the
    broker's check period."""
    statuses = Statuses(config.mqtt.port, f"labmeter/v1/{uid}/lab/pc-1/status")
    agent = subprocess.Popen(agent_cmd)
    try:
        wait_for(lambda: device_state(pipeline) not in (None, "offline"), timeout=30)
        time.sleep(0.5)  # a keepalive cycle under way, as at any moment
        killed = time.monotonic()
        agent.send_signal(getattr(signal, how))
        bound = 1.5 * KEEPALIVE_S + (BROKER_CHECK_S if how == "SIGSTOP" else 0)
        wait_for(lambda: device_state(pipeline) == "offline", timeout=bound + 10)
        seen_by_api = time.monotonic() - killed
        will = statuses.offline_after(killed)
        assert will is not None
        broker_s, payload = will[0] - killed, will[1]
        assert payload == {"v": 1, "status": "offline"}  # the will: no ts, the agent sent nothing
        assert broker_s <= bound
        assert seen_by_api <= bound + PIPELINE_S
        if how == "SIGSTOP":
            # Not the socket closing: a keepalive period (pings every 4 s) went by unanswered.
            assert broker_s >= 0.5 * KEEPALIVE_S
    finally:
        if how == "SIGSTOP":
            agent.send_signal(signal.SIGCONT)
        agent.kill()
        agent.wait(10)
        statuses.close()
