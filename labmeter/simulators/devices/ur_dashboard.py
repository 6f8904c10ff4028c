"""A Universal Robots dashboard server (the text protocol of TCP 29999), behind a ``Gate``.

Script steps become the robot's answers: ``idle`` IDLE/STOPPED, ``setup`` a program PLAYING
in MANUAL operational mode (teaching), ``in_use`` PLAYING in AUTOMATIC, ``paused`` PAUSED,
``alarm`` a PROTECTIVE_STOP (the program paused), ``off`` POWER_OFF. ``cb_series`` answers
``get operational mode`` as the older controllers do.
"""

from __future__ import annotations

import asyncio
import contextlib

from labmeter.simulators.devices.network import Gate, LoopThread, free_port

# step -> (robot mode, program state, safety status, operational mode)
SHOWS: dict[str, tuple[str, str, str, str]] = {
    "idle": ("IDLE", "STOPPED", "NORMAL", "AUTOMATIC"),
    "setup": ("RUNNING", "PLAYING", "NORMAL", "MANUAL"),
    "in_use": ("RUNNING", "PLAYING", "NORMAL", "AUTOMATIC"),
    "paused": ("RUNNING", "PAUSED", "NORMAL", "AUTOMATIC"),
    "alarm": ("RUNNING", "PAUSED", "PROTECTIVE_STOP", "AUTOMATIC"),
    "off": ("POWER_OFF", "STOPPED", "NORMAL", "AUTOMATIC"),
}


class URDashboard:
    def __init__(self, cb_series: bool = False, port: int | None = None) -> None:
        self.cb_series = cb_series
        self.state = "idle"
        self.program = "pick_and_place.urp"
        self.questions = 0
        self.loop = LoopThread("sim-ur")
        self._backend = free_port()
        self._server: asyncio.Server | None = None
        self.gate = Gate(self.loop, self._backend, port)

    @property
    def port(self) -> int:
        return self.gate.port

    def start(self) -> URDashboard:
        self.loop.call(self._start())
        self.gate.open()
        return self

    def stop(self) -> None:
        self.gate.cut()
        if self._server is not None:
            self._server.close()
        self.loop.close()

    def apply(self, step: str) -> None:
        if step == "disconnect":
            self.gate.cut()
        elif step == "reconnect":
            self.gate.mend()
        else:
            self.state = step

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self._backend)

    def answer(self, question: str) -> str:
        mode, program, safety, operational = SHOWS[self.state]
        if question == "robotmode":
            return f"Robotmode: {mode}"
        if question == "programState":
            return f"{program} {self.program}"
        if question == "safetystatus":
            return f"Safetystatus: {safety}"
        if question == "get operational mode" and not self.cb_series:
            return operational
        return f"could not understand: '{question}'"

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Connected: Universal Robots Dashboard Server\n")
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while line := await reader.readline():
                self.questions += 1
                writer.write(self.answer(line.decode().strip()).encode() + b"\n")
                await writer.drain()
        writer.close()
