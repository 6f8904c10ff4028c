"""Universal Robots source: the dashboard server (TCP 29999), asked every ``poll_s``.

The dashboard server has no push, so a thread asks its four questions each period on one
long-lived connection (``robotmode``, ``programState``, ``safetystatus``, ``get operational
mode``) and tells the ``Track`` what the answers mean. A connection that closes, or an answer
that does not come within ``request_timeout_s``, makes the robot unobserved from its last
answer on; reconnects back off. A robot that rebooted mid-program is counted from what it
says afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading

from labmeter.agent.clock import REAL_CLOCK, Clock
from labmeter.agent.meter import Reading
from labmeter.agent.sources import SourceEvent
from labmeter.agent.sources.options import Options
from labmeter.agent.sources.reconnect import Backoff
from labmeter.agent.sources.track import Seen, Track
from labmeter.agent.sources.ur.protocol import (
    AnswerError,
    Robot,
    operational_mode,
    program_state,
    robot_mode,
    safety_status,
)
from labmeter.config import AgentConfig

log = logging.getLogger(__name__)

PORT = 29999
MAX_LINE = 1024


class URSource:
    def __init__(self, config: AgentConfig, clock: Clock = REAL_CLOCK) -> None:
        opts = Options(config.options)
        opts.reject_unknown({"host", "port", "poll_s", "timeout_s", "request_timeout_s",
                             "reconnect_s", "reconnect_max_s"})  # fmt: skip
        self.host = opts.string("host")
        self.port = opts.integer("port", PORT, minimum=1, maximum=65535)
        self.poll_s = opts.number("poll_s", 1.0, minimum=0.05)
        self.request_timeout_s = opts.number("request_timeout_s", 3.0, minimum=0.05)
        timeout = opts.number("timeout_s", 2 * self.poll_s + self.request_timeout_s, minimum=0.05)
        self.track = Track(clock, timeout)
        self.lookback_s = timeout + 2 * config.poll_s + 1.0
        self._backoff = Backoff(opts.number("reconnect_s", 1.0, minimum=0.01),
                                opts.number("reconnect_max_s", 60.0, minimum=0.01))  # fmt: skip
        self.counters = {"connects": 0, "errors": 0, "rounds": 0}
        self.last_error = ""
        self.robot: Robot | None = None
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="labmeter-ur", daemon=True)
        self._thread.start()

    def poll(self) -> Reading:
        return self.track.reading({f"ur_{k}": float(v) for k, v in self.counters.items()})

    def drain_events(self) -> list[SourceEvent]:
        return self.track.drain_events()

    def close(self) -> None:
        self._stop.set()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=10)

    # --- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with socket.create_connection((self.host, self.port), self.request_timeout_s) as s:
                    self._sock = s
                    self.counters["connects"] += 1
                    self._session(s.makefile("rb"), s)
            except (OSError, AnswerError) as exc:
                if not self._stop.is_set():
                    self._failed(exc)
            finally:
                self._sock = None
            self.track.lost("disconnected")
            self._stop.wait(self._backoff.delay())

    def _failed(self, exc: BaseException) -> None:
        self.counters["errors"] += 1
        reason = f"{type(exc).__name__}: {exc}"[:300]
        if reason != self.last_error:
            log.warning("UR dashboard %s:%d: %s", self.host, self.port, reason)
            self.last_error = reason

    def _line(self, reader: object) -> str:
        raw = reader.readline(MAX_LINE)  # type: ignore[attr-defined]
        if not raw:
            raise ConnectionError("closed by the robot")
        if not raw.endswith(b"\n"):
            raise AnswerError("an answer longer than a line")
        return str(raw.decode("utf-8", errors="replace")).strip()

    def _ask(self, reader: object, sock: socket.socket, question: str) -> str:
        sock.sendall(question.encode() + b"\n")
        return self._line(reader)

    def _session(self, reader: object, sock: socket.socket) -> None:
        greeting = self._line(reader)  # "Connected: Universal Robots Dashboard Server"
        if not greeting.startswith("Connected"):
            raise AnswerError(f"not a dashboard server: {greeting[:60]!r}")
        first = True
        while first or not self._stop.wait(self.poll_s):
            first = False
            mode = robot_mode(self._ask(reader, sock, "robotmode"))
            state, program = program_state(self._ask(reader, sock, "programState"))
            safety = safety_status(self._ask(reader, sock, "safetystatus"))
            operational = operational_mode(self._ask(reader, sock, "get operational mode"))
            self.robot = Robot(mode, state, safety, operational, program)
            self.counters["rounds"] += 1
            contract, shown = self.robot.state()
            self.track.report(Seen(contract, shown, program))
            self._backoff.reset()
            self.last_error = ""
