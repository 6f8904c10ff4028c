"""What the networked machine emulators share: a scaled clock, an event loop on its own
thread, and a gate that pulls the network cable.

The emulators (OPC UA, MTConnect, Universal Robots, S7) speak their real protocol on
loopback so that the agent's real client libraries run against them. Each sits behind a
``Gate``: a TCP relay on a fixed loopback port that can cut every connection and refuse new
ones (a cable pulled, a machine switched off at the wall) and open again on the same port,
while the machine behind it keeps its state.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from labmeter.agent.clock import Clock

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ScaledClock:
    """Script time: starts at ``start_ms`` (a pinned moment) and runs ``speed`` times real time,
    so an hour's script plays in seconds and the agent, given ``clock()``, sees its times."""

    start_ms: int
    speed: float = 1.0
    t0: float = field(default_factory=time.monotonic)

    def monotonic(self) -> float:
        """Script seconds since the start."""
        return (time.monotonic() - self.t0) * self.speed

    def wall_ms(self) -> int:
        return self.start_ms + int(self.monotonic() * 1000)

    def clock(self) -> Clock:
        return Clock(wall_ms=self.wall_ms, monotonic=self.monotonic)

    def real_s(self, script_s: float) -> float:
        return script_s / self.speed

    def wait_until(self, script_s: float, stop: threading.Event) -> bool:
        """Sleep until the script's second ``script_s``; True if stopped first."""
        return stop.wait(max(0.0, self.real_s(script_s - self.monotonic())))


class LoopThread:
    """An asyncio loop on a daemon thread; ``call`` runs a coroutine there and waits."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.call(cancel_all(), timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


class Gate:
    """A TCP relay from ``port`` to the emulator's own port; ``cut()`` and ``mend()``."""

    def __init__(self, loop: LoopThread, backend_port: int, port: int | None = None) -> None:
        self.loop = loop
        self.backend_port = backend_port
        self.port = port or free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0

    def open(self) -> None:
        self.loop.call(self._open())

    def cut(self) -> None:
        """Every connection dropped, none accepted: the machine stops answering."""
        self.loop.call(self._cut())

    mend = open

    async def _open(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._relay, "127.0.0.1", self.port, reuse_address=True
            )

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # a reset, not a polite close: as a cable pulled
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.backend_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}
