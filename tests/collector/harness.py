"""A collector as a child process (so it can be SIGKILLed) and a publisher of known samples."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families

from labmeter.contract import Sample, Topic, encode
from labmeter.influx import InfluxV1
from labmeter.localstack import free_port
from tests.helpers import wait_for

HOUR_MS = 3_600_000
DEVICES = 50


def samples(site: str, n: int, hour_ms: int) -> list[tuple[str, bytes, float]]:
    """``n`` distinct samples (50 devices x minutes from ``hour_ms``): topic, payload, in_use."""
    out = []
    for i in range(n):
        device, minute = i % DEVICES, i // DEVICES
        in_use = float((i * 7) % 61)
        apps = {"solidworks": in_use} if device % 3 == 0 else {}
        sample = Sample(
            hour_ms + (minute + 1) * 60_000,
            i,
            60.0,
            {"in_use": in_use, "idle": 60.0 - in_use},
            "school" if device % 2 else "company",
            kind="pc",
            state="in_use" if in_use else "idle",
            apps_s=apps,
        )
        topic = Topic(site, "lab-a", f"pc-{device:02d}", "sample")
        out.append((str(topic), encode(sample), in_use))
    return out


@dataclass
class Publisher:
    """Publishes QoS 1 messages at a steady rate; paho resends unacked ones after reconnects."""

    port: int
    messages: list[tuple[str, bytes, float]]
    seconds: float
    client_id: str
    done: threading.Event = field(default_factory=threading.Event)
    failures: list[str] = field(default_factory=list)

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, self.client_id, protocol=mqtt.MQTTv5)
        client.max_inflight_messages_set(1000)
        client.reconnect_delay_set(1, 2)
        acked: set[int] = set()  # mids PUBACKed; a message published while offline goes later
        client.on_publish = lambda _c, _u, mid, _rc, _p: acked.add(mid)
        client.connect_async("127.0.0.1", self.port)
        client.loop_start()
        try:
            mids = set()
            started = time.monotonic()
            for i, (topic, payload, _) in enumerate(self.messages):
                info = client.publish(topic, payload, qos=1)
                mids.add(info.mid)
                rc = info.rc
                if rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    self.failures.append(f"publish {i}: rc {rc}")
                lag = started + self.seconds * (i + 1) / len(self.messages) - time.monotonic()
                if lag > 0:
                    time.sleep(lag)
            deadline = time.monotonic() + 90
            while not mids <= acked:
                if time.monotonic() > deadline:
                    self.failures.append("not every message was acked by the broker")
                    break
                time.sleep(0.1)
        finally:
            client.disconnect()
            client.loop_stop()
            self.done.set()


class CollectorProcess:
    """``labmeter collector -c <toml>`` in a child process, scraped over HTTP."""

    def __init__(
        self,
        workdir: Path,
        *,
        mqtt_port: int,
        influx_url: str,
        database: str,
        client_id: str,
        site: str,
        shared_group: str = "",
        workers: int | None = 1,
        settings: str = "",
    ) -> None:
        """``workers``: None for the collector's default (one per core, shared subscription);
        ``settings``: more lines of its ``[collector]`` table."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.workers = workers
        self.metrics_port = free_port()
        self.config_path = workdir / "collector.toml"
        self.config_path.write_text(
            f"""
[mqtt]
url = "mqtt://127.0.0.1:{mqtt_port}"
[influx]
url = "{influx_url}"
database = "{database}"
timeout_s = 5.0
[collector]
client_id = "{client_id}"
site = "{site}"
shared_group = "{shared_group}"
batch_interval_s = 0.2
session_expiry_s = 300
dead_letter_path = "{workdir}/deadletters.jsonl"
metrics_port = {self.metrics_port}
rollup_grace_s = 0
rollup_settle_s = 1
{settings}"""
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, wait: bool = True) -> None:
        """Start it; ``wait``: until it is healthy (connected), which needs the broker up."""
        cli = Path(sys.executable).parent / "labmeter"
        log = (self.workdir / "collector.log").open("ab")
        workers = [] if self.workers is None else ["--workers", str(self.workers)]
        self.proc = subprocess.Popen(
            [str(cli), "collector", "-v", "-c", str(self.config_path), *workers],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        if wait:
            try:
                wait_for(self.healthy, timeout=20)
            except AssertionError:
                self.kill()  # not left running (its workers included) past a failed test
                raise

    def healthy(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"http://127.0.0.1:{self.metrics_port}/healthz").status_code == 200
        return False

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics").text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and (labels is None or sample.labels == labels):
                    return float(sample.value)
        return 0.0

    def kill(self) -> None:
        """SIGKILL, workers first: the machine lost power (a worker whose parent is killed
        alone stops by itself, writing and acking what it holds)."""
        assert self.proc is not None
        for pid in self.worker_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        """SIGTERM: the collector drains, acks and exits; return its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9

    def worker_pids(self) -> list[int]:
        """With ``workers`` > 1: the worker processes (worker 0 runs in the collector's own)."""
        assert self.proc is not None
        return [
            c.pid
            for c in psutil.Process(self.proc.pid).children()
            if "worker_main" in " ".join(c.cmdline()) and c.status() != psutil.STATUS_ZOMBIE
        ]

    def dead_letters(self) -> list[str]:
        """Every worker's dead letters (worker 0 keeps the configured file, N the .wN one)."""
        return [
            line
            for path in sorted(self.workdir.glob("deadletters*.jsonl"))
            for line in path.read_text().splitlines()
        ]


def count_points(influx: InfluxV1) -> int:
    rows = influx.query("SELECT count(seq) FROM sample")
    return int(rows[0].values[0][1]) if rows else 0


def sum_in_use(influx: InfluxV1) -> float:
    rows = influx.query("SELECT sum(in_use_s) FROM sample")
    return float(rows[0].values[0][1]) if rows else 0.0
