"""Register maps of Modbus energy meters: which registers hold what, and how to decode them.

Meters disagree on everything (Eastron SDM: IEEE float32 in input registers, high word
first; others: scaled integers in holding registers, low word first), so the map is
configuration and this module only decodes 16-bit register words, without any I/O.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from typing import Any

from labmeter.errors import ConfigError

# type -> (registers, struct code of the big-endian value)
TYPES: dict[str, tuple[int, str]] = {
    "int16": (1, ">h"),
    "uint16": (1, ">H"),
    "int32": (2, ">i"),
    "uint32": (2, ">I"),
    "float32": (2, ">f"),
}
FUNCTIONS = ("holding", "input")
MAX_REGISTERS = 24  # each becomes a metric; a sample carries at most 32
_NAME = re.compile(r"[a-z0-9_.-]{1,64}")  # the contract's metric names
WORD_ORDERS = ("big", "little")


@dataclass(frozen=True)
class Register:
    """One value: where it is, how it is encoded, and the factor to its unit (W, V, kWh)."""

    name: str
    address: int
    type: str = "float32"
    scale: float = 1.0
    word_order: str = "big"  # "big": the first register holds the high word
    function: str = "input"

    @property
    def count(self) -> int:
        return TYPES[self.type][0]

    def decode(self, words: list[int]) -> float:
        if len(words) != self.count or not all(0 <= w <= 0xFFFF for w in words):
            raise ValueError(f"{self.name}: expected {self.count} 16-bit registers, got {words}")
        ordered = words if self.word_order == "big" else list(reversed(words))
        raw = b"".join(w.to_bytes(2, "big") for w in ordered)
        (value,) = struct.unpack(TYPES[self.type][1], raw)
        if not math.isfinite(value):
            # NaN/inf (0xFFFF 0xFFFF, a meter still booting) would also fail every comparison
            # with the thresholds and get the whole sample rejected as a metric.
            raise ValueError(f"{self.name}: not a finite number ({words})")
        return float(value) * self.scale

    def encode(self, value: float) -> list[int]:
        """The registers a meter would hold for ``value`` (used by simulators and tests)."""
        code = TYPES[self.type][1]
        raw_value = value / self.scale
        packed = struct.pack(code, raw_value if self.type == "float32" else round(raw_value))
        words = [int.from_bytes(packed[i : i + 2], "big") for i in range(0, len(packed), 2)]
        return words if self.word_order == "big" else list(reversed(words))


def parse_register_map(
    table: dict[str, Any], key: str = "agent.options.registers"
) -> list[Register]:
    """``{name: {address, type, scale, word_order, function}}`` -> registers; errors name keys."""
    if len(table) > MAX_REGISTERS:
        raise ConfigError(key, f"at most {MAX_REGISTERS} registers (each is a metric)")
    registers: list[Register] = []
    for name, spec in table.items():
        where = f"{key}.{name}"
        if not _NAME.fullmatch(name):
            raise ConfigError(where, "register names are metric names: [a-z0-9_.-]{1,64}")
        if not isinstance(spec, dict):
            raise ConfigError(where, "must be a table with at least `address`")
        unknown = set(spec) - {"address", "type", "scale", "word_order", "function"}
        if unknown:
            raise ConfigError(f"{where}.{sorted(unknown)[0]}", "unknown register setting")
        address = spec.get("address")
        if isinstance(address, bool) or not isinstance(address, int) or not 0 <= address <= 0xFFFF:
            raise ConfigError(f"{where}.address", f"must be an integer 0..65535, got {address!r}")
        rtype = spec.get("type", "float32")
        if rtype not in TYPES:
            raise ConfigError(f"{where}.type", f"{rtype!r} is not one of {', '.join(TYPES)}")
        scale = spec.get("scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, int | float) or scale == 0:
            raise ConfigError(f"{where}.scale", f"must be a non-zero number, got {scale!r}")
        order = spec.get("word_order", "big")
        if order not in WORD_ORDERS:
            raise ConfigError(f"{where}.word_order", f"{order!r} is not big or little")
        function = spec.get("function", "input")
        if function not in FUNCTIONS:
            raise ConfigError(f"{where}.function", f"{function!r} is not holding or input")
        registers.append(Register(name, address, rtype, float(scale), order, function))
    return registers
