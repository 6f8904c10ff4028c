"""Marlin's serial replies, parsed without any I/O.

Lines that matter: ``ok`` (optionally carrying an M105 reply), temperature reports
(``T:210.0 /210.0 B:60.0 /60.0 @:127 B@:0``, from M105 or the M155 auto-report), SD progress
(``SD printing byte 1234/5678`` / ``Not SD printing``, from M27 or its auto-report ``M27 S``),
``busy: processing`` keepalives while a long command runs, ``start`` after every reset,
``Done printing file``, and ``Error:`` lines, some of which halt the printer.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_TEMP = re.compile(r"(?<![@\w])([TBC]\d?):\s*(-?\d+(?:\.\d+)?)\s*(?:/\s*(-?\d+(?:\.\d+)?))?")
_SD = re.compile(r"^SD printing byte (\d+)/(\d+)$")
_BUSY = re.compile(r"^(?:echo:)?busy:\s*(.*)$")
# Errors after which Marlin has called kill() or stopped heating: it needs a reset.
_FATAL = ("halted", "kill", "thermal runaway", "mintemp", "maxtemp", "heating failed", "stopped")


@dataclass(frozen=True)
class Temperatures:
    """Current and target temperatures; the first hotend (T or T0) and the bed."""

    hotend: float | None
    hotend_target: float | None
    bed: float | None
    bed_target: float | None

    @property
    def heating(self) -> bool:
        return any(t is not None and t > 0 for t in (self.hotend_target, self.bed_target))


@dataclass(frozen=True)
class Ok:
    temperatures: Temperatures | None = None


@dataclass(frozen=True)
class SdProgress:
    position: int
    total: int


@dataclass(frozen=True)
class NotSdPrinting:
    pass


@dataclass(frozen=True)
class Busy:
    reason: str  # "processing", "paused for user", "paused for input"


@dataclass(frozen=True)
class Start:
    """``start``: the board has (re)booted; a print in progress is lost."""


@dataclass(frozen=True)
class DonePrinting:
    pass


@dataclass(frozen=True)
class MarlinError:
    text: str
    fatal: bool


@dataclass(frozen=True)
class Info:
    """``echo:``, ``//action:``, ``File opened``, firmware info: well-formed, changes nothing."""

    text: str


@dataclass(frozen=True)
class Garbage:
    text: str


Message = (
    Temperatures
    | Ok
    | SdProgress
    | NotSdPrinting
    | Busy
    | Start
    | DonePrinting
    | MarlinError
    | Info
    | Garbage
)


def parse_temperatures(text: str) -> Temperatures | None:
    found: dict[str, tuple[float, float | None]] = {}
    for name, current, target in _TEMP.findall(text):
        values = (float(current), float(target) if target else None)
        if not all(v is None or math.isfinite(v) for v in values):
            return None  # hundreds of digits of noise: not a report
        found.setdefault(name, values)
    hotend = found.get("T") or found.get("T0")
    bed = found.get("B")
    if hotend is None and bed is None:
        return None
    return Temperatures(
        hotend[0] if hotend else None,
        hotend[1] if hotend else None,
        bed[0] if bed else None,
        bed[1] if bed else None,
    )


def parse_line(line: str) -> Message:
    """Classify one line (without its line ending)."""
    text = line.strip()
    if not text.isprintable():
        return Garbage(text)
    if text == "ok" or text.startswith("ok "):
        return Ok(parse_temperatures(text[3:]))
    if text.startswith(("T:", "T0:", "B:")):
        temps = parse_temperatures(text)
        return temps if temps is not None else Garbage(text)
    if m := _SD.match(text):
        position, total = int(m.group(1)), int(m.group(2))
        return SdProgress(position, total) if position <= total else Garbage(text)
    if text == "Not SD printing":
        return NotSdPrinting()
    if m := _BUSY.match(text):
        return Busy(m.group(1).strip())
    if text == "start":
        return Start()
    if text == "Done printing file":
        return DonePrinting()
    if text.lower().startswith("error:"):
        body = text[6:].strip()
        return MarlinError(body, any(word in body.lower() for word in _FATAL))
    if text.startswith(("echo:", "//", "File ", "Marlin", "FIRMWARE_NAME", "Cap:", "Resend:")):
        return Info(text)
    return Garbage(text)
