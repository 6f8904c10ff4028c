"""MTConnect Streams documents, parsed without any I/O, and what their observations mean.

An agent's ``current`` and ``sample`` answers are ``MTConnectStreams`` documents in the
namespace of their version (``urn:mtconnect.org:MTConnectStreams:1.3``, ``...:2.0``, ...):
tags are read without it, so 1.x and 2.x read alike. The header gives the agent's
``instanceId`` (a new one: the agent restarted, its sequence numbers start over), its buffer's
``firstSequence`` and the ``nextSequence`` to ask for. Each observation carries its
``sequence`` and ``timestamp``, so the source replays every change between two polls in order.

MTConnect to OPC 40001-1 (``labmeter/machinery.py`` makes the contract's state of it):

| observation | MachineryItemState / mode |
| --- | --- |
| ``Availability`` UNAVAILABLE | NotAvailable |
| any ``Fault`` condition active, ``EmergencyStop`` TRIGGERED | OutOfService |
| ``Execution`` ACTIVE | Executing |
| ``Execution`` INTERRUPTED, FEED_HOLD, WAIT, OPTIONAL_STOP, PROGRAM_STOPPED,
  PROGRAM_OPTIONAL_STOP | NotExecuting, held (``paused``) |
| ``Execution`` READY, STOPPED, PROGRAM_COMPLETED | NotExecuting |
| ``ControllerMode`` AUTOMATIC | Processing |
| ``ControllerMode`` MANUAL, MANUAL_DATA_INPUT, SEMI_AUTOMATIC, EDIT | Setup |
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime

from labmeter.machinery import ItemState, MachineState, OperationMode, substate

HELD = {"INTERRUPTED", "FEED_HOLD", "WAIT", "OPTIONAL_STOP", "PROGRAM_STOPPED",
        "PROGRAM_OPTIONAL_STOP"}  # fmt: skip
NOT_EXECUTING = {"READY", "STOPPED", "PROGRAM_COMPLETED"}
MODES = {
    "AUTOMATIC": OperationMode.PROCESSING,
    "MANUAL": OperationMode.SETUP,
    "MANUAL_DATA_INPUT": OperationMode.SETUP,
    "SEMI_AUTOMATIC": OperationMode.SETUP,  # single block: proving a program
    "EDIT": OperationMode.SETUP,
}
WATCHED = {"Availability", "Execution", "ControllerMode", "Program", "ProgramName",
           "EmergencyStop"}  # fmt: skip
CONDITIONS = {"Normal", "Warning", "Fault", "Unavailable"}


class StreamError(Exception):
    """Not an MTConnectStreams document, or an MTConnectError (``code`` says which)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Observation:
    sequence: int
    timestamp: datetime
    kind: str  # Execution, ControllerMode, ..., or Condition
    item: str  # dataItemId
    value: str  # for a condition: Normal, Warning, Fault, Unavailable
    code: str = ""  # a condition's nativeCode


@dataclass(frozen=True)
class Stream:
    instance_id: str
    first_sequence: int
    next_sequence: int
    last_sequence: int
    created: datetime
    observations: tuple[Observation, ...]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _time(text: str | None) -> datetime:
    if not text:
        raise StreamError("an observation without a timestamp")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise StreamError(f"bad timestamp {text[:40]!r}") from exc
    if moment.tzinfo is None:
        raise StreamError(f"timestamp {text[:40]!r} without a zone")
    return moment


def _int(text: str | None, what: str) -> int:
    try:
        return int(text or "")
    except ValueError as exc:
        raise StreamError(f"{what} {str(text)[:20]!r} is not an integer") from exc


def parse(body: bytes) -> Stream:
    """An MTConnectStreams document; raises ``StreamError`` on anything else."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise StreamError(f"not XML: {exc}") from exc
    name = _local(root.tag)
    if name == "MTConnectError":
        error = next((e for e in root.iter() if _local(e.tag) == "Error"), None)
        code = error.get("errorCode", "") if error is not None else ""
        text = (error.text or "").strip() if error is not None else ""
        raise StreamError(f"agent error {code}: {text[:200]}", code)
    if name != "MTConnectStreams":
        raise StreamError(f"not an MTConnectStreams document but {name[:40]}")
    header = next((e for e in root if _local(e.tag) == "Header"), None)
    if header is None:
        raise StreamError("no Header")
    observations: list[Observation] = []
    for element in root.iter():
        kind = _local(element.tag)
        if kind in WATCHED or kind in CONDITIONS:
            if element.get("sequence") is None:
                continue  # a Header's or a DataItem's namesake, not an observation
            observations.append(
                Observation(
                    sequence=_int(element.get("sequence"), "sequence"),
                    timestamp=_time(element.get("timestamp")),
                    kind="Condition" if kind in CONDITIONS else kind,
                    item=element.get("dataItemId", ""),
                    value=kind if kind in CONDITIONS else (element.text or "").strip(),
                    code=element.get("nativeCode", "") if kind in CONDITIONS else "",
                )
            )
    observations.sort(key=lambda o: o.sequence)
    return Stream(
        instance_id=header.get("instanceId", ""),
        first_sequence=_int(header.get("firstSequence"), "firstSequence"),
        next_sequence=_int(header.get("nextSequence"), "nextSequence"),
        last_sequence=_int(header.get("lastSequence"), "lastSequence"),
        created=_time(header.get("creationTime")),
        observations=tuple(observations),
    )


@dataclass
class Machine:
    """The machine as its observations so far describe it (one device, any number of paths)."""

    values: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, item) -> value
    faults: dict[str, set[str]] = field(default_factory=dict)  # condition item -> active codes

    def observe(self, o: Observation) -> None:
        if o.kind != "Condition":
            self.values[(o.kind, o.item)] = o.value
            return
        active = self.faults.setdefault(o.item, set())
        if o.value == "Fault":
            active.add(o.code or "fault")
        elif o.value in ("Normal", "Unavailable") and not o.code:
            active.clear()  # a Normal without a code clears the whole condition
        else:
            active.discard(o.code or "fault")

    def _all(self, kind: str) -> list[str]:
        return [v for (k, _), v in self.values.items() if k == kind]

    @property
    def program(self) -> str | None:
        names = [v for v in self._all("Program") + self._all("ProgramName") if v != "UNAVAILABLE"]
        return names[0] if names else None

    def state(self) -> tuple[str | None, str | None]:
        """(contract state, substate); (None, None) while the machine's state is unknown."""
        availability = self._all("Availability")
        if "UNAVAILABLE" in availability:
            return MachineState(ItemState.NOT_AVAILABLE).state, "UNAVAILABLE"
        if any(self.faults.values()) or "TRIGGERED" in self._all("EmergencyStop"):
            codes = sorted(c for active in self.faults.values() for c in active)
            return MachineState(ItemState.OUT_OF_SERVICE).state, substate("FAULT", *codes[:2])
        executions = [e for e in self._all("Execution") if e != "UNAVAILABLE"]
        if not executions:
            return None, None
        modes = [m for m in self._all("ControllerMode") if m != "UNAVAILABLE"]
        mode = MODES.get(modes[0], OperationMode.NONE) if modes else OperationMode.NONE
        shown = substate(executions[0] if len(executions) == 1 else "/".join(executions),
                         modes[0] if modes else None)  # fmt: skip
        if "ACTIVE" in executions:
            return MachineState(ItemState.EXECUTING, mode).state, shown
        held = any(e in HELD for e in executions)
        if held or all(e in NOT_EXECUTING for e in executions):
            return MachineState(ItemState.NOT_EXECUTING, mode, held).state, shown
        return None, shown  # an Execution value MTConnect does not define
