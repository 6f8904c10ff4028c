"""GRBL 1.1 / grblHAL / GRBL 0.9 serial messages, parsed without any I/O.

Every line the controller sends is one of: a status report ``<Idle|MPos:..|FS:..>``, the
start-up banner (printed after every reset), ``ok``, ``error:N``, ``ALARM:N``, feedback in
brackets, a ``$N=value`` setting, or something else, which is garbage (line noise).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# GRBL machine state -> labmeter state. The choice for each is written in docs/agent.md.
STATE_MAP: dict[str, str] = {
    "Idle": "idle",
    "Run": "in_use",  # executing a program: the machine works
    "Hold": "paused",  # feed hold, Hold:0 complete / Hold:1 decelerating
    "Door": "paused",  # safety door open (Door:0-3): a job interrupted, resumable
    "Jog": "setup",  # the operator positions the tool by hand
    "Home": "setup",  # homing cycle before work
    "Tool": "setup",  # grblHAL manual tool change
    "Check": "setup",  # $C check mode: a program is dry-run without motion to verify it
    "Alarm": "alarm",  # locked until reset/unlock: hard/soft limit, abort during motion
    "Sleep": "off",  # $SLP: steppers and spindle powered down
}

_BANNER = re.compile(r"^(Grbl|GrblHAL|grblHAL)\s+(\S+)\s*(\[.*\])?\s*$")
_ERROR = re.compile(r"^error:\s*(\d+)$")
_ALARM = re.compile(r"^ALARM:\s*(\d+)$")
_SETTING = re.compile(r"^\$\d+=\S*$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass(frozen=True)
class Status:
    """One real-time status report."""

    machine_state: str  # GRBL's name: Idle, Run, Hold, ...
    sub_state: int | None
    state: str  # labmeter's state
    feed: float | None = None
    spindle: float | None = None


@dataclass(frozen=True)
class Banner:
    """The welcome line: the controller has just (re)started."""

    firmware: str  # "Grbl 1.1h", "GrblHAL 1.1f"


@dataclass(frozen=True)
class Ok:
    pass


@dataclass(frozen=True)
class Error:
    code: int


@dataclass(frozen=True)
class Alarm:
    code: int


@dataclass(frozen=True)
class Feedback:
    """``[MSG:..]``, ``[GC:..]``, ``$N=..`` and other well-formed lines that change nothing here."""

    text: str


@dataclass(frozen=True)
class Garbage:
    text: str


Message = Status | Banner | Ok | Error | Alarm | Feedback | Garbage


def _numbers(text: str) -> list[float] | None:
    parts = text.split(",")
    if not all(_NUMBER.match(p) for p in parts):
        return None
    values = [float(p) for p in parts]
    return values if all(math.isfinite(v) for v in values) else None  # 400 digits = inf


def parse_status(body: str) -> Status | None:
    """The inside of ``<...>``; None when it is not a valid report."""
    if "|" in body:
        fields = body.split("|")
        head, rest = fields[0], fields[1:]
    else:  # GRBL 0.9: <Idle,MPos:0.000,0.000,0.000,WPos:0.000,0.000,0.000>
        head, _, tail = body.partition(",")
        rest = [tail] if tail else []
    name, _, sub = head.partition(":")
    if name not in STATE_MAP:
        return None
    sub_state: int | None = None
    if sub:
        if not sub.isdigit():
            return None
        sub_state = int(sub)
    feed = spindle = None
    for field in rest:
        key, _, value = field.partition(":")
        if key == "FS":
            nums = _numbers(value)
            if nums is None or len(nums) != 2:
                return None
            feed, spindle = nums
        elif key == "F":
            nums = _numbers(value)
            if nums is None or len(nums) != 1:
                return None
            feed = nums[0]
    return Status(name, sub_state, STATE_MAP[name], feed, spindle)


def parse_line(line: str) -> Message:
    """Classify one line (without its line ending)."""
    text = line.strip()
    if text.startswith("<") and text.endswith(">"):
        status = parse_status(text[1:-1])
        return status if status is not None else Garbage(text)
    if text == "ok":
        return Ok()
    if m := _ERROR.match(text):
        return Error(int(m.group(1)))
    if m := _ALARM.match(text):
        return Alarm(int(m.group(1)))
    if m := _BANNER.match(text):
        return Banner(f"{m.group(1)} {m.group(2)}")
    if (text.startswith("[") and text.endswith("]") and text.isprintable()) or _SETTING.match(text):
        return Feedback(text)
    return Garbage(text)
