"""``parse()`` in a child process, so the collector's MQTT thread only hands messages over.

paho reads, decodes and acks every message in one Python thread; parsing in that thread
too (validation, line protocol) made it hold the GIL for a quarter more per message, and
the collector drained a backlog at ~60 % of a bare paho subscriber on two cores that were
a third idle. A second thread would not help (one GIL); a second process does. Messages
cross the pipe in chunks, so pickling costs a few microseconds a message, not a syscall.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import NamedTuple

from collector.admission import NO_LIMITS, Admission
from collector.convert import parse
from collector.rollups import hour_of
from labmeter.contract import Sample
from labmeter.errors import PayloadRejected

log = logging.getLogger(__name__)

# mid, qos, generation (for the ack), topic, payload, received_ms (for parse)
Raw = tuple[int, int, int, bytes, bytes, int]
ATTEMPTS = 3  # child processes started for one chunk before it is parsed in this process


class Converted(NamedTuple):
    """A chunk's lines, the hours its samples fall in, and its refusals."""

    lines: list[str]
    hours: set[int]
    rejected: list[tuple[int, str, str]]  # index in the chunk, reason, detail


def convert(chunk: list[Raw], admission: Admission = NO_LIMITS) -> Converted:
    """Validate and convert a chunk; ``admission`` refuses closed periods and old data."""
    lines: list[str] = []
    hours: set[int] = set()
    rejected: list[tuple[int, str, str]] = []
    for i, (_mid, _qos, _gen, topic, payload, received_ms) in enumerate(chunk):
        try:
            message, out = parse(topic, payload, received_ms)
            admission.check(message, received_ms)
        except PayloadRejected as exc:
            rejected.append((i, exc.reason, exc.detail))
            continue
        lines.extend(out)
        body = message.payload
        if isinstance(body, Sample):
            hours.add(hour_of(body.start_ms))
    return Converted(lines, hours, rejected)


def _serve(conn: Connection) -> None:
    """The child: convert chunks until the parent closes the pipe."""
    # Signals are the parent's to act on (it drains, then closes the pipe): a Ctrl-C or a
    # SIGTERM to the process group must not kill the child while chunks are in flight.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        try:
            chunk, admission = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(convert(chunk, admission))


class Converter:
    """The child process and its pipe, one chunk at a time; restarted if it dies.

    ``spawn``, not ``fork``: the collector has threads (paho's, the HTTP server's) whose
    locks a forked child would inherit held.
    """

    def __init__(self, on_restart: Callable[[], None] = lambda: None) -> None:
        self._on_restart = on_restart  # a counter: the collector's /metrics shows restarts
        self._ctx = mp.get_context("spawn")
        self._proc: mp.process.BaseProcess | None = None
        self._conn: Connection | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Start a child and wait until it answers: importing takes ~0.5 s, and the first
        messages would otherwise wait for it; a child that cannot start fails here, loudly."""
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=_serve, args=(child,), name="labmeter-collector-convert", daemon=True
        )
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        parent.send(([], NO_LIMITS))
        if not parent.poll(timeout):
            self.close()
            raise TimeoutError(f"converter process did not answer within {timeout:.0f} s")
        parent.recv()

    def __call__(self, chunk: list[Raw], admission: Admission = NO_LIMITS) -> Converted:
        for _ in range(ATTEMPTS):
            try:
                if self._conn is None:
                    self.start()
                assert self._conn is not None
                self._conn.send((chunk, admission))
                result: Converted = self._conn.recv()
                return result
            except (EOFError, OSError) as exc:  # TimeoutError included
                code = self._proc.exitcode if self._proc is not None else None
                log.error("converter process lost (%r, exit code %s); starting another", exc, code)
                self.close()
                self._on_restart()
        # A chunk that kills every child it is given: parse it here rather than stall.
        log.error("converter process died %d times on one chunk; parsing it in-process", ATTEMPTS)
        return convert(chunk, admission)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            self._proc.join(5)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
            self._proc = None
