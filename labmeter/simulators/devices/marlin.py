"""A Marlin 2.x printer printing from SD: M105, M155 S, M27, M27 S, busy keepalives, resets.

Its truth is its own condition: ``idle``, ``heating`` (targets set, no print), ``printing``,
``paused`` (print paused mid-file), ``halted`` (kill() after a fatal error).
``time_scale`` shrinks Marlin's whole-second auto-report periods so a test runs in seconds.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from labmeter.simulators.devices.base import Device

BOOT_S = 0.3


class MarlinDevice(Device):
    def __init__(self, path: Path | None = None, time_scale: float = 0.1, seed: int = 1) -> None:
        super().__init__(path, name="marlin")
        self.time_scale = time_scale
        self.rng = random.Random(seed)
        self.commands: list[str] = []
        self._line = bytearray()
        self._temp_every = 0.0
        self._sd_every = 0.0
        self._next_temp = 0.0
        self._next_sd = 0.0
        self._busy_until = 0.0
        self._next_busy = 0.0
        self._held: list[str] = []
        self._booting_until = 0.0
        self.position = 0
        self.total = 0
        self.rate = 20000  # bytes per second of print
        self._last_tick = time.monotonic()
        self._state = "idle"
        self.targets = (0.0, 0.0)

    # --- protocol ------------------------------------------------------------------------

    def on_bytes(self, data: bytes) -> None:
        for byte in data:
            if byte in b"\r\n":
                if self._line:
                    self._command(self._line.decode("ascii", errors="replace").strip())
                self._line.clear()
            else:
                self._line.append(byte)

    def _command(self, line: str) -> None:
        if self._booting_until or not line:
            return  # lost: the board is still booting
        self.commands.append(line)
        if self._busy_until:
            self._held.append(line)  # queued behind the long command, as Marlin does
        else:
            self._execute(line)

    def _execute(self, line: str) -> None:
        word, *args = line.split()
        s_arg = next((int(a[1:]) for a in args if a.startswith("S") and a[1:].isdigit()), None)
        if word == "M155" and s_arg is not None:
            self._temp_every = s_arg * self.time_scale
        elif word == "M27" and s_arg is not None:
            self._sd_every = s_arg * self.time_scale
        elif word == "M27":
            self.send(self._sd_line())
        if word == "M105":
            self.send(b"ok " + self._temps() + b"\n")
        else:
            self.send(b"ok\n")

    def _temps(self) -> bytes:
        hot_t, bed_t = self.targets
        hot, bed = (hot_t or 24.1), (bed_t or 23.8)
        return f"T:{hot:.2f} /{hot_t:.2f} B:{bed:.2f} /{bed_t:.2f} @:0 B@:0".encode()

    def _sd_line(self) -> bytes:
        if self._state == "printing":
            return f"SD printing byte {self.position}/{self.total}\n".encode()
        return b"Not SD printing\n"

    def tick(self, now: float) -> None:
        dt, self._last_tick = now - self._last_tick, now
        if self._booting_until:
            if now >= self._booting_until:
                self._booting_until = 0.0
                self.send(b"start\necho:Marlin 2.1.2.1\necho: Last Updated: 2023-07-02\n")
                self._temp_every = self._sd_every = 0.0
                self._record()
            return
        if self._state == "printing":
            self.position = min(self.total, self.position + int(self.rate * dt))
        if self._busy_until:
            if now >= self._busy_until:
                self._busy_until = 0.0  # the long command (from the SD file) is done
                held, self._held = self._held, []
                for line in held:
                    self._execute(line)
            elif now >= self._next_busy:
                self._next_busy = now + 2 * self.time_scale
                self.send(b"echo:busy: processing\n")
            return  # a long command blocks the auto-reports too
        if self._temp_every and now >= self._next_temp:
            self._next_temp = now + self._temp_every
            self.send(b" " + self._temps() + b"\n")
        if self._sd_every and now >= self._next_sd:
            self._next_sd = now + self._sd_every
            self.send(self._sd_line())

    def observable(self) -> bool:
        return super().observable() and not self._booting_until

    # --- timeline actions ----------------------------------------------------------------

    def heat(self, hotend: float = 210.0, bed: float = 60.0) -> None:
        with self._lock:
            self.targets = (hotend, bed)
            self.set_state("heating" if self._state == "idle" else self._state)

    def start_print(self, total: int = 500_000) -> None:
        with self._lock:
            self.position, self.total = 0, total
            self.send(f"echo:Now fresh file: job.gcode\nFile opened: job.gcode Size: {total}\n"
                      "File selected\n".encode())  # fmt: skip
            self.set_state("printing")

    def pause(self) -> None:
        self.set_state("paused")

    def resume(self) -> None:
        self.set_state("printing")

    def finish(self) -> None:
        with self._lock:
            self.position = self.total
            self.send(b"Done printing file\n")
            self.targets = (0.0, 0.0)
            self.set_state("idle")

    def busy(self, seconds: float) -> None:
        """A long blocking command (M109 wait, G28): only ``busy:`` lines until it is done."""
        with self._lock:
            self._busy_until = time.monotonic() + seconds
            self._next_busy = 0.0

    def halt(self) -> None:
        with self._lock:
            self.send(b"Error:Thermal Runaway, system stopped! Heater_ID: 0\n"
                      b"Error:Printer halted. kill() called!\n")  # fmt: skip
            self.set_state("halted")

    def reset(self) -> None:
        """Reset button or brown-out: silent while booting, then ``start``; the print is lost."""
        with self._lock:
            self._booting_until = time.monotonic() + BOOT_S
            self._busy_until = 0.0
            self._held.clear()
            self.targets = (0.0, 0.0)
            self._state = "idle"
            self._record()

    def garbage(self, n: int = 30) -> None:
        with self._lock:
            noise = bytes(self.rng.randrange(128, 256) for _ in range(n))
            self.send(noise + b"\n")
