"""Collector drain benchmark against real Mosquitto and InfluxDB, with its ceilings in the same run.

For each round a backlog of QoS 1 samples is queued in Mosquitto for a persistent session (the
session is created first, then the backlog is published from several connections), then
drained; every drain has its own freshly queued backlog on its own topics, in an order that
turns from round to round:

- bare subscribers that only count and ack, each in its own process: paho-mqtt on MQTT 5
  (``paho-v5``) and on MQTT 3.1.1 (``paho-v311``), gmqtt 0.8 on MQTT 5 with its PUBACK after
  the handler (``gmqtt-v5``), and the collector's own session, ``collector/subscriber.py``
  (``labmeter-v5``): the best of them is the ceiling the ratios use;
- ``labmeter collector`` as deployed (a child process) writing into InfluxDB, with one worker
  (``collector-1``) and with ``--workers`` (``collector-N``, its default: one per core), and
  the same with its confirmations to agents off (``collector-N-unconfirmed``,
  ``confirm = false``): what confirming costs the drain;
- with ``--baseline REF``, the collector of that git commit (``baseline``: its packages
  extracted to a temp dir, first on the child's path; same venv, broker and database).

Every message carries an agent's row label (the ``row`` user property: a queue id per device,
the row's id), as agents send them. It checks that InfluxDB holds exactly as many sample
points as messages, and prints per round and as medians: messages/s, CPU seconds per 100k
messages (the collector's process tree, workers included) and peak RSS, influxd's and
mosquitto's CPU during each collector drain, the confirmation messages published, the ratios
to the best bare subscriber and to the baseline, 1 vs N workers, confirmations on vs off; then
p50/p99 broker-to-queryable latency under a steady load with the default workers, and the
load average.

    .venv/bin/python bench/ingest.py --baseline 4485809     # 200,000 x 3 rounds, ~40 min here
    .venv/bin/python bench/ingest.py --only labmeter-v5,collector-1 --rounds 1 --messages 50000
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tarfile
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

from labmeter.collector.workers import default_workers, worker_client_id
from labmeter.config import InfluxConfig, MqttConfig
from labmeter.contract import ROW_PROPERTY, Sample, Topic, encode, row_label, subscription
from labmeter.influx import InfluxV1
from labmeter.localstack import free_port, influxd, mosquitto, wait_influx_ready

DEVICES = 500
UNCONFIRMED = {"confirm": "false"}  # collector-N-unconfirmed: confirmations to agents off
POLL_S = 0.2  # how often the drain is read on /metrics: <= 0.2 s of error (~1 % of a round)
# (every 50 ms the scrapes cost the collector ~7 % of a core, more with workers to sum)


def backlog(site: str, n: int, start_ms: int) -> list[tuple[str, bytes, str]]:
    """``n`` distinct samples shaped like DESIGN.md's example (3 lines each once written),
    each with the row label its device's agent gives it (a queue id per device)."""
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
        topic = str(Topic(site, "lab-cad", f"pc-{device:03d}", "sample"))
        out.append((topic, encode(sample), row_label(f"{device + 1:016x}", minute + 1)))
    return out


def _client(client_id: str = "", *, v311: bool = False) -> mqtt.Client:
    if v311:  # a 3.1.1 session persists when clean_session is off (it needs a client id)
        return mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id,
            clean_session=not client_id,
            protocol=mqtt.MQTTv311,
        )
    return mqtt.Client(CallbackAPIVersion.VERSION2, client_id, protocol=mqtt.MQTTv5)


def _session_props(receive_maximum: int | None = None) -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    if receive_maximum:
        props.ReceiveMaximum = receive_maximum
    return props


def create_session(port: int, client_id: str, topic_filter: str, *, v311: bool = False) -> None:
    """Connect once with a persistent session and subscribe, so the broker queues for us."""
    client = _client(client_id, v311=v311)
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    if v311:
        client.connect("127.0.0.1", port)
    else:
        client.connect("127.0.0.1", port, clean_start=False, properties=_session_props())
    client.loop_start()
    client.subscribe(topic_filter, qos=1)
    if not subscribed.wait(10):
        raise RuntimeError("SUBSCRIBE not acknowledged")
    client.disconnect()
    client.loop_stop()


def _publish_part(port: int, messages: list[tuple[str, bytes, str]]) -> None:
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
    for topic, payload, label in messages:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.UserProperty = [(ROW_PROPERTY, label)]
        rc = client.publish(topic, payload, qos=1, properties=props).rc
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"publish returned {rc}")
    if not done.wait(900):
        raise RuntimeError("broker did not ack the whole backlog")
    client.disconnect()
    client.loop_stop()


