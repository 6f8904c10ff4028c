"""A fleet of agents streaming samples through the agent's own durable queue and publisher.

For crash tests and benchmarks: every agent keeps its rows in a real ``DurableQueue`` and
publishes them with the real ``Publisher`` (confirmations and resends included), at a steady
rate, so what a broker or collector crash does to delivery is measured on the path agents
really use.
Each sample is distinct (its own device and minute), so InfluxDB must end with exactly
``agents x samples`` points.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

from labmeter.agent.publisher import Publisher
from labmeter.agent.queue import DurableQueue
from labmeter.config import MqttConfig
from labmeter.contract import Sample, Topic, encode

HOUR_MS = 3_600_000
DEPLOY_MOSQUITTO = Path(__file__).parents[2] / "deploy" / "mosquitto"


def shipped_persistence() -> str:
    """The persistence and autosave lines of the shipped ``mosquitto.conf`` (without its path),
    to append to a test broker's own configuration (mosquitto takes the last of each)."""
    lines = (DEPLOY_MOSQUITTO / "mosquitto.conf").read_text().splitlines()
    kept = [ln for ln in lines if re.match(r"(persistence|autosave_)", ln)]
    return "\n".join(ln for ln in kept if not ln.startswith("persistence_location")) + "\n"


class Fleet:
    def __init__(
        self, mqtt: MqttConfig, site: str, agents: int, folder: Path, *, resend_s: float = 30.0
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        now = time.time_ns() // 1_000_000
        self.base_ms = now - now % HOUR_MS - 6 * HOUR_MS  # recent, whole minutes, in the past
        self.topics = [Topic(site, "lab", f"pc-{i:03d}", "sample") for i in range(agents)]
        self.queues = [DurableQueue(folder / f"{t.device}.db") for t in self.topics]
        self.publishers = [
            Publisher(mqtt, t, kind="pc", interval_s=60, resend_s=resend_s) for t in self.topics
        ]
        self.made = 0  # samples queued per agent so far
        for publisher in self.publishers:
            publisher.start()

    @property
    def published(self) -> int:
        return self.made * len(self.topics)

    @property
    def resent(self) -> int:
        """Rows sent again (on connections, after resend_s), over the whole fleet."""
        return sum(p.resent for p in self.publishers)

    @property
    def confirmed(self) -> bool:
        """Every agent has had a row confirmed by a collector (rows wait for confirmations)."""
        return all(q.confirmed_by_collector for q in self.queues)

    def sample(self, seq: int) -> tuple[int, bytes]:
        in_use = float((seq * 7) % 61)
        ts = self.base_ms + (seq + 1) * 60_000
        body = Sample(ts, seq, 60.0, {"in_use": in_use, "idle": 60.0 - in_use}, "school")
        return ts, encode(body)

    def stream(self, samples: int, seconds: float) -> None:
        """Queue ``samples`` per agent over ``seconds`` and keep publishing meanwhile."""
        started, first = time.monotonic(), self.made
        for step in range(samples):
            ts, payload = self.sample(first + step)
            for topic, queue in zip(self.topics, self.queues, strict=True):
                queue.put(topic, ts, payload, {"sample_seq": first + step + 1})
            self.made = first + step + 1
            self.pump()
            lag = started + seconds * (step + 1) / samples - time.monotonic()
            if lag > 0:
                time.sleep(lag)

    def pump(self) -> None:
        for publisher, queue in zip(self.publishers, self.queues, strict=True):
            publisher.pump(queue)

    def drain(self, timeout: float) -> bool:
        """Publish until every queue is empty (True) or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while any(len(q) for q in self.queues):
            if time.monotonic() > deadline:
                return False
            self.pump()
            time.sleep(0.05)
        return True

    def close(self) -> None:
        for publisher, queue in zip(self.publishers, self.queues, strict=True):
            publisher.close(timeout=5)
            queue.close()


def run_in_background(fleet: Fleet, samples: int, seconds: float) -> threading.Thread:
    thread = threading.Thread(target=fleet.stream, args=(samples, seconds), daemon=True)
    thread.start()
    return thread
