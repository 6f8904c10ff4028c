"""Collector drain benchmark against real Mosquitto and InfluxDB, with its ceiling in the same run.

For each round a backlog of QoS 1 samples is queued in Mosquitto for a persistent session
(the session is created first, then the backlog is published from several connections), then
drained, three times, each from its own freshly queued backlog on its own topics, in an order
that turns from round to round:

- by a bare paho subscriber that only counts (the ceiling),
- by the same bare subscriber built on ``labmeter.mqtt.Client`` (paho reading through the
  collector's ``ReadBuffer``): the ceiling of the collector's own MQTT client, so that the
  ratio against stock paho is not mistaken for the collector doing less work, and
- by ``labmeter collector`` (a child process, as deployed) writing into InfluxDB.

It prints the median of the rounds: messages/s of each and the ratios, CPU seconds per 100k
messages and peak RSS (the collector's converter process included); then p50/p99
broker-to-queryable latency under a steady load.
Run: ``.venv/bin/python bench/ingest.py`` (``--help`` for sizes).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client.parser import text_string_to_metric_families

from labmeter.config import InfluxConfig
from labmeter.contract import Sample, Topic, encode, subscription
from labmeter.influx import InfluxV1
from labmeter.localstack import free_port, influxd, mosquitto, wait_influx_ready
from labmeter.mqtt import Client

DEVICES = 500
POLL_S = 0.05  # how often the drain is read on /metrics: at most 50 ms of error per round


def backlog(site: str, n: int, start_ms: int) -> list[tuple[str, bytes]]:
    """``n`` distinct samples shaped like DESIGN.md's example (3 lines each once written)."""
    out = []
    for i in range(n):
        device, minute = i % DEVICES, i // DEVICES
        in_use = float(i % 61)
        sample = Sample(
            start_ms + (minute + 1) * 60_000,
            minute,
            60.0,
            {"in_use": in_use, "idle": 60.0 - in_use},
            "school",
            user="p_3f9a0c1d2e4b5a69",
            kind="pc",
            state="idle",
            apps_s={"solidworks": in_use},
            metrics={"cpu_pct": 23.1, "mem_pct": 48.0, "gpu_pct": 0.0},
        )
        out.append((str(Topic(site, "lab-cad", f"pc-{device:03d}", "sample")), encode(sample)))
    return out


def _client(client_id: str = "", *, buffered: bool = False) -> mqtt.Client:
    cls = Client if buffered else mqtt.Client
    return cls(CallbackAPIVersion.VERSION2, client_id, protocol=mqtt.MQTTv5)


def _session_props(receive_maximum: int | None = None) -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    if receive_maximum:
        props.ReceiveMaximum = receive_maximum
    return props


def create_session(port: int, client_id: str, topic_filter: str) -> None:
    """Connect once with a persistent session and subscribe, so the broker queues for us."""
    client = _client(client_id)
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", port, clean_start=False, properties=_session_props())
    client.loop_start()
    client.subscribe(topic_filter, qos=1)
    if not subscribed.wait(10):
        raise RuntimeError("SUBSCRIBE not acknowledged")
    client.disconnect()
    client.loop_stop()


def _publish_part(port: int, messages: list[tuple[str, bytes]]) -> None:
    client = _client()
    client.max_inflight_messages_set(1000)
    done = threading.Event()
    acked = [0]

    def on_publish(*_: object) -> None:
        acked[0] += 1
        if acked[0] == len(messages):
            done.set()

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    for topic, payload in messages:
        rc = client.publish(topic, payload, qos=1).rc
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"publish returned {rc}")
    if not done.wait(900):
        raise RuntimeError("broker did not ack the whole backlog")
    client.disconnect()
    client.loop_stop()


def publish_backlog(port: int, messages: list[tuple[str, bytes]], connections: int = 4) -> float:
    started = time.monotonic()
    parts = [messages[i::connections] for i in range(connections)]
    procs = [mp.Process(target=_publish_part, args=(port, part)) for part in parts]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError("a publisher failed")
    return time.monotonic() - started