def publish_backlog(
    port: int, messages: list[tuple[str, bytes, str]], connections: int = 4
) -> float:
    started = time.monotonic()
    # paho holds at most 65,535 unacknowledged QoS 1 publishes per client: a backlog of a
    # million takes more connections.
    connections = max(connections, -(-len(messages) // 60_000))
    parts = [messages[i::connections] for i in range(connections)]
    procs = [mp.Process(target=_publish_part, args=(port, part)) for part in parts]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError("a publisher failed")
    return time.monotonic() - started


class Counter:
    """Counts deliveries; notes the time of the first and of the ``n``-th."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.times: list[float] = []
        self.done = threading.Event()

    def add(self, k: int = 1) -> None:
        if self.count == 0:
            self.times.append(time.monotonic())
        self.count += k
        if self.count >= self.n and not self.done.is_set():
            self.times.append(time.monotonic())
            self.done.set()


def _paho(port: int, client_id: str, counter: Counter, v311: bool) -> None:
    """paho-mqtt 2.x: its network thread acks each QoS 1 message after the callback."""
    client = _client(client_id, v311=v311)
    client.on_message = lambda *_: counter.add()
    if v311:
        client.connect("127.0.0.1", port)
    else:
        client.connect("127.0.0.1", port, clean_start=False, properties=_session_props())
    client.loop_start()
    counter.done.wait(600)
    client.disconnect()
    client.loop_stop()


def _gmqtt(port: int, client_id: str, counter: Counter) -> None:
    """gmqtt 0.8 (asyncio, MQTT 5), PUBACK after the handler: manual acknowledgement."""
    import asyncio

    import gmqtt

    async def run() -> None:
        client = gmqtt.Client(
            client_id,
            clean_session=False,
            optimistic_acknowledgement=False,
            session_expiry_interval=3600,
            receive_maximum=10000,
        )

        # A coroutine: gmqtt 0.8 sends the PUBACK when it completes (a Task per message). With
        # a plain function and optimistic_acknowledgement=False it never sends one.
        async def on_message(*_: object) -> int:
            counter.add()
            return 0  # PUBACK reason code: success

        client.on_message = on_message
        await client.connect("127.0.0.1", port, version=gmqtt.constants.MQTTv50)
        while not counter.done.is_set():
            await asyncio.sleep(0.01)
        await client.disconnect()

    asyncio.run(run())


def _labmeter(port: int, client_id: str, counter: Counter) -> None:
    """labmeter's collector session (``collector/subscriber.py``): acks each read at once."""
    from labmeter.collector.subscriber import Delivery, Subscriber

    def on_messages(generation: int, deliveries: list[Delivery]) -> None:
        counter.add(len(deliveries))
        sub.ack(generation, [mid for mid, *_ in deliveries])

    sub = Subscriber(
        MqttConfig(url=f"mqtt://127.0.0.1:{port}"),
        client_id,
        "labmeter/v1/none/#",  # the session's own subscription was made by create_session
        receive_max=10000,
        session_expiry_s=3600,
        on_messages=on_messages,
    )
    sub.start()
    counter.done.wait(600)
    sub.stop()


BARE = {
    "paho-v5": lambda port, cid, c: _paho(port, cid, c, v311=False),
    "paho-v311": lambda port, cid, c: _paho(port, cid, c, v311=True),
    "gmqtt-v5": _gmqtt,
    "labmeter-v5": _labmeter,
}


def _bare(kind: str, port: int, client_id: str, n: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """A bare subscriber: resume the session, count messages, ack them, nothing else."""
    counter = Counter(n)
    cpu0 = time.process_time()
    BARE[kind](port, client_id, counter)
    cpu = time.process_time() - cpu0
    # VmHWM, not ru_maxrss: that one keeps the bench's RSS from before the spawn's exec.
    out.put((counter.count, counter.times[1] - counter.times[0], cpu, _peak_rss_mb(os.getpid())))


def drain_bare(kind: str, port: int, client_id: str, n: int) -> dict[str, float]:
    # spawn: a fresh interpreter, so its RSS is the subscriber's own, not the bench's pages.
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_bare, args=(kind, port, client_id, n, queue))
    proc.start()
    count, seconds, cpu, rss = queue.get(timeout=900)
    proc.join()
    if count != n:
        raise RuntimeError(f"{kind} subscriber got {count} of {n}")
    return {"rate": n / seconds, "cpu_per_100k": cpu / n * 100_000, "rss_mb": rss}


class CollectorProc:
    """``labmeter collector`` as deployed, in a child process; scraped on its /metrics.

    ``code``: a tree extracted from an older commit (``--baseline``), first on the child's path.
    ``workers``: the collector's ``--workers`` (None: its default); with more than one they
    share the subscription of group ``bench``.
    """

    def __init__(
        self,
        workdir: Path,
        mqtt_port: int,
        influx_url: str,
        client_id: str,
        site: str,
        *,
        workers: int | None = 1,
        code: Path | None = None,
        settings: str = "",
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.metrics_port = free_port()
        config = workdir / "collector.toml"
        shared = 'shared_group = "bench"\n' if workers != 1 else ""
        config.write_text(
            f'[mqtt]\nurl = "mqtt://127.0.0.1:{mqtt_port}"\n'
            f'[influx]\nurl = "{influx_url}"\ndatabase = "bench"\n'
            f'[collector]\nclient_id = "{client_id}"\nsite = "{site}"\n{shared}'
            f'dead_letter_path = "{workdir}/deadletters.jsonl"\n'
            f"metrics_port = {self.metrics_port}\nsession_expiry_s = 3600\n{settings}"
        )
        args = ["collector", "-c", str(config)]
        if workers is not None and code is None:
            args += ["--workers", str(workers)]
        env = dict(os.environ)
        if code is not None:
            env["PYTHONPATH"] = str(code)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from labmeter.cli.main import app; app()", *args],
            stdout=(workdir / "collector.log").open("ab"),
            stderr=subprocess.STDOUT,
            env=env,
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
        return sum(_peak_rss_mb(ps.pid) for ps in self._processes())

    def cpu(self) -> float:
        return sum(_cpu(ps) for ps in self._processes())

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(30)


def _peak_rss_mb(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmHWM:"):
            return int(row.split()[1]) / 1024
    return 0.0


def _cpu(ps: psutil.Process) -> float:
    times = ps.cpu_times()
    return float(times.user + times.system)


def drain_collector(
    port: int,
    influx_url: str,
    workdir: Path,
    site: str,
    n: int,
    influxd_pid: int,
    broker_pid: int,
    *,
    workers: int = 1,
    code: Path | None = None,
    settings: str = "",
) -> dict[str, float]:
    proc = CollectorProc(
        workdir, port, influx_url, site, site, workers=workers, code=code, settings=settings
    )
    influxd_ps = psutil.Process(influxd_pid)  # it shares the two cores with the collector
    broker_ps = psutil.Process(broker_pid)  # and so does the broker
    try:
        while proc.metric("labmeter_collector_received_total") == 0:
            time.sleep(POLL_S)
        started, cpu0, db0 = time.monotonic(), proc.cpu(), _cpu(influxd_ps)
        broker0 = _cpu(broker_ps)
        while proc.metric("labmeter_collector_acked_total") < n:
            time.sleep(POLL_S)
            if proc.proc.poll() is not None:
                raise RuntimeError("collector exited")
        seconds, cpu = time.monotonic() - started, proc.cpu() - cpu0
        db_cpu = _cpu(influxd_ps) - db0
        broker_cpu = _cpu(broker_ps) - broker0
        rss = proc.peak_rss_mb()
        confirmations = proc.metric("labmeter_collector_confirmations_total")
    finally:
        proc.stop()
    return {
        "rate": n / seconds,
        "cpu_per_100k": cpu / n * 100_000,
        "rss_mb": rss,
        "influxd_cpu_per_100k": db_cpu / n * 100_000,
        "broker_cpu_per_100k": broker_cpu / n * 100_000,
        "confirmations": confirmations,
    }


def latency(
    port: int, influx_url: str, workdir: Path, rate: float, seconds: float
) -> tuple[list[float], str]:
    """Publish ``rate`` samples/s with known send times; note when each becomes queryable.

    Also returns where the slowest ones came from: the worst second of sends, and how many
    of the collector's batch writes took longer than 0.5 s (InfluxDB's share of the tail).
    """
    site = "latency"
    proc = CollectorProc(workdir, port, influx_url, "bench-latency", site, workers=None)
    influx = InfluxV1(InfluxConfig(url=influx_url, database="bench"))
    n = int(rate * seconds)
    sent: dict[int, float] = {}
    seen: dict[int, float] = {}
    try:
        # The sum of the workers' sessions: every one connected and subscribed.
        while proc.metric("labmeter_collector_connected") < default_workers():
            time.sleep(0.05)
        time.sleep(0.3)

        def publish() -> None:
            client = _client()
            acked = threading.Semaphore(0)
            client.on_publish = lambda *_: acked.release()
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
            for _ in range(n):  # every PUBACK before DISCONNECT, or the last ones are lost
                acked.acquire(timeout=30)
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


def baseline_tree(ref: str, into: Path) -> Path:
    """The collector's code at git ``ref`` (its packages), to run with the same venv; a tree
    from before the roles moved under ``labmeter`` has its top-level ``collector`` moved there
    (``bench/report.py``'s ``as_subpackage``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from report import as_subpackage

    root = Path(__file__).resolve().parent.parent
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-tree", "--name-only", ref],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    roles = [p for p in ("collector",) if p in listed]
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", ref, *roles, "labmeter"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    for role in roles:
        as_subpackage(into, role)
    return into


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )  # fmt: skip
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=500.0, help="msg/s for the latency run")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument(
        "--baseline", metavar="REF", help="also drain with the collector of this git commit"
    )
    parser.add_argument(
        "--workers", type=int, default=default_workers(),
        help="the collector's worker count besides 1 (default: its own default, %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--variant", action="append", default=[], metavar="NAME:KEY=VALUE,...",
        help="also drain with the collector of this tree under other settings of its "
        "[collector] table (TOML values; workers=N for its worker count), e.g. "
        "'big:batch_lines=10000,workers=2'",
    )  # fmt: skip
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of the drains: {', '.join(BARE)}, "
        "collector-1, collector-N, baseline; 'none' for the latency run alone",
    )  # fmt: skip
    args = parser.parse_args()
    n = args.messages
    drains = [*BARE, "collector-1"]
    if args.workers != 1:
        drains += ["collector-N", "collector-N-unconfirmed"]
    if args.baseline:
        drains.append("baseline")
    variants = dict(_variant(v) for v in args.variant)
    drains += list(variants)
    if args.only:
        drains = [d for d in drains if d in args.only.split(",")]
    load0 = os.getloadavg()
    runs: dict[str, list[dict[str, float]]] = {d: [] for d in drains}
    with tempfile.TemporaryDirectory(prefix="labmeter-bench-") as tmp:
        work = Path(tmp)
        code = baseline_tree(args.baseline, work / "baseline") if args.baseline else None
        # Persistence stays on, but the test stack's 1 s autosave rewrites the whole queue
        # file every second: at 200k queued messages that slowed the broker (and the publish
        # timed out) for every subscriber alike. The shipped config saves every 30 s.
        # max_inflight_messages: a 3.1.1 client has no Receive Maximum; 20 would throttle it.
        broker = mosquitto(
            work / "mosquitto", extra_conf="autosave_interval 30\nmax_inflight_messages 1000\n"
        )
        db = influxd(work / "influxd")
        broker.start()
        db.start()
        url = f"http://127.0.0.1:{db.port}"
        wait_influx_ready(url)
        influx = InfluxV1(InfluxConfig(url=url, database="bench"))
        influx.create_database()
        now = int(time.time() * 1000)
        # The backlog's minutes end an hour or more before now: a sample stamped more than
        # five minutes ahead is a dead letter (``ts_future``), not a point.
        minutes = -(-n // DEVICES) + 1
        start_ms = now - now % 3_600_000 - (minutes // 60 + 2) * 3_600_000
        assert db.proc is not None and broker.proc is not None
        try:
            for r in range(args.rounds):
                # Each drain has its own site, so its backlog is queued for its session only:
                # with one site for all, every later backlog was queued again for the
                # sessions already drained, and the broker's autosave of them stalled
                # deliveries for seconds. The order turns each round.
                k = r % len(drains) if drains else 0
                for i, kind in enumerate(drains[k:] + drains[:k]):
                    site = f"r{r}d{(i + k) % len(drains)}"  # same length: same bytes per message
                    settings = variants.get(
                        kind, UNCONFIRMED if kind.endswith("unconfirmed") else {}
                    )
                    workers = args.workers if kind.startswith("collector-N") else 1
                    workers = int(settings.get("workers", workers))
                    if workers == 1:
                        create_session(broker.port, site, subscription(site), v311="v311" in kind)
                    else:
                        for w in range(workers):
                            shared = f"$share/bench/{subscription(site)}"
                            create_session(broker.port, worker_client_id(site, w), shared)
                    pub_s = publish_backlog(broker.port, backlog(site, n, start_ms))
                    if kind in BARE:
                        runs[kind].append(drain_bare(kind, broker.port, site, n))
                    else:
                        result = drain_collector(
                            broker.port, url, work / site, site, n, db.proc.pid,
                            broker.proc.pid,
                            workers=workers, code=code if kind == "baseline" else None,
                            settings="".join(
                                f"{k} = {v}\n" for k, v in settings.items() if k != "workers"
                            ),
                        )  # fmt: skip
                        rows = influx.query(f"SELECT count(seq) FROM sample WHERE site = '{site}'")
                        written = int(rows[0].values[0][1]) if rows else 0
                        if written != n:
                            raise RuntimeError(f"{kind}: {written} points written for {n}")
                        runs[kind].append(result)
                    print(f"round {r + 1} {_row(kind, runs[kind][-1])} (backlog published in "
                          f"{pub_s:.1f} s)", flush=True)  # fmt: skip
            if "collector-1" in drains or not args.only or args.only == "none":
                lat, where = latency(
                    broker.port, url, work / "lat", args.rate, args.latency_seconds
                )
            else:
                lat, where = [], ""
        finally:
            influx.close()
            broker.stop()
            db.stop()
    report(args, drains, runs, lat, where, load0)


def _variant(text: str) -> tuple[str, dict[str, str]]:
    """``NAME:key=value,key=value`` -> its name and settings."""
    name, _, rest = text.partition(":")
    settings = dict(item.split("=", 1) for item in rest.split(",") if item)
    return name, settings


def _row(kind: str, run: dict[str, float]) -> str:
    extra = (
        f", meanwhile influxd {run['influxd_cpu_per_100k']:5.2f} and mosquitto "
        f"{run['broker_cpu_per_100k']:5.2f} CPU-s/100k"
        if "influxd_cpu_per_100k" in run else ""
    )  # fmt: skip
    return (
        f"{kind:<23} {run['rate']:>8,.0f} msg/s {run['cpu_per_100k']:6.2f} CPU-s/100k "
        f"peak RSS {run['rss_mb']:4.0f} MB{extra}"
    )


def report(
    args: argparse.Namespace,
    drains: list[str],
    runs: dict[str, list[dict[str, float]]],
    lat: list[float],
    where: str,
    load0: tuple[float, float, float],
) -> None:
    n = args.messages
    print(f"\nmedian of {args.rounds} rounds, {n:,} QoS 1 samples each (3 lines per sample)")
    med = {kind: _median(runs[kind]) for kind in drains if runs[kind]}
    for kind in drains:
        if kind in med:
            print(_row(kind, med[kind]))
    bare = [k for k in BARE if k in med]
    if bare:
        best = max(bare, key=lambda k: med[k]["rate"])
        print(f"best bare subscriber: {best}")
        for kind in drains:
            if kind not in BARE and kind in med:
                per_round = [
                    c["rate"] / max(runs[b][i]["rate"] for b in bare)
                    for i, c in enumerate(runs[kind])
                ]
                print(
                    f"{kind}: {med[kind]['rate'] / med[best]['rate']:.0%} of the best bare "
                    f"subscriber (per round: {', '.join(f'{x:.0%}' for x in per_round)})"
                )
    if "baseline" in med:
        for kind in drains:
            if kind not in BARE and kind != "baseline" and kind in med:
                print(
                    f"{kind} / baseline ({args.baseline}): "
                    f"{med[kind]['rate'] / med['baseline']['rate']:.2f}x"
                )
    if "collector-1" in med and "collector-N" in med:
        print(
            f"{args.workers} workers / 1 worker: "
            f"{med['collector-N']['rate'] / med['collector-1']['rate']:.2f}x"
        )
    off = "collector-N-unconfirmed"
    for kind in [d for d in drains if d in med and d not in BARE and d != off]:
        if off not in med or kind in ("collector-1", "baseline"):
            continue
        per_round = [a["rate"] / b["rate"] for a, b in zip(runs[kind], runs[off], strict=False)]
        print(
            f"{kind} / {off}: {med[kind]['rate'] / med[off]['rate']:.2f}x of medians, "
            f"{statistics.median(per_round):.2f}x median of rounds "
            f"(per round: {', '.join(f'{x:.2f}' for x in per_round)}); collector "
            f"{med[kind]['cpu_per_100k']:.2f} vs {med[off]['cpu_per_100k']:.2f} CPU-s/100k, "
            f"mosquitto {med[kind]['broker_cpu_per_100k']:.2f} vs "
            f"{med[off]['broker_cpu_per_100k']:.2f}; {med[kind]['confirmations']:,.0f} "
            "confirmation messages per drain"
        )
    if lat:
        lat.sort()
        print(
            f"latency broker->queryable at {args.rate:.0f} msg/s for {args.latency_seconds:.0f} "
            f"s (default workers): p50 {lat[len(lat) // 2] * 1000:.0f} ms, "
            f"p99 {lat[int(len(lat) * 0.99)] * 1000:.0f} ms (poll every 50 ms); {where}"
        )
    print(
        f"load average before/after: {load0[0]:.1f} {load0[1]:.1f} {load0[2]:.1f} / "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
