"""``labmeter collector --workers N``: N collector sessions on one shared subscription.

One collector process drains as fast as one core lets it (its MQTT reads, parsing and writes
share a GIL). With N > 1 the parent runs worker 0 itself and starts N - 1 worker processes,
each a full ``Collector`` with its own MQTT session (client id ``<client_id>``,
``<client_id>-w1``, ...) on the shared subscription ``$share/<shared_group or "labmeter">/...``
and its own dead letter file. The parent is the one rollup owner: a worker hands it the hours
each written batch touched and waits until they are on disk before it acks (as a lone
collector does with its own state file), so a crash of either cannot forget an hour. The
parent serves the one ``/metrics`` (the sum of its workers' and its own) and ``/healthz``, and
restarts a worker that dies; a worker whose parent is gone stops (nobody would roll up its
hours).

Worker 0 in the parent, and the others started as plain ``python -c`` processes with a pipe
(not ``multiprocessing``'s spawn, which adds a resource tracker process), so that N workers
are N processes: each holds Python, its libraries and its budget of unacked messages, and
with two workers the parent process and a third one had made the collector 1.5 times as
large (bench/ingest.py's peak RSS).

Fewer workers than last time: Mosquitto 2.0 keeps handing an offline member of a shared
subscription its share, queued in its persistent session, until the session expires (then it
is lost). So the worker count in use is kept in a small state file, and the sessions of
workers no longer run are *retired* at start: each connects once more, unsubscribes (no new
share), writes and acks what its session holds, and ends the session.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from multiprocessing.connection import Connection, Pipe
from pathlib import Path

import httpx
import orjson
from prometheus_client import generate_latest

from labmeter.collector.metrics import HealthServer, Metrics, summed
from labmeter.collector.rollups import Rollups
from labmeter.collector.service import Collector, make_periods, make_rollups, start_periods
from labmeter.config import Config

log = logging.getLogger(__name__)

MAX_DEFAULT_WORKERS = 4
DEFAULT_GROUP = "labmeter"


def default_workers() -> int:
    """One per core, at most MAX_DEFAULT_WORKERS: the broker and InfluxDB need cores too."""
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS))


def worker_client_id(client_id: str, index: int) -> str:
    """Worker 0 keeps the configured id (its session, and any backlog queued in it)."""
    return client_id if index == 0 else f"{client_id}-w{index}"


def state_path(config: Config) -> Path:
    """Where the worker count in use is kept: beside the dead letters and rollup state."""
    return Path(config.collector.dead_letter_path).with_suffix(".workers.json")


def workers_in_use(config: Config) -> int:
    """How many worker sessions the last run left (1 when none was recorded)."""
    try:
        return max(1, int(orjson.loads(state_path(config).read_bytes())["workers"]))
    except FileNotFoundError:
        return 1
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        log.error("worker state %s unreadable; assuming one worker", state_path(config))
        return 1


def _save_workers(config: Config, count: int) -> None:
    path = state_path(config)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(orjson.dumps({"workers": count}))
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def worker_config(config: Config, index: int) -> Config:
    """Worker ``index``'s view of the config: its session, its dead letters, a private port."""
    cfg = config.collector
    dead = Path(cfg.dead_letter_path)
    if index:
        dead = dead.with_name(f"{dead.stem}.w{index}{dead.suffix}")
    return replace(
        config,
        collector=replace(
            cfg,
            client_id=worker_client_id(cfg.client_id, index),
            shared_group=cfg.shared_group or DEFAULT_GROUP,
            dead_letter_path=str(dead),
            metrics_host="127.0.0.1",
            metrics_port=None if cfg.metrics_port is None else 0,
        ),
    )


class LocalLedger:
    """Worker 0's side of the rollup owner, in the same process."""

    def __init__(self, parent: Workers) -> None:
        self.parent = parent

    def touch(self, hours: set[int], behind: bool) -> None:
        if behind:
            self.parent._last_behind = time.monotonic()
        if hours and self.parent.rollups is not None:
            self.parent.rollups.touch(hours)