def _bare(port: int, client_id: str, n: int, buffered: bool, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """The ceiling: resume the session, count messages (paho acks them itself), nothing else."""
    client = _client(client_id, buffered=buffered)
    times: list[float] = []
    done = threading.Event()
    count = [0]

    def on_message(*_: object) -> None:
        count[0] += 1
        if count[0] == 1:
            times.append(time.monotonic())
        if count[0] == n:
            times.append(time.monotonic())
            done.set()

    client.on_message = on_message
    cpu0 = time.process_time()
    client.connect("127.0.0.1", port, clean_start=False, properties=_session_props())
    client.loop_start()
    done.wait(600)
    cpu = time.process_time() - cpu0
    client.disconnect()
    client.loop_stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.put((count[0], times[1] - times[0], cpu, rss_mb))


def drain_bare(port: int, client_id: str, n: int, *, buffered: bool = False) -> dict[str, float]:
    queue: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    proc = mp.Process(target=_bare, args=(port, client_id, n, buffered, queue))
    proc.start()
    count, seconds, cpu, rss = queue.get(timeout=900)
    proc.join()
    if count != n:
        raise RuntimeError(f"bare subscriber got {count} of {n}")
    return {"rate": n / seconds, "cpu_per_100k": cpu / n * 100_000, "rss_mb": rss}


class CollectorProc:
    """``labmeter collector`` as deployed, in a child process; scraped on its /metrics."""

    def __init__(
        self, workdir: Path, mqtt_port: int, influx_url: str, client_id: str, site: str
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.metrics_port = free_port()
        config = workdir / "collector.toml"
        config.write_text(
            f'[mqtt]\nurl = "mqtt://127.0.0.1:{mqtt_port}"\n'
            f'[influx]\nurl = "{influx_url}"\ndatabase = "bench"\n'
            f'[collector]\nclient_id = "{client_id}"\nsite = "{site}"\n'
            f'dead_letter_path = "{workdir}/deadletters.jsonl"\n'
            f"metrics_port = {self.metrics_port}\nsession_expiry_s = 3600\n"
        )
        cli = Path(sys.executable).parent / "labmeter"
        self.proc = subprocess.Popen(
            [str(cli), "collector", "-c", str(config)],
            stdout=(workdir / "collector.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        self.ps = psutil.Process(self.proc.pid)
        # One reused client: ``httpx.get`` builds a client (and its TLS context) per call,
        # ~40 ms of CPU, so polling every 20 ms kept this process on a whole core while the
        # collector drained, on a 2-core machine: half the ratio we measured was the meter.
        self.http = httpx.Client(timeout=2)

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        try:
            text = self.http.get(f"http://127.0.0.1:{self.metrics_port}/metrics").text
        except httpx.HTTPError:
            return 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and (labels is None or sample.labels == labels):
                    return float(sample.value)
        return 0.0

    def _processes(self) -> list[psutil.Process]:
        """The collector and its converter process: both are its cost."""
        return [self.ps, *self.ps.children(recursive=True)]

    def peak_rss_mb(self) -> float:
        total = 0.0
        for ps in self._processes():
            for row in Path(f"/proc/{ps.pid}/status").read_text().splitlines():
                if row.startswith("VmHWM:"):
                    total += int(row.split()[1]) / 1024
        return total

    def cpu(self) -> float:
        return sum(_cpu(ps) for ps in self._processes())

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(30)


def _cpu(ps: psutil.Process) -> float:
    times = ps.cpu_times()
    return float(times.user + times.system)


def drain_collector(
    port: int, influx_url: str, workdir: Path, client_id: str, site: str, n: int, influxd_pid: int
) -> dict[str, float]:
    proc = CollectorProc(workdir, port, influx_url, client_id, site)
    influxd_ps = psutil.Process(influxd_pid)  # it shares the two cores with the collector
    try:
        while proc.metric("labmeter_collector_received_total") == 0:
            time.sleep(POLL_S)
        started, cpu0, db0 = time.monotonic(), proc.cpu(), _cpu(influxd_ps)
        while proc.metric("labmeter_collector_acked_total") < n:
            time.sleep(POLL_S)
            if proc.proc.poll() is not None:
                raise RuntimeError("collector exited")
        seconds, cpu = time.monotonic() - started, proc.cpu() - cpu0
        db_cpu = _cpu(influxd_ps) - db0
        rss = proc.peak_rss_mb()
    finally:
        proc.stop()
    return {
        "rate": n / seconds,
        "cpu_per_100k": cpu / n * 100_000,
        "rss_mb": rss,
        "influxd_cpu_per_100k": db_cpu / n * 100_000,
    }


def latency(
    port: int, influx_url: str, workdir: Path, rate: float, seconds: float
) -> tuple[list[float], str]:
    """Publish ``rate`` samples/s with known send times; note when each becomes queryable.

    Also returns where the slowest ones came from: the worst second of sends, and how many
    of the collector's batch writes took longer than 0.5 s (InfluxDB's share of the tail).
    """
    site = "latency"
    proc = CollectorProc(workdir, port, influx_url, "bench-latency", site)
    influx = InfluxV1(InfluxConfig(url=influx_url, database="bench"))
    n = int(rate * seconds)
    sent: dict[int, float] = {}
    seen: dict[int, float] = {}
    try:
        while proc.metric("labmeter_collector_connected") != 1:
            time.sleep(0.05)
        time.sleep(0.3)

        def publish() -> None:
            client = _client()
            client.connect("127.0.0.1", port)
            client.loop_start()
            t0 = time.monotonic()
            for i in range(n):
                now_ms = int(time.time() * 1000)
                sample = Sample(now_ms, i, 60.0, {"in_use": 60.0}, "school", kind="pc")
                topic = Topic(site, "lab-a", f"pc-{i % 50:02d}", "sample")
                sent[i] = time.monotonic()
                client.publish(str(topic), encode(sample), qos=1)
                pause = t0 + (i + 1) / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            client.disconnect()
            client.loop_stop()

        publisher = threading.Thread(target=publish)
        publisher.start()
        low = 0
        deadline = time.monotonic() + seconds + 60
        while len(seen) < n and time.monotonic() < deadline:
            rows = influx.query(f"SELECT seq FROM sample WHERE site = '{site}' AND seq >= {low}")
            now = time.monotonic()
            for series in rows:
                for _, seq in series.values:
                    seen.setdefault(int(seq), now)
            while low in seen:
                low += 1
            time.sleep(0.05)
        publisher.join()
        batches = proc.metric("labmeter_collector_batch_seconds_count")
        fast = proc.metric("labmeter_collector_batch_seconds_bucket", {"le": "0.5"})
    finally:
        proc.stop()
        influx.close()
    if len(seen) < n:
        raise RuntimeError(f"only {len(seen)} of {n} latency samples became queryable")
    lat = [seen[i] - sent[i] for i in range(n)]
    per_s = int(rate)
    worst = max(range(0, n, per_s), key=lambda i: max(lat[i : i + per_s]))
    where = (
        f"worst second of sends: {worst // per_s}-{worst // per_s + 1} s, max "
        f"{max(lat[worst : worst + per_s]) * 1000:.0f} ms; batch writes over 0.5 s: "
        f"{batches - fast:.0f} of {batches:.0f}"
    )
    return lat, where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=500.0, help="msg/s for the latency run")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    args = parser.parse_args()
    n = args.messages
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="labmeter-bench-") as tmp:
        work = Path(tmp)
        # Persistence stays on, but the test stack's 1 s autosave rewrites the whole queue
        # file every second: at 200k queued messages that slowed the broker (and the publish
        # timed out) for both subscribers alike. The shipped config saves every 30 s.
        broker = mosquitto(work / "mosquitto", extra_conf="autosave_interval 30\n")
        db = influxd(work / "influxd")
        broker.start()
        db.start()
        url = f"http://127.0.0.1:{db.port}"
        wait_influx_ready(url)
        InfluxV1(InfluxConfig(url=url, database="bench")).create_database()
        now = int(time.time() * 1000)
        start_ms = now - now % 3_600_000 - 24 * 3_600_000
        bare: list[dict[str, float]] = []
        buffered: list[dict[str, float]] = []
        coll: list[dict[str, float]] = []
        drains = ["bare", "buff", "coll"]
        try:
            for r in range(args.rounds):
                # Each drain has its own site, so its backlog is queued for its session only:
                # with one site for the three, every later backlog was queued again for the
                # sessions already drained (1.8 M messages held by the end), and the broker's
                # autosave of them stalled deliveries for seconds. The order turns each round.
                pub_s = 0.0
                for kind in drains[r % 3 :] + drains[: r % 3]:
                    site = f"b{r}{kind}"  # same length for all: the same bytes per message
                    create_session(broker.port, site, subscription(site))
                    pub_s = max(pub_s, publish_backlog(broker.port, backlog(site, n, start_ms)))
                    if kind == "bare":
                        bare.append(drain_bare(broker.port, site, n))
                    elif kind == "buff":
                        buffered.append(drain_bare(broker.port, site, n, buffered=True))
                    else:
                        assert db.proc is not None
                        coll.append(
                            drain_collector(
                                broker.port, url, work / site, site, site, n, db.proc.pid
                            )
                        )
                        written_site = site
                influx = InfluxV1(InfluxConfig(url=url, database="bench"))
                rows = influx.query(f"SELECT count(seq) FROM sample WHERE site = '{written_site}'")
                influx.close()
                written = int(rows[0].values[0][1]) if rows else 0
                ratio = coll[-1]["rate"] / bare[-1]["rate"]
                print(
                    f"round {r + 1}: backlog of {n} published in {pub_s:.1f} s; bare "
                    f"{bare[-1]['rate']:,.0f} msg/s, bare+ReadBuffer "
                    f"{buffered[-1]['rate']:,.0f} msg/s, collector {coll[-1]['rate']:,.0f} msg/s "
                    f"(ratio {ratio:.0%}, {coll[-1]['rate'] / buffered[-1]['rate']:.0%} of "
                    f"bare+ReadBuffer); CPU-s/100k bare {bare[-1]['cpu_per_100k']:.2f}, "
                    f"bare+ReadBuffer {buffered[-1]['cpu_per_100k']:.2f}, "
                    f"collector {coll[-1]['cpu_per_100k']:.2f}, influxd "
                    f"{coll[-1]['influxd_cpu_per_100k']:.2f}; sample points in InfluxDB: {written}",
                    flush=True,
                )
                if written != n:
                    raise RuntimeError(f"{written} points written for {n} messages")
            lat, where = latency(broker.port, url, work / "lat", args.rate, args.latency_seconds)
        finally:
            broker.stop()
            db.stop()
    med = {k: statistics.median(r[k] for r in coll) for k in coll[0]}
    ceiling = {k: statistics.median(r[k] for r in bare) for k in bare[0]}
    same_client = {k: statistics.median(r[k] for r in buffered) for k in buffered[0]}
    ratios = [c["rate"] / b["rate"] for c, b in zip(coll, bare, strict=True)]
    lat.sort()
    print(f"\nmedian of {args.rounds} rounds, {n:,} QoS 1 samples each (3 lines per sample)")
    print(
        f"bare subscriber (ceiling): {ceiling['rate']:,.0f} msg/s, "
        f"{ceiling['cpu_per_100k']:.2f} CPU-s/100k, peak RSS {ceiling['rss_mb']:.0f} MB"
    )
    print(
        f"bare, labmeter's client:   {same_client['rate']:,.0f} msg/s, "
        f"{same_client['cpu_per_100k']:.2f} CPU-s/100k (paho reading through ReadBuffer)"
    )
    print(
        f"collector -> InfluxDB:     {med['rate']:,.0f} msg/s, "
        f"{med['cpu_per_100k']:.2f} CPU-s/100k, peak RSS {med['rss_mb']:.0f} MB "
        f"(influxd meanwhile: {med['influxd_cpu_per_100k']:.2f} CPU-s/100k)"
    )
    print(
        f"ratio (median of rates): {med['rate'] / ceiling['rate']:.0%}; "
        f"per round: {', '.join(f'{r:.0%}' for r in ratios)}; against the bare subscriber "
        f"on labmeter's client: {med['rate'] / same_client['rate']:.0%}"
    )
    print(
        f"latency broker->queryable at {args.rate:.0f} msg/s for {args.latency_seconds:.0f} s: "
        f"p50 {lat[len(lat) // 2] * 1000:.0f} ms, p99 {lat[int(len(lat) * 0.99)] * 1000:.0f} ms "
        f"(poll every 50 ms); {where}"
    )
    print(
        f"load average before/after: {load0[0]:.1f} / {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
