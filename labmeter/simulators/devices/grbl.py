"""A GRBL 1.1 / grblHAL controller: answers real-time status queries, runs a scripted life.

The truth it records is GRBL's own state name (``Run``, ``Hold:0``, ...), so a test can check
the agent's mapping against the table in docs/agent.md rather than against itself.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from labmeter.simulators.devices.base import Device

BANNERS = {
    "grbl": b"\r\nGrbl 1.1h ['$' for help]\r\n",
    "grblhal": b"\r\nGrblHAL 1.1f ['$' or '$HELP' for help]\r\n",
}
BOOT_S = 0.3  # silence while the controller restarts after a reset


class GrblDevice(Device):
    def __init__(self, path: Path | None = None, variant: str = "grbl", seed: int = 1) -> None:
        super().__init__(path, name=variant)
        self.variant = variant
        self.queries = 0
        self.rng = random.Random(seed)
        self._booting_until = 0.0
        self._boot_state = "Idle"
        self._line = bytearray()
        self._state = "Idle"

    def on_bytes(self, data: bytes) -> None:
        for byte in data:
            if byte == ord("?") or (self.variant == "grblhal" and byte == 0x80):
                self.queries += 1
                if not self.booting:
                    self.send(self._report())
            elif byte in b"\r\n":
                if self._line and not self.booting:
                    self.send(b"ok\r\n")
                self._line.clear()
            else:
                self._line.append(byte)

    @property
    def booting(self) -> bool:
        return time.monotonic() < self._booting_until

    def _report(self) -> bytes:
        state = self._state or "Idle"
        feed, speed = (600, 12000) if state == "Run" else (0, 0)
        return f"<{state}|MPos:1.000,2.000,-3.000|FS:{feed},{speed}|Ov:100,100,100>\r\n".encode()

    def tick(self, now: float) -> None:
        if self._booting_until and now >= self._booting_until:
            self._booting_until = 0.0
            self.send(BANNERS[self.variant])
            if self._boot_state == "Alarm":
                self.send(b"[MSG:'$H'|'$X' to unlock]\r\n")
            self._state = self._boot_state
            self._record()

    def observable(self) -> bool:
        return super().observable() and not self._booting_until

    def reset(self, then: str = "Alarm") -> None:
        """Ctrl-X / power glitch: silent while booting, then the banner and ``then``."""
        with self._lock:
            self._booting_until = time.monotonic() + BOOT_S
            self._boot_state = then
            self._record()

    def alarm(self, code: int = 1) -> None:
        with self._lock:
            self.send(f"ALARM:{code}\r\n".encode())
            self.set_state("Alarm")

    def garbage(self, n: int = 40) -> None:
        with self._lock:
            noise = bytes(self.rng.randrange(1, 256) for _ in range(n))
            self.send(noise.replace(b"\n", b"") + b"\r\n")
