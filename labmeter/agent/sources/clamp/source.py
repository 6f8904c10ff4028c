"""Current-clamp source: a sensor board streams one reading per line; silence is unknown."""

from __future__ import annotations

import threading
import time

from labmeter.agent.meter import Reading
from labmeter.agent.sources import SourceEvent
from labmeter.agent.sources.clamp.protocol import Classifier, Thresholds, parse_amps
from labmeter.agent.sources.options import Options
from labmeter.agent.sources.serial_link import LineBuffer, SerialLink
from labmeter.agent.sources.stamp import EventLog, JobEdges, stamped
from labmeter.config import AgentConfig
from labmeter.errors import ConfigError


class ClampSource:
    def __init__(self, config: AgentConfig) -> None:
        opts = Options(config.options)
        opts.reject_unknown(
            {"port", "baudrate", "off_below_a", "run_above_a", "hysteresis_a", "min_dwell_s",
             "timeout_s", "reconnect_s"}
        )  # fmt: skip
        port = opts.string("port")
        try:
            thresholds = Thresholds(
                off_below_a=opts.number("off_below_a", minimum=0),
                run_above_a=opts.number("run_above_a", minimum=0),
                hysteresis_a=opts.number("hysteresis_a", 0.0, minimum=0),
                min_dwell_s=opts.number("min_dwell_s", 0.0, minimum=0),
            )
        except ValueError as exc:
            raise ConfigError("agent.options.run_above_a", str(exc)) from exc
        self.timeout_s = opts.number("timeout_s", 5.0, minimum=0.1)
        self._lock = threading.Lock()
        self._lines = LineBuffer(max_line=64)
        self._classifier = Classifier(thresholds)
        self._amps: float | None = None
        self._last_t = 0.0
        self._events = EventLog()
        self._jobs = JobEdges(self._events)
        self.counters = {"garbage_lines": 0, "readings": 0, "disconnects": 0}
        self.link = SerialLink(
            port,
            opts.integer("baudrate", 9600, minimum=300),
            on_data=self._on_data,
            on_tick=self._on_tick,
            on_connect=lambda now: self._lines.clear(),
            on_disconnect=self._on_disconnect,
            reconnect_s=opts.number("reconnect_s", 1.0, minimum=0.05),
            tick_s=0.25,
            name="clamp",
        )
        self.link.start()

    def poll(self) -> Reading:
        with self._lock:
            metrics = {f"serial_{k}": float(v) for k, v in self.counters.items()}
            metrics["serial_overlong_lines"] = float(self._lines.overflows)
            fresh = time.monotonic() - self._last_t <= self.timeout_s
            state = self._classifier.state if fresh and self.link.connected else None
            if state is not None and self._amps is not None:
                metrics["current_a"] = self._amps
        return Reading(state=state, metrics=metrics)

    def drain_events(self) -> list[SourceEvent]:
        return self._events.drain()

    def close(self) -> None:
        self.link.close()

    def _on_disconnect(self, now: float, reason: str) -> None:
        with self._lock:
            self.counters["disconnects"] += 1
            self._classifier.reset()
            self._events.add(stamped("source_error", {"reason": "disconnected"}))

    def _on_tick(self, now: float) -> None:
        with self._lock:
            if self._classifier.state is not None and now - self._last_t > self.timeout_s:
                self._classifier.reset()  # a gap: the next reading is taken without dwell

    def _on_data(self, data: bytes, now: float) -> None:
        with self._lock:
            for line in self._lines.feed(data):
                if not line.strip():
                    continue
                amps = parse_amps(line)
                if amps is None:
                    self.counters["garbage_lines"] += 1
                    continue
                self.counters["readings"] += 1
                self._amps, self._last_t = amps, now
                state = self._classifier.update(amps, now)
                self._jobs.update(state)
