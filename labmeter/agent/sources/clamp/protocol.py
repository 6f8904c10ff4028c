"""Current-clamp lines and the thresholds that turn amperes into a state, without any I/O.

A reading is one line holding one RMS current in amperes, either labelled (``A=3.42``,
``A: 3.42``, ``I=3.42``) or bare (``3.42``, ``3.42A``): the formats of the common
Arduino/ESP "current sensor to serial" sketches (SCT-013 + EmonLib, ACS712). Anything else,
negative or not finite is garbage.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_LINE = re.compile(r"^(?:[AI]\s*[=:]\s*)?(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*A?$")


def parse_amps(line: str) -> float | None:
    """Amperes on this line, or None if it is not a reading."""
    m = _LINE.match(line.strip())
    if m is None:
        return None
    amps = float(m.group(1))
    return amps if math.isfinite(amps) else None


@dataclass(frozen=True)
class Thresholds:
    """Calibrated per machine: below ``off_below_a`` off, from ``run_above_a`` running.

    ``hysteresis_a`` is how far a reading must go back past a threshold before the state it
    entered is left again (a spindle hovering at the threshold does not flap); ``min_dwell_s``
    is how long a new state must hold before it is taken (a motor's inrush is not a job).
    """

    off_below_a: float
    run_above_a: float
    hysteresis_a: float = 0.0
    min_dwell_s: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.off_below_a < self.run_above_a:
            raise ValueError("need 0 <= off_below_a < run_above_a")
        if self.hysteresis_a < 0 or self.min_dwell_s < 0:
            raise ValueError("hysteresis_a and min_dwell_s must be >= 0")
        if self.off_below_a + self.hysteresis_a > self.run_above_a - self.hysteresis_a:
            raise ValueError("the hysteresis bands overlap: off_below_a + 2*h > run_above_a")


class Classifier:
    """Current -> off / idle / in_use, with hysteresis and a minimum dwell time."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.t = thresholds
        self.state: str | None = None
        self._candidate: str | None = None
        self._candidate_since = 0.0

    def zone(self, amps: float) -> str:
        """The state this reading points to, given the current state (the hysteresis)."""
        t, h = self.t, self.t.hysteresis_a
        run_at = t.run_above_a - h if self.state == "in_use" else t.run_above_a
        off_below = t.off_below_a + h if self.state == "off" else t.off_below_a
        if amps >= run_at:
            return "in_use"
        if amps < off_below:
            return "off"
        return "idle"

    def update(self, amps: float, now: float) -> str:
        zone = self.zone(amps)
        if self.state is None or zone == self.state:
            self.state, self._candidate = zone, None  # the first reading is taken at once
            return zone
        if zone != self._candidate:
            self._candidate, self._candidate_since = zone, now
        if now - self._candidate_since >= self.t.min_dwell_s:
            self.state, self._candidate = zone, None
        return self.state

    def reset(self) -> None:
        """After a gap nothing is known: the next reading starts afresh."""
        self.state = self._candidate = None
