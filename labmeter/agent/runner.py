"""The agent: it polls the source, feeds the meter, queues on disk, publishes.

Three interval jobs (``every.py``): ``poll`` (every ``poll_s``: the cheap look at the
device), ``scan`` (every ``scan_s``, for sources with a costly look such as the PC's process
scan) and ``pump`` (every second: hand queued rows to MQTT, delete the ones the collector
confirmed). Samples and events are written to the durable queue before anything is
published, so a crash, a reboot or a broker outage loses nothing that fits the queue's bounds.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from labmeter import __version__
from labmeter.agent.backfill import Filled, Outage, fill_samples
from labmeter.agent.clock import GapDetector, mono_ms, wall_ms
from labmeter.agent.every import Every
from labmeter.agent.meter import UNKNOWN, Meter
from labmeter.agent.publisher import Publisher
from labmeter.agent.queue import DurableQueue
from labmeter.agent.sources import SOURCES, Source, SourceEvent
from labmeter.config import Config
from labmeter.contract import Event, Sample, Topic, encode
from labmeter.errors import ConfigError

log = logging.getLogger(__name__)

PUMP_S = 1.0


def open_queue(config: Config) -> DurableQueue:
    cfg = config.agent
    path = Path(cfg.queue_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return DurableQueue(
        path,
        max_rows=cfg.queue_max_rows,
        max_bytes=int(cfg.queue_max_mb * 1024 * 1024),
        max_age_s=cfg.queue_max_age_days * 86400,
        identity=identity(config),
    )


def identity(config: Config) -> Topic:
    """The device's topic now (channel ``sample``); queued rows keep the one they had."""
    cfg = config.agent
    return Topic(cfg.site, cfg.lab, cfg.device, "sample")


