"""What the networked printer emulators share: the printer's condition and an HTTP server.

``PrinterModel`` is the printer itself, driven by a script on a clock the caller owns (the
wall clock, or a test's pinned one): its phase (``idle``, ``heating`` before a job's first
layer, ``printing``, ``paused``, ``error``, ``off`` with its host still up), whether it can be
reached at all, its current job and the history of the jobs it ran. Each emulator renders the
model in its printer's real protocol. ``HttpPrinter`` serves one on a loopback port and can be
cut off (connections refused) and brought back on the same port.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import orjson

PHASES = ("idle", "heating", "printing", "paused", "error", "off")
# The contract's state for each phase, where the protocol can tell it ("off": where the
# printer's host outlives the printer, as OctoPrint and Moonraker do).
TRUTH = {"idle": "idle", "heating": "setup", "printing": "in_use", "paused": "paused",
         "error": "alarm", "off": "off"}  # fmt: skip
# A name as students give them: it must never leave the agent as it is.
JOB_NAME = "supporto_mario_rossi_v3.gcode"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Job:
    name: str
    start_ms: int
    print_ms: int = 0  # time in ``printing``: Klipper's print_duration
    end_ms: int | None = None
    status: str = "in_progress"
    id: int = 1


@dataclass
class PrinterModel:
    clock: Callable[[], int] = now_ms
    job_name: str = JOB_NAME
    phase: str = "idle"
    reachable: bool = True
    job: Job | None = None
    history: list[Job] = field(default_factory=list)
    truth: list[tuple[int, str, bool]] = field(default_factory=list)
    _since: int = 0
    _ids: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._since = self.clock()
        self.truth.append((self._since, self.phase, self.reachable))

    def set(self, phase: str) -> None:
        """The printer goes to ``phase`` now; a job starts with heating or printing and ends
        when the printer goes idle or off (``completed`` from printing, else as it was left)."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}")
        with self._lock:
            now = self._account()
            before, self.phase = self.phase, phase
            if phase in ("heating", "printing") and self.job is None:
                self._ids += 1
                self.job = Job(self.job_name, now, id=self._ids)
                self.history.append(self.job)
            elif phase in ("idle", "off") and self.job is not None:
                self.job.end_ms = now
                self.job.status = {"printing": "completed", "error": "klippy_shutdown",
                                   "off": "klippy_disconnect"}.get(before, "cancelled")  # fmt: skip
                self.job = None
            self.truth.append((now, phase, self.reachable))

    def cut(self, reachable: bool) -> None:
        """The network to the printer goes down or comes back; the printer goes on."""
        with self._lock:
            now = self._account()
            self.reachable = reachable
            self.truth.append((now, self.phase, reachable))

    def print_s(self) -> float:
        """Seconds the current job has printed so far (0 without a job)."""
        with self._lock:
            self._account()
            return self.job.print_ms / 1000 if self.job else 0.0

    def _account(self) -> int:
        now = self.clock()
        if self.job is not None and self.phase == "printing":
            self.job.print_ms += now - self._since
        self._since = now
        return now

    def expected(self, off_seen: bool) -> list[tuple[int, str | None]]:
        """The truth as the contract's states; unreachable is unknown, and so is ``off`` where
        the printer is its own host (``off_seen`` False)."""
        out: list[tuple[int, str | None]] = []
        for t, phase, reachable in self.truth:
            state = TRUTH[phase] if reachable else None
            out.append((t, None if state == "off" and not off_seen else state))
        return out


Reply = tuple[int, dict[str, str], bytes]


def json_reply(body: Any, status: int = 200) -> Reply:
    return status, {"Content-Type": "application/json"}, orjson.dumps(body)


class HttpPrinter:
    """A printer's HTTP API on 127.0.0.1; subclasses answer in ``route``."""

    def __init__(self, model: PrinterModel, port: int = 0) -> None:
        self.model = model
        self.requests = 0
        self.auth_failures = 0
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._open: set[socket.socket] = set()  # kept-alive connections, cut on stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, method: str, path: str, query: dict[str, str], headers: Any) -> Reply:
        raise NotImplementedError

    def start(self) -> Self:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the printers' servers do

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without this, Nagle and the client's
                # delayed ACK hold every answer back 40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                owner._open.add(self.connection)

            def finish(self) -> None:
                owner._open.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def do_GET(self) -> None:
                owner.requests += 1
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                with owner.model._lock:
                    status, headers, body = owner.route("GET", parts.path, query, self.headers)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        self.model.cut(True)
        return self

    def stop(self) -> None:
        """Stop listening: the agent's next request is refused, as with a printer gone."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for conn in list(self._open):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def down(self) -> None:
        self.stop()
        self.model.cut(False)

    def up(self) -> None:
        self.start()


class OwnHost(HttpPrinter):
    """A printer that is its own web server (PrusaLink): switched off, it answers nothing."""

    def apply(self, phase: str) -> None:
        was_off = self.model.phase == "off"
        self.model.set(phase)
        if phase == "off" and not was_off and self.model.reachable:
            self.down()
        elif was_off and phase != "off" and not self.model.reachable:
            self.up()