class RemoteLedger:
    """A worker's side of the rollup owner: hours go over the pipe, the answer means saved."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def touch(self, hours: set[int], behind: bool) -> None:
        with self.lock:  # raises EOFError/OSError when the parent is gone: nothing is acked
            self.conn.send(("hours", sorted(hours), behind))
            self.conn.recv()


WORKER = "from labmeter.collector.workers import worker_main; worker_main()"


def worker_main() -> None:
    """A worker process's start: its arguments come over the pipe whose descriptor is argv[1]."""
    conn = Connection(int(sys.argv[1]))
    config, index, verbose, retire = conn.recv()
    _worker(config, index, conn, verbose, retire)


def _worker(config: Config, index: int, conn: Connection, verbose: bool, retire: bool) -> None:
    """A worker process: a Collector whose rollups belong to the parent.

    A retiring one ends once its session is empty, and ends the session with it.
    """
    from labmeter.influx import InfluxV1, make_writer

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format=f"%(asctime)s %(name)s[w{index}] %(levelname)s %(message)s",
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    parent = os.getppid()
    # The reader: closed periods (refused, and the heartbeat a close waits for); its
    # rollups are the parent's.
    writer, reader = make_writer(config.influx), InfluxV1(config.influx)
    service = Collector(config, writer, reader, ledger=RemoteLedger(conn), retire=retire)
    gc.freeze()  # startup objects live forever: full collections in a drain skip them
    service.start()
    if service.health is not None:
        conn.send(("port", service.health.port))
    # The parent gone (killed), nobody rolls up: stop, and leave the rest to the broker.
    while not stop.wait(1.0) and os.getppid() == parent and service.writing():
        if retire and service.drained():
            log.info("retired session %s is empty: ending it", config.collector.client_id)
            break
    service.stop()
    writer.close()
    reader.close()


