"""The Universal Robots dashboard server's answers (TCP 29999, one text line each), parsed
without any I/O, and what they mean in OPC 40001-1's terms.

| dashboard | MachineryItemState / mode |
| --- | --- |
| ``robotmode`` NO_CONTROLLER, DISCONNECTED, BOOTING, POWER_OFF | NotAvailable |
| ``safetystatus`` PROTECTIVE_STOP, RECOVERY, VIOLATION, FAULT, ...EMERGENCY_STOP |
  OutOfService |
| ``safetystatus`` SAFEGUARD_STOP, AUTOMATIC_MODE_SAFEGUARD_STOP,
  SYSTEM_THREE_POSITION_ENABLING_STOP | held (``paused``): a guard opened, resumable |
| ``programState`` PLAYING | Executing |
| ``programState`` PAUSED | NotExecuting, held (``paused``) |
| ``programState`` STOPPED | NotExecuting |
| ``get operational mode`` AUTOMATIC (or none: CB-series) | Processing |
| ``get operational mode`` MANUAL | Setup: a program run while teaching |
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from labmeter.machinery import ItemState, MachineState, OperationMode, substate

QUERIES = ("robotmode", "programState", "safetystatus", "get operational mode")
OFF_MODES = {"NO_CONTROLLER", "DISCONNECTED", "BOOTING", "POWER_OFF"}
ROBOT_MODES = OFF_MODES | {"CONFIRM_SAFETY", "POWER_ON", "IDLE", "BACKDRIVE", "RUNNING",
                           "UPDATING_FIRMWARE"}  # fmt: skip
ALARMS = {"PROTECTIVE_STOP", "RECOVERY", "VIOLATION", "FAULT", "SYSTEM_EMERGENCY_STOP",
          "ROBOT_EMERGENCY_STOP"}  # fmt: skip
GUARDED = {"SAFEGUARD_STOP", "AUTOMATIC_MODE_SAFEGUARD_STOP",
           "SYSTEM_THREE_POSITION_ENABLING_STOP"}  # fmt: skip
SAFETY = ALARMS | GUARDED | {"NORMAL", "REDUCED", "UNDEFINED_SAFETY_MODE", "VALIDATE_JOINT_ID"}
PROGRAM_STATES = {"PLAYING", "PAUSED", "STOPPED"}
_PROGRAM = re.compile(r"^(PLAYING|PAUSED|STOPPED)(?:\s+(.*))?$")


class AnswerError(Exception):
    """A line that is not the answer to the question asked."""


@dataclass(frozen=True)
class Robot:
    """One round of answers."""

    robot_mode: str
    program_state: str
    safety: str
    operational_mode: str | None  # None: the controller has no such command (CB-series)
    program: str | None = None

    def state(self) -> tuple[str, str | None]:
        if self.robot_mode in OFF_MODES:
            item, mode, held = ItemState.NOT_AVAILABLE, OperationMode.NONE, False
        elif self.safety in ALARMS:
            item, mode, held = ItemState.OUT_OF_SERVICE, OperationMode.NONE, False
        else:
            mode = OperationMode.SETUP if self.operational_mode == "MANUAL" else OperationMode.NONE
            held = self.program_state == "PAUSED" or self.safety in GUARDED
            executing = self.program_state == "PLAYING" and not held
            item = ItemState.EXECUTING if executing else ItemState.NOT_EXECUTING
        shown = substate(self.robot_mode, self.program_state, self.safety)
        return MachineState(item, mode, held).state, shown


def _after(prefix: str, line: str) -> str:
    if not line.lower().startswith(prefix.lower()):
        raise AnswerError(f"expected {prefix!r}, got {line[:60]!r}")
    return line[len(prefix) :].strip()


def robot_mode(line: str) -> str:
    value = _after("Robotmode:", line)
    if value not in ROBOT_MODES:
        raise AnswerError(f"unknown robot mode {value[:40]!r}")
    return value


def program_state(line: str) -> tuple[str, str | None]:
    match = _PROGRAM.match(line.strip())
    if match is None:
        raise AnswerError(f"not a program state: {line[:60]!r}")
    return match.group(1), (match.group(2) or None)


def safety_status(line: str) -> str:
    low = line.lower()
    value = _after("Safetystatus:" if low.startswith("safetystatus") else "Safetymode:", line)
    if value not in SAFETY:
        raise AnswerError(f"unknown safety status {value[:40]!r}")
    return value


def operational_mode(line: str) -> str | None:
    """MANUAL, AUTOMATIC or NONE; None where the command is unknown (before PolyScope 5)."""
    value = line.strip()
    if value in ("MANUAL", "AUTOMATIC", "NONE"):
        return value
    if value.lower().startswith("could not understand"):
        return None
    raise AnswerError(f"not an operational mode: {line[:60]!r}")
