"""A current-clamp board (SCT-013 + microcontroller) streaming one RMS reading per line.

Its truth is the machine's real state (``off``, ``idle``, ``in_use``); the current it reports
is drawn around a level per state, with noise, in the ``A=3.42`` or the bare format.
"""

from __future__ import annotations

import random
from pathlib import Path

from labmeter.simulators.devices.base import Device

LEVELS_A = {"off": 0.05, "idle": 1.2, "in_use": 7.5}


class ClampDevice(Device):
    def __init__(
        self,
        path: Path | None = None,
        period_s: float = 0.05,
        labelled: bool = True,
        noise_a: float = 0.1,
        seed: int = 1,
    ) -> None:
        super().__init__(path, name="clamp")
        self.period_s = period_s
        self.labelled = labelled
        self.noise_a = noise_a
        self.rng = random.Random(seed)
        self._next = 0.0
        self._state = "off"
        self.spike_a: float | None = None

    def tick(self, now: float) -> None:
        if now < self._next:
            return
        self._next = now + self.period_s
        if self.spike_a is not None:
            amps, self.spike_a = self.spike_a, None
        else:
            level = LEVELS_A[self._state or "off"]
            amps = max(0.0, level + self.rng.uniform(-self.noise_a, self.noise_a))
        self.send((f"A={amps:.2f}" if self.labelled else f"{amps:.3f}").encode() + b"\r\n")

    def spike(self, amps: float) -> None:
        """One reading far from the state's level (inrush): the dwell time must absorb it."""
        with self._lock:
            self.spike_a = amps

    def garbage(self) -> None:
        with self._lock:
            self.send(b"A=\xff\xfe#!\r\nA=3.4.5\r\nERR sensor\r\n")
