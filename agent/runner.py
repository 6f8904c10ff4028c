"""The agent's loop: poll the source, feed the meter, publish each sample it cuts."""

from __future__ import annotations

import logging
import threading
import time

from agent.meter import UNKNOWN, Meter
from agent.publisher import Publisher
from agent.sources import SOURCES
from labmeter import __version__
from labmeter.config import Config
from labmeter.contract import Event, Topic
from labmeter.errors import ConfigError

log = logging.getLogger(__name__)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def run_agent(config: Config, stop: threading.Event) -> None:
    """Run until ``stop`` is set; the last partial interval is published on the way out."""
    cfg = config.agent
    cfg.check()
    if cfg.source not in SOURCES:
        raise ConfigError(
            "agent.source", f"unknown source {cfg.source!r} (known: {', '.join(SOURCES)})"
        )
    source = SOURCES[cfg.source](cfg)
    topic = Topic(cfg.site, cfg.lab, cfg.device, "sample")
    publisher = Publisher(config.mqtt, topic, kind=cfg.kind, interval_s=cfg.interval_s)
    publisher.connect()
    start = now_ms()
    meter = Meter(cfg.interval_s, start, kind=cfg.kind)
    publisher.event(
        Event(
            start,
            0,
            "agent_start",
            data={
                "version": __version__,
                "source": cfg.source,
                "idle_threshold_s": cfg.idle_threshold_s,
            },
        )
    )
    poll_ms = int(cfg.poll_s * 1000)
    try:
        while not stop.wait(cfg.poll_s - (time.time() % cfg.poll_s)):
            reading = source.poll()
            t = now_ms()
            # A poll that came far too late (suspend, stall): after one poll period the
            # previous reading is no longer known to hold, so that time stays unknown.
            if t - meter.accounted_until > 3 * poll_ms:
                for sample in meter.observe(meter.accounted_until + poll_ms, UNKNOWN):
                    publisher.sample(sample)
            for sample in meter.observe(t, reading):
                publisher.sample(sample)
    finally:
        for sample in meter.flush(now_ms()):
            publisher.sample(sample)
        source.close()
        publisher.close()