class Agent:
    """One device's agent; ``tick``/``pump`` are public so tests can drive them by hand."""

    def __init__(
        self,
        config: Config,
        source: Source | None = None,
        *,
        clocks: tuple[int, int] | None = None,
    ) -> None:
        """``clocks``: the (wall, monotonic) ms at start, for tests that drive ``tick``."""
        cfg = config.agent
        cfg.check()
        if source is None:
            if cfg.source not in SOURCES:
                raise ConfigError(
                    "agent.source", f"unknown source {cfg.source!r} (known: {', '.join(SOURCES)})"
                )
            source = SOURCES[cfg.source](cfg)
        self.config = config
        self.source = source
        self.queue = open_queue(config)
        self.topic = identity(config)
        self.publisher = Publisher(
            config.mqtt,
            self.topic,
            kind=cfg.kind,
            interval_s=cfg.interval_s,
            resend_s=cfg.resend_s,
            window=cfg.send_window,
        )
        self._poll_ms = int(cfg.poll_s * 1000)
        start, start_mono = clocks or (wall_ms(), mono_ms())
        self.meter = Meter(
            cfg.interval_s,
            start,
            kind=cfg.kind,
            seq=self.queue.counter("sample_seq"),  # seq goes on across restarts
            lookback_s=float(getattr(source, "lookback_s", 0.0)),
        )
        self._gaps = GapDetector(self._poll_ms, start, start_mono)
        # The end of the last sample a previous run queued: up to our start nothing was seen.
        # A source that keeps a job history (``fill_outage``) may fill that time later.
        last_end = self.queue.counter("sample_end_ms")
        fill = getattr(source, "fill_outage", None)
        if fill is not None and 0 < last_end < start:
            fill(Outage(last_end, start))
        self._lock = threading.Lock()  # the meter and the event seq belong to one job at a time
        self._scheduler: Every | None = None
        self._report_id: int | None = None  # the queued, not yet sent eviction report
        self.event(
            SourceEvent(
                "agent_start",
                {
                    "version": __version__,
                    "source": cfg.source,
                    "idle_threshold_s": cfg.idle_threshold_s,
                    "queued": len(self.queue),
                },
                ts_ms=start,
            )
        )

    # --- writing to the queue ----------------------------------------------------------------
    def _samples(self, samples: list[Sample], *, live: bool = True) -> None:
        for sample in samples:
            counters = {"sample_seq": sample.seq + 1}
            if live:  # where the next run's outage begins; fill samples lie before it
                counters["sample_end_ms"] = sample.ts
            self.queue.put(self.topic, sample.ts, encode(sample), counters=counters)
        self.report_evictions()

    def _fill(self, outage: Outage, spans: list[Filled]) -> None:
        """Queue samples for an outage's time that the source's history vouches for."""
        with self._lock:
            cfg = self.config.agent
            samples = fill_samples(spans, outage, cfg.interval_s, cfg.kind, self.meter.seq)
            self.meter.seq += len(samples)
        if samples:
            log.info(
                "filled %.0f s of the outage since %d from the source's history",
                sum(s.observed_s for s in samples),
                outage.start_ms,
            )
        self._samples(samples, live=False)

    def event(self, event: SourceEvent) -> int:
        """Queue one event with the next persisted event ``seq``; return its row id."""
        with self._lock:
            seq = self.queue.counter("event_seq")
            payload = Event(
                event.ts_ms if event.ts_ms is not None else wall_ms(),
                seq,
                event.type,
                category=event.category,
                user=event.user,
                data=event.data,
            )
            return self.queue.put(
                self.topic.with_channel("event"),
                payload.ts,
                encode(payload),
                counters={"event_seq": seq + 1},
            )

    def report_evictions(self) -> None:
        # One unsent report at a time: with a full queue each report evicts a row itself, so
        # a report per poll would crowd out the samples. Later evictions wait in the queue's
        # persisted counters for the next report; ``evicted_total`` is cumulative.
        pending = self._report_id
        if (
            pending is not None
            and pending > self.publisher.handed_upto
            and self.queue.contains(pending)
        ):
            return
        found = self.queue.claim_evictions()
        if found is None:
            return
        log.warning("queue full or too old: %d messages evicted (oldest first)", found.count)
        self._report_id = self.event(
            SourceEvent(
                "queue_eviction",
                {
                    "evicted": found.count,
                    "by_size": found.by_size,
                    "by_age": found.by_age,
                    "oldest_ts": found.oldest_ts,
                    "newest_ts": found.newest_ts,
                    "evicted_total": found.total,
                },
            )
        )

    # --- jobs --------------------------------------------------------------------------------
    def tick(self, wall: int | None = None, mono: int | None = None) -> None:
        """One poll: read the source, account unobserved gaps as unknown, queue what is cut."""
        reading = self.source.poll()
        wall = wall_ms() if wall is None else wall
        mono = mono_ms() if mono is None else mono
        with self._lock:
            gap = self._gaps.check(wall, mono)
            samples: list[Sample] = []
            if gap is not None:
                log.warning("not observed since %d (%s): unknown time", gap.start_ms, gap.reason)
                samples += self.meter.observe(
                    max(gap.start_ms, self.meter.accounted_until), UNKNOWN
                )
            samples += self.meter.observe(wall, reading)
        self._samples(samples)
        drain = getattr(self.source, "drain_events", None)
        if drain is not None:
            for event in drain():
                self.event(event)
        filled = getattr(self.source, "drain_filled", None)
        if filled is not None and (found := filled()) is not None:
            self._fill(*found)

    def scan(self) -> None:
        scan = getattr(self.source, "scan", None)
        if scan is not None:
            scan()

    def pump(self) -> None:
        try:
            self.report_evictions()
            self.publisher.pump(self.queue)
        except Exception:
            log.exception("publishing failed; the rows stay queued")

    def _safe_tick(self) -> None:
        try:
            self.tick()
        except Exception:
            # A broken poll must not stop the agent; the time stays unknown.
            log.exception("poll failed")

    # --- life cycle --------------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.config.agent
        self.publisher.start()
        scheduler = Every()
        jobs: list[tuple[Any, float]] = [(self._safe_tick, cfg.poll_s), (self.pump, PUMP_S)]
        if hasattr(self.source, "scan"):
            self.scan()  # the first poll should already know which apps run
            jobs.append((self.scan, cfg.scan_s))
        for func, every in jobs:
            scheduler.add(func, every)
        scheduler.start()
        self._scheduler = scheduler

    def stop(self, drain_timeout: float = 5.0, *, wall: int | None = None) -> None:
        """Queue the last partial sample, try to deliver the backlog briefly, then disconnect
        (``wall``: the time to account up to, for tests that drive ``tick``)."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
        with self._lock:
            samples = self.meter.flush(wall_ms() if wall is None else wall)
        self._samples(samples)
        if self.publisher.connected.is_set():
            self.publisher.drain(self.queue, drain_timeout)
        self.source.close()
        self.publisher.close(timeout=drain_timeout)
        self.queue.close()


def run_agent(config: Config, stop: threading.Event) -> None:
    """Run until ``stop`` is set; the last partial interval is queued on the way out."""
    agent = Agent(config)
    agent.start()
    try:
        stop.wait()
    finally:
        agent.stop()
