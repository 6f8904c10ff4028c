"""GRBL / grblHAL source: asks for a status report at most 5 times a second on one connection.

The reader thread sends ``?`` (grblHAL: the single byte 0x80, which is never mistaken for
program text) and keeps the last report. A state is only as good as its age: with no report
for ``status_timeout_s`` the state is unknown. The start-up banner means the controller was
reset (power, USB, DTR, Ctrl-X): the job in progress is over and the state is unknown until
the next report.
"""

from __future__ import annotations

import threading
import time

from labmeter.agent.meter import Reading
from labmeter.agent.sources import SourceEvent
from labmeter.agent.sources.grbl.protocol import Alarm, Banner, Garbage, Status, parse_line
from labmeter.agent.sources.options import Options
from labmeter.agent.sources.serial_link import LineBuffer, SerialLink
from labmeter.agent.sources.stamp import EventLog, stamped
from labmeter.config import AgentConfig

QUERY = {"grbl": b"?", "grblhal": b"\x80"}
MAX_HZ = 5.0  # GRBL's own advice: status queries above 5 Hz cost planner time


class GrblSource:
    def __init__(self, config: AgentConfig) -> None:
        opts = Options(config.options)
        opts.reject_unknown(
            {"port", "baudrate", "variant", "status_hz", "status_timeout_s", "reconnect_s"}
        )
        port = opts.string("port")
        variant = opts.string("variant", "grbl", choices=tuple(QUERY))
        self.query = QUERY[variant]
        self.period_s = 1.0 / opts.number("status_hz", MAX_HZ, minimum=0.1, maximum=MAX_HZ)
        self.status_timeout_s = opts.number(
            "status_timeout_s", max(1.0, 3 * self.period_s), minimum=self.period_s
        )
        self._lock = threading.Lock()
        self._lines = LineBuffer()
        self._status: Status | None = None
        self._status_t = 0.0
        self._last_query = 0.0
        self._in_job = False
        self._alarm_seen = False  # an ALARM:N line already announced the current alarm
        self._events = EventLog()
        self.counters = {"garbage_lines": 0, "resets": 0, "status_reports": 0, "disconnects": 0}
        self.link = SerialLink(
            port,
            opts.integer("baudrate", 115200, minimum=300),
            on_data=self._on_data,
            on_tick=self._on_tick,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            reconnect_s=opts.number("reconnect_s", 1.0, minimum=0.05),
            tick_s=0.1,  # half the fastest query period
            name="grbl",
        )
        self.link.start()

    def poll(self) -> Reading:
        now = time.monotonic()
        with self._lock:
            status = self._status
            fresh = status is not None and now - self._status_t <= self.status_timeout_s
            metrics = {f"serial_{k}": float(v) for k, v in self.counters.items()}
            metrics["serial_overlong_lines"] = float(self._lines.overflows)
        if not fresh or status is None or not self.link.connected:
            return Reading(state=None, metrics=metrics)
        if status.feed is not None:
            metrics["feed"] = status.feed
        if status.spindle is not None:
            metrics["spindle"] = status.spindle
        return Reading(state=status.state, metrics=metrics)

    def drain_events(self) -> list[SourceEvent]:
        return self._events.drain()

    def close(self) -> None:
        self.link.close()

    # --- reader thread -------------------------------------------------------------------

    def _on_connect(self, now: float) -> None:
        self._lines.clear()
        self._last_query = 0.0

    def _on_disconnect(self, now: float, reason: str) -> None:
        with self._lock:
            self.counters["disconnects"] += 1
            self._status = None
            self._events.add(stamped("source_error", {"reason": "disconnected"}))

    def _on_tick(self, now: float) -> None:
        if now - self._last_query >= self.period_s:
            self._last_query = now
            self.link.write(self.query)

    def _on_data(self, data: bytes, now: float) -> None:
        for line in self._lines.feed(data):
            if line.strip():
                self._handle(line, now)

    def _handle(self, line: str, now: float) -> None:
        msg = parse_line(line)
        with self._lock:
            if isinstance(msg, Status):
                self.counters["status_reports"] += 1
                self._on_status(msg)
                self._status, self._status_t = msg, now
            elif isinstance(msg, Banner):
                self.counters["resets"] += 1
                self._status = None  # unknown until the controller reports again
                self._events.add(
                    stamped("source_error", {"reason": "reset", "firmware": msg.firmware})
                )
                self._end_job("reset")
            elif isinstance(msg, Alarm):
                self._alarm_seen = True
                self._events.add(stamped("alarm", {"code": msg.code}))
                self._end_job("alarm")
            elif isinstance(msg, Garbage):
                self.counters["garbage_lines"] += 1

    def _on_status(self, status: Status) -> None:
        previous = self._status.machine_state if self._status is not None else None
        if status.machine_state == "Alarm":
            if previous != "Alarm" and not self._alarm_seen:
                self._events.add(stamped("alarm", {}))
            self._alarm_seen = True
            self._end_job("alarm")
            return
        self._alarm_seen = False
        if status.machine_state == "Run" and not self._in_job:
            self._in_job = True
            self._events.add(stamped("job_start", {}))
        elif status.machine_state in ("Idle", "Sleep"):
            self._end_job("done")

    def _end_job(self, reason: str) -> None:
        if self._in_job:
            self._in_job = False
            self._events.add(stamped("job_end", {"reason": reason}))
