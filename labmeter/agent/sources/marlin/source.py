"""Marlin source: temperatures and SD progress by auto-report, with polling as the fallback.

Commands go one at a time and wait for their ``ok`` (Marlin's buffer is small and a host
that floods it loses lines). Like OctoPrint, silence is judged against a communication
timeout, and ``busy:`` keepalives, which Marlin prints every couple of seconds while a long
command (heating, homing) holds the ``ok`` back, count as signs of life and extend it. With
no line at all for ``timeout_s`` the state is unknown.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from labmeter.agent.meter import Reading
from labmeter.agent.sources import SourceEvent
from labmeter.agent.sources.marlin.protocol import (
    Busy,
    DonePrinting,
    Garbage,
    MarlinError,
    NotSdPrinting,
    Ok,
    SdProgress,
    Start,
    Temperatures,
    parse_line,
)
from labmeter.agent.sources.options import Options
from labmeter.agent.sources.serial_link import LineBuffer, SerialLink
from labmeter.agent.sources.stamp import EventLog, stamped
from labmeter.config import AgentConfig


class MarlinSource:
    def __init__(self, config: AgentConfig) -> None:
        opts = Options(config.options)
        opts.reject_unknown(
            {"port", "baudrate", "autoreport_s", "query_s", "timeout_s", "paused_max_s",
             "reconnect_s"}
        )  # fmt: skip
        port = opts.string("port")
        # M155 S<n> / M27 S<n> take whole seconds; 0 turns auto-reports off (polling only).
        self.autoreport_s = opts.integer("autoreport_s", 1, minimum=0, maximum=60)
        self.query_s = opts.number("query_s", 1.0, minimum=0.05)
        self.timeout_s = opts.number("timeout_s", 5.0, minimum=2 * self.query_s)
        self.paused_max_s = opts.number("paused_max_s", 3600.0, minimum=0.1)
        self._lock = threading.Lock()
        self._lines = LineBuffer()
        self._queue: deque[str] = deque()
        self._pending: str | None = None
        self._pending_t = 0.0
        self._last_line = 0.0
        self._known = False  # a report has arrived since (re)connect or reset
        self._temps: Temperatures | None = None
        self._temps_t = 0.0
        self._sd_printing = False
        self._sd: SdProgress | None = None
        self._sd_t = 0.0
        self._in_job = False
        self._paused_since: float | None = None
        self._busy_t = 0.0  # last busy keepalive of any kind
        self._user_wait_t = -1e9  # last "busy: paused for user"
        self._halted = False
        self._events = EventLog()
        self.counters = {
            "garbage_lines": 0,
            "resets": 0,
            "timeouts": 0,
            "busy": 0,
            "errors": 0,
            "disconnects": 0,
        }
        self.link = SerialLink(
            port,
            opts.integer("baudrate", 115200, minimum=300),
            on_data=self._on_data,
            on_tick=self._on_tick,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            reconnect_s=opts.number("reconnect_s", 1.0, minimum=0.05),
            tick_s=0.1,
            name="marlin",
        )
        self.link.start()

    def poll(self) -> Reading:
        now = time.monotonic()
        with self._lock:
            metrics = {f"serial_{k}": float(v) for k, v in self.counters.items()}
            metrics["serial_overlong_lines"] = float(self._lines.overflows)
            if self._temps is not None:
                for name in ("hotend", "hotend_target", "bed", "bed_target"):
                    value = getattr(self._temps, name)
                    if value is not None:
                        metrics[name] = value
            if self._sd is not None and self._sd.total:
                metrics["progress_pct"] = round(100 * self._sd.position / self._sd.total, 2)
            alive = self.link.connected and now - self._last_line <= self.timeout_s
            if not alive or not self._known:
                return Reading(state=None, metrics=metrics)
            return Reading(state=self._state(now), metrics=metrics)

    def _state(self, now: float) -> str:
        if self._halted:
            return "alarm"
        if self._in_job and now - self._user_wait_t <= self.timeout_s:
            return "paused"  # M0/M600: waiting for the operator mid-print
        if self._sd_printing:
            return "in_use"
        if self._in_job:
            return "paused"
        if self._temps is not None and self._temps.heating:
            return "setup"  # preheating, filament load/unload: work on the machine, no job
        return "idle"

    def drain_events(self) -> list[SourceEvent]:
        return self._events.drain()

    def close(self) -> None:
        self.link.close()

    # --- reader thread -------------------------------------------------------------------

    def _enable_autoreports(self) -> None:
        self._queue.clear()
        self._pending = None
        if self.autoreport_s:
            self._queue.extend([f"M155 S{self.autoreport_s}", f"M27 S{self.autoreport_s}"])

    def _on_connect(self, now: float) -> None:
        with self._lock:
            self._lines.clear()
            self._known = False
            self._last_line = now  # the timeout runs from the moment the port opened
            self._enable_autoreports()

    def _on_disconnect(self, now: float, reason: str) -> None:
        with self._lock:
            self.counters["disconnects"] += 1
            self._known = False
            self._events.add(stamped("source_error", {"reason": "disconnected"}))

    def _on_tick(self, now: float) -> None:
        with self._lock:
            paused = self._paused_since
            if self._in_job and paused is not None and now - paused > self.paused_max_s:
                self._end_job("abandoned")  # stopped from the printer's own menu
            if self._pending is not None:
                # As OctoPrint: a command's timeout runs from when it was sent and only a
                # busy keepalive extends it (auto-reports flowing do not answer a command).
                if now - max(self._pending_t, self._busy_t) < self.timeout_s:
                    return
                self.counters["timeouts"] += 1
                self._pending = None  # lost or never answered: go on with the next query
            if not self._queue:
                if now - self._temps_t >= 2 * self.query_s:
                    self._queue.append("M105")
                if now - self._sd_t >= 2 * self.query_s:
                    self._queue.append("M27")
            if self._queue and now - self._pending_t >= self.query_s / 2:
                self._pending = self._queue.popleft()
                self._pending_t = now
                command = self._pending
            else:
                return
        self.link.write(command.encode() + b"\n")

    def _on_data(self, data: bytes, now: float) -> None:
        lines = self._lines.feed(data)
        with self._lock:
            for line in lines:
                if line.strip():
                    self._handle(line, now)

    def _handle(self, line: str, now: float) -> None:
        msg = parse_line(line)
        if isinstance(msg, Garbage):
            self.counters["garbage_lines"] += 1
            return  # noise proves nothing about the printer: it does not count as alive
        self._last_line = now
        if isinstance(msg, Ok):
            self._pending = None
            if msg.temperatures is not None:
                self._on_temps(msg.temperatures, now)
        elif isinstance(msg, Temperatures):
            self._on_temps(msg, now)
        elif isinstance(msg, SdProgress):
            self._on_sd(msg, now)
        elif isinstance(msg, NotSdPrinting):
            self._sd_printing, self._sd_t, self._known = False, now, True
            if self._in_job and self._paused_since is None:
                self._paused_since = now
        elif isinstance(msg, Busy):
            self.counters["busy"] += 1
            self._busy_t = now
            if "paused" in msg.reason:
                self._user_wait_t = now
        elif isinstance(msg, Start):
            self.counters["resets"] += 1
            self._known = False
            self._halted = False
            self._sd_printing = False
            self._temps = None
            self._events.add(stamped("source_error", {"reason": "reset"}))
            self._end_job("reset")
            self._enable_autoreports()  # a reboot forgets M155/M27 S
        elif isinstance(msg, DonePrinting):
            self._sd_printing = False
            self._end_job("done")
        elif isinstance(msg, MarlinError):
            self.counters["errors"] += 1
            if msg.fatal and not self._halted:
                self._halted = True
                self._events.add(stamped("alarm", {"message": msg.text[:200]}))
                self._end_job("alarm")

    def _on_temps(self, temps: Temperatures, now: float) -> None:
        self._temps, self._temps_t = temps, now
        self._known = True

    def _on_sd(self, sd: SdProgress, now: float) -> None:
        self._sd, self._sd_t, self._known = sd, now, True
        self._sd_printing = True
        self._paused_since = None
        if not self._in_job:
            self._in_job = True
            self._events.add(stamped("job_start", {"file_bytes": sd.total}))

    def _end_job(self, reason: str) -> None:
        self._paused_since = None
        if self._in_job:
            self._in_job = False
            self._events.add(stamped("job_end", {"reason": reason}))
