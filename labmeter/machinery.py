"""The machine state model, stated once: OPC 40001-1 (OPC UA for Machinery) and ISO 22400-2.

Every machine source describes what it reads as an OPC 40001-1 MachineryItemState and
MachineryOperationMode (plus whether a program is held), and this module alone turns that
into the wire contract's six states. The names and NodeIds are those of the Machinery
nodeset (namespace ``http://opcfoundation.org/UA/Machinery/``, Opc.Ua.Machinery.NodeIds.csv);
the ISO 22400-2 time elements are those of OPC 40001-1 Annex C, limited to what labmeter can
honestly give: its opening hours are ISO 22400's operation calendar, and it knows no orders.

| MachineryItemState | MachineryOperationMode | labmeter |
| --- | --- | --- |
| NotAvailable (powered off, disconnected by the machine itself) | any | ``off`` |
| OutOfService (fault, alarm, emergency stop) | any | ``alarm`` |
| Executing or NotExecuting with a program interrupted or held | any | ``paused`` |
| Executing | Processing (or None: the mode not told) | ``in_use`` |
| Executing | Setup, Maintenance | ``setup`` |
| NotExecuting | any | ``idle`` |
| no data at all | | not observed: in no state, never ``idle`` or ``off`` |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from labmeter.contract import SUBSTATE_PATTERN

NAMESPACE: Final = "http://opcfoundation.org/UA/Machinery/"


class ItemState(StrEnum):
    """OPC 40001-1 clause 12: MachineryItemState_StateMachineType's four top-level states."""

    NOT_AVAILABLE = "NotAvailable"
    OUT_OF_SERVICE = "OutOfService"
    NOT_EXECUTING = "NotExecuting"
    EXECUTING = "Executing"


class OperationMode(StrEnum):
    """OPC 40001-1 clause 13: MachineryOperationModeStateMachineType's four top-level modes."""

    NONE = "None"
    MAINTENANCE = "Maintenance"
    SETUP = "Setup"
    PROCESSING = "Processing"


# Numeric NodeIds in the Machinery namespace (Opc.Ua.Machinery.NodeIds.csv). A state
# machine's CurrentState.Id holds the NodeId of the state object it is in; subtypes defined
# by companion specifications (machine tools, robotics) inherit these very objects.
MACHINES_FOLDER: Final = 1001  # Objects/Machines: where a server lists its machines
ITEM_STATE_TYPE: Final = 1002  # MachineryItemState_StateMachineType
OPERATION_MODE_TYPE: Final = 1008  # MachineryOperationModeStateMachineType
ITEM_STATE_IDS: Final = {
    5004: ItemState.OUT_OF_SERVICE,
    5005: ItemState.NOT_AVAILABLE,
    5006: ItemState.EXECUTING,
    5007: ItemState.NOT_EXECUTING,
}
OPERATION_MODE_IDS: Final = {
    5024: OperationMode.NONE,
    5025: OperationMode.MAINTENANCE,
    5026: OperationMode.PROCESSING,
    5027: OperationMode.SETUP,
}
# The instances' browse names (DefaultInstanceBrowseName), found under the machine's
# MachineryBuildingBlocks folder or Monitoring/Status.
ITEM_STATE_NAME: Final = "MachineryItemState"
OPERATION_MODE_NAMES: Final = ("MachineryOperationMode", "OperationMode")


@dataclass(frozen=True)
class MachineState:
    """What a machine says of itself, in OPC 40001-1's terms."""

    item: ItemState
    mode: OperationMode = OperationMode.NONE
    held: bool = False  # a program interrupted or held (feed hold, pause, protective stop)

    @property
    def state(self) -> str:
        return contract_state(self.item, self.mode, self.held)


def contract_state(item: ItemState, mode: OperationMode, held: bool = False) -> str:
    """The wire contract's state for an OPC 40001-1 item state and operation mode."""
    if item is ItemState.NOT_AVAILABLE:
        return "off"
    if item is ItemState.OUT_OF_SERVICE:
        return "alarm"
    if held:
        return "paused"
    if item is ItemState.NOT_EXECUTING:
        return "idle"
    # Executing. labmeter has no maintenance state: work on the machine that is not a job
    # counts as setup, and its substate keeps it apart.
    if mode in (OperationMode.SETUP, OperationMode.MAINTENANCE):
        return "setup"
    return "in_use"


# How a machine that implements OPC 40001-1 shows each contract state, for simulators and
# examples (the inverse of ``contract_state``; a held program: NotExecuting in Processing).
SHOWN_AS: Final = {
    "off": MachineState(ItemState.NOT_AVAILABLE),
    "alarm": MachineState(ItemState.OUT_OF_SERVICE, OperationMode.PROCESSING),
    "paused": MachineState(ItemState.NOT_EXECUTING, OperationMode.PROCESSING, held=True),
    "in_use": MachineState(ItemState.EXECUTING, OperationMode.PROCESSING),
    "setup": MachineState(ItemState.EXECUTING, OperationMode.SETUP),
    "idle": MachineState(ItemState.NOT_EXECUTING),
}


def substate(*parts: object) -> str | None:
    """The machine's own words for its state (``Executing/Processing``, ``ACTIVE/AUTOMATIC``)
    as the contract carries them: up to 64 of its characters, anything else dropped."""
    text = "/".join(str(p) for p in parts if p is not None and str(p) != "")
    text = re.sub(r"[^A-Za-z0-9_.:/ -]", "", text).strip(" -_./:")[:64].rstrip()
    return text if re.fullmatch(SUBSTATE_PATTERN, text) else None


@dataclass(frozen=True)
class TimeElement:
    """An ISO 22400-2 time element or KPI, and how labmeter gets it from its own figures."""

    code: str
    name: str
    labmeter: str  # labmeter's figure that gives it


# The ISO 22400-2 figures labmeter gives beside its own names (OPC 40001-1 Annex C.2). Delay,
# down and maintenance times need the order and maintenance plans of an MES, which labmeter
# does not have, so it does not give them.
ISO_22400: Final = (
    TimeElement("PBT", "planned busy time", "available (the lab's opening hours)"),
    TimeElement("APT", "actual production time", "in use within opening hours"),
    TimeElement("AUST", "actual unit setup time", "setup"),
    TimeElement("A", "availability", "APT / PBT: labmeter's utilisation"),
)


def availability(in_use_open_s: float, available_s: float) -> float | None:
    """ISO 22400-2 availability, APT / PBT; None without planned busy time."""
    return in_use_open_s / available_s if available_s > 0 else None
