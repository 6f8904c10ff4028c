"""S7 source settings, the CPU's operating state and data-block values, without any I/O.

The CPU's RUN/STOP comes from the system status list (SZL ID 0x0424, index 0): byte 3 of its
first record is 0x08 in RUN and 0x04 in STOP, as Snap7 reads it. Configured values are read
from data blocks (``db``, byte ``offset``, ``type``, ``bit`` for a bool), each with a map from
its values to states, first match wins, as the opcua source's tags.

| CPU and values | MachineryItemState | labmeter |
| --- | --- | --- |
| STOP | NotExecuting: the program does not run | ``idle`` |
| RUN, a value in its map | as the map says | its state |
| RUN, no value in a map (or none configured) | Executing | ``in_use`` |
| the CPU's state unknown, no answer | | not observed |
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from labmeter.agent.sources.options import Options
from labmeter.contract import STATES
from labmeter.errors import ConfigError
from labmeter.machinery import ItemState, MachineState, OperationMode, substate

CPU_RUN, CPU_STOP = 0x08, 0x04
SZL_CPU_STATE = 0x0424
# type -> (bytes, struct format)
TYPES: dict[str, tuple[int, str]] = {
    "bool": (1, "B"), "byte": (1, "B"), "int": (2, ">h"), "word": (2, ">H"),
    "dint": (4, ">i"), "dword": (4, ">I"), "real": (4, ">f"),
}  # fmt: skip


@dataclass(frozen=True)
class Value:
    name: str
    db: int
    offset: int
    type: str
    bit: int
    map: dict[str, str]

    @property
    def size(self) -> int:
        return TYPES[self.type][0]

    def decode(self, data: bytes) -> bool | int | float:
        if self.type == "bool":
            return bool(data[0] >> self.bit & 1)
        value: bool | int | float = struct.unpack(TYPES[self.type][1], data[: self.size])[0]
        return value

    def state(self, value: bool | int | float) -> str | None:
        return self.map.get(key(value))


def key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def cpu_state(szl_data: bytes) -> str:
    """RUN, STOP or UNKNOWN from SZL 0x0424's data (LENTHDR, N_DR, then the records)."""
    if len(szl_data) < 8:
        return "UNKNOWN"
    return {CPU_RUN: "RUN", CPU_STOP: "STOP"}.get(szl_data[7], "UNKNOWN")


def values(opts: Options) -> tuple[Value, ...]:
    raw = opts.raw.get("values", [])
    if not isinstance(raw, list):
        raise ConfigError(opts.key("values"), "must be a list of tables ([[agent.options.values]])")
    out = []
    for i, entry in enumerate(raw):
        sub = Options(entry if isinstance(entry, dict) else {}, opts.key(f"values[{i}]"))
        sub.reject_unknown({"name", "db", "offset", "type", "bit", "map"})
        kind = sub.string("type", choices=tuple(TYPES))
        mapping = sub.table("map")
        if not mapping:
            raise ConfigError(sub.key("map"), "is required: value -> state")
        for value, state in mapping.items():
            if state not in STATES:
                raise ConfigError(sub.key(f"map.{value}"), f"{state!r} is not one of {STATES}")
        db = sub.integer("db", minimum=1, maximum=65535)
        offset = sub.integer("offset", minimum=0, maximum=65535)
        out.append(Value(sub.string("name", f"DB{db}.{offset}"), db, offset, kind,
                         sub.integer("bit", 0, maximum=7), dict(mapping)))  # fmt: skip
    return tuple(out)


def decide(cpu: str, read: list[tuple[Value, bool | int | float]]) -> tuple[str | None, str | None]:
    """(contract state, substate) from the CPU's state and the values read in RUN."""
    if cpu == "STOP":
        return MachineState(ItemState.NOT_EXECUTING).state, "STOP"
    if cpu != "RUN":
        return None, None
    for value, reading in read:
        state = value.state(reading)
        if state is not None:
            return state, substate("RUN", f"{value.name}:{key(reading)}")
    return MachineState(ItemState.EXECUTING, OperationMode.NONE).state, "RUN"