class Workers:
    """The parent: N worker processes, the rollups, and the summed ``/metrics``."""

    def __init__(self, config: Config, count: int, *, verbose: bool = False) -> None:
        from labmeter.influx import InfluxV1, make_writer

        self.config = config
        self.count = count
        self.verbose = verbose
        # Sessions of workers the last run had beyond ``count``: retired by extra processes.
        self.in_use = max(count, workers_in_use(config))
        self.metrics = Metrics()  # the parent's own: rollups
        # Worker 0 runs here (``local``); the others are processes. Fork would copy threads'
        # held locks, so they start a fresh interpreter.
        self._procs: list[subprocess.Popen[bytes] | None] = [None] * self.in_use
        self._ports: list[int | None] = [None] * self.in_use
        self.local: Collector | None = None
        self._last_behind = 0.0
        self._stopping = threading.Event()
        self.writer, self.reader = make_writer(config.influx), InfluxV1(config.influx)
        self.rollups: Rollups | None = None
        # The rollup owner's own view of closed periods: their hours are never recomputed,
        # and its heartbeat tells ``labmeter period close`` which hours are still owed.
        self.periods = make_periods(
            config,
            self.reader,
            self.writer,
            self.metrics,
            f"{config.collector.client_id}-rollups",
            lambda: self.rollups,
        )
        if config.collector.rollups:
            self.rollups = make_rollups(
                config, self.reader, self.writer, self.metrics, self._draining, self.periods
            )
        self.http = httpx.Client(timeout=2)
        self.health: HealthServer | None = None
        cfg = config.collector
        if cfg.metrics_port is not None:
            self.health = HealthServer(
                cfg.metrics_host, cfg.metrics_port, self.metrics, self.problems, self.exposition
            )

    def _draining(self) -> bool:
        return time.monotonic() - self._last_behind < 2.0

    def start(self) -> None:
        start_periods(self.periods)
        if self.rollups is not None:
            self.rollups.start()
        if self.health is not None:
            self.health.start()
            cfg = self.config.collector
            log.info("metrics on http://%s:%d/metrics", cfg.metrics_host, self.health.port)
        _save_workers(self.config, self.in_use)  # before any session of this run exists
        first = worker_config(self.config, 0)
        first = replace(first, collector=replace(first.collector, metrics_port=None))  # ours
        self.local = Collector(first, self.writer, self.reader, ledger=LocalLedger(self))
        self.local.start()
        for i in range(1, self.in_use):
            if i >= self.count:
                log.warning("retiring the session of worker %d (%d workers now)", i, self.count)
            self._spawn(i)

    def _spawn(self, index: int) -> None:
        parent, child = Pipe()
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(child.fileno())], pass_fds=[child.fileno()]
        )
        child.close()
        config = worker_config(self.config, index)
        parent.send((config, index, self.verbose, index >= self.count))
        self._procs[index] = proc
        self._ports[index] = None
        threading.Thread(
            target=self._serve, args=(index, parent), name=f"collector-ledger-w{index}", daemon=True
        ).start()

    def _serve(self, index: int, conn: Connection) -> None:
        """Answer one worker: its metrics port, and the hours of each batch it wrote."""
        with conn:
            while True:
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    return
                if message[0] == "port":
                    self._ports[index] = message[1]
                    continue
                _, hours, behind = message
                if behind:
                    self._last_behind = time.monotonic()
                if hours and self.rollups is not None:
                    self.rollups.touch(hours)  # on disk before the worker acks
                conn.send(True)

    def supervise(self, stop: threading.Event) -> None:
        """Restart workers that die, until ``stop`` is set; then stop them all."""
        while not stop.wait(1.0):
            for i, proc in enumerate(self._procs):
                if proc is None or proc.poll() is None:
                    continue
                if i >= self.count and proc.returncode == 0:
                    self._procs[i] = None  # retired: its session is gone
                    if all(p is None for p in self._procs[self.count :]):
                        self.in_use = self.count
                        _save_workers(self.config, self.count)
                        log.warning("retired sessions ended: %d workers in use", self.count)
                    continue
                log.error("collector worker %d exited (code %s); starting it again",
                          i, proc.returncode)  # fmt: skip
                self._spawn(i)
        self.stop()

    def stop(self, drain_timeout: float = 10.0) -> None:
        """SIGTERM each worker (they drain within their budget), then stop the rollups."""
        self._stopping.set()
        procs = [p for p in self._procs if p is not None]
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        if self.local is not None:
            self.local.stop(drain_timeout)
        deadline = time.monotonic() + drain_timeout + 10
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("collector worker (pid %d) did not stop; killing it", proc.pid)
                proc.kill()
                proc.wait()
        self.periods.stop()
        if self.rollups is not None:
            self.rollups.stop()
        if self.health is not None:
            self.health.stop()
        self.http.close()
        self.writer.close()
        self.reader.close()

    # --- /metrics and /healthz ------------------------------------------------------------

    def _get(self, index: int, path: str) -> httpx.Response | None:
        port = self._ports[index]
        if port is None:
            return None
        try:
            return self.http.get(f"http://127.0.0.1:{port}{path}")
        except httpx.HTTPError:
            return None

    def exposition(self) -> bytes:
        texts = [generate_latest(self.metrics.registry).decode()]
        if self.local is not None:
            texts.append(generate_latest(self.local.metrics.registry).decode())
        for i in range(len(self._procs)):
            response = self._get(i, "/metrics")
            if response is not None and response.status_code == 200:
                texts.append(response.text)
        return summed(texts)

    def problems(self) -> list[str]:
        out = [f"worker 0: {p}" for p in self.local.problems()] if self.local is not None else []
        for i, proc in enumerate(self._procs):
            if i == 0 or (proc is None and i >= self.count):
                continue  # worker 0 is this process; retired
            if proc is None or proc.poll() is not None:
                out.append(f"worker {i} not running")
                continue
            response = self._get(i, "/healthz")
            if response is None:
                out.append(f"worker {i} not answering")
            elif response.status_code != 200:
                out += [f"worker {i}: {line}" for line in response.text.splitlines()]
        return out


def run_collector(
    config: Config, workers: int | None, verbose: bool, stop: threading.Event
) -> None:
    """The collector until ``stop``: one process, or a parent and its workers when more
    than one is asked for (also when sessions of more workers remain to be retired)."""
    count = workers or default_workers()
    if count > 1 or workers_in_use(config) > 1:
        parent = Workers(config, count, verbose=verbose)
        parent.start()
        parent.supervise(stop)
        return

    from labmeter.influx import InfluxV1, make_writer

    writer, reader = make_writer(config.influx), InfluxV1(config.influx)  # reads: InfluxQL
    service = Collector(config, writer, reader)
    gc.freeze()  # startup objects live forever: full collections in a drain skip them
    service.start()
    stop.wait()
    service.stop()
    writer.close()
    reader.close()
