"""A Modbus RTU energy meter (slave) with its own frame handling and CRC16, on a pty.

It answers function 03 (holding) and 04 (input registers) from a register map laid out like
an Eastron SDM120 (float32, high word first): voltage at 0, active power at 12, and a
total-energy counter as uint32 in hundredths of kWh at 342. Its truth is the machine state
its power draw stands for (``off``, ``idle``, ``in_use``).
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

from labmeter.agent.sources.modbus.protocol import Register
from labmeter.simulators.devices.base import Device

POWER_W = {"off": 2.0, "idle": 150.0, "in_use": 2200.0}
REGISTERS = [
    Register("voltage", 0, "float32"),
    Register("power", 12, "float32"),
    Register("energy_kwh", 342, "uint32", scale=0.01),
]


def crc16(frame: bytes) -> int:
    """Modbus CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for byte in frame:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(frame: bytes) -> bytes:
    return frame + struct.pack("<H", crc16(frame))


class ModbusMeterDevice(Device):
    def __init__(self, path: Path | None = None, device_id: int = 1, seed: int = 1) -> None:
        super().__init__(path, name="modbus")
        self.device_id = device_id
        self.rng = random.Random(seed)
        self.requests = 0
        self.bad_crc = 0
        self.corrupt_next = 0
        self.energy_kwh = 1234.5
        self._buf = bytearray()
        self._state = "off"

    def words(self) -> dict[int, int]:
        values = {
            "voltage": 230.1,
            "power": POWER_W[self._state or "off"],
            "energy_kwh": self.energy_kwh,
        }
        out: dict[int, int] = {}
        for reg in REGISTERS:
            for i, word in enumerate(reg.encode(values[reg.name])):
                out[reg.address + i] = word
        return out

    def on_bytes(self, data: bytes) -> None:
        self._buf += data
        while len(self._buf) >= 8:
            frame, self._buf = bytes(self._buf[:8]), self._buf[8:]
            if crc16(frame[:6]) != struct.unpack("<H", frame[6:])[0]:
                self.bad_crc += 1
                self._buf.clear()  # out of step: wait for the line to go quiet
                return
            self._answer(frame)

    def _answer(self, frame: bytes) -> None:
        unit, function, address, count = struct.unpack(">BBHH", frame[:6])
        if unit != self.device_id:
            return  # another slave's request
        self.requests += 1
        if function not in (3, 4):
            self.send(with_crc(bytes([unit, function | 0x80, 0x01])))
            return
        words = self.words()
        if count < 1 or count > 125 or any(a not in words for a in range(address, address + count)):
            self.send(with_crc(bytes([unit, function | 0x80, 0x02])))
            return
        payload = b"".join(words[a].to_bytes(2, "big") for a in range(address, address + count))
        reply = with_crc(bytes([unit, function, len(payload)]) + payload)
        if self.corrupt_next:
            self.corrupt_next -= 1
            reply = reply[:-1] + bytes([reply[-1] ^ 0x5A])  # a flipped bit on the wire
        self.send(reply)

    def corrupt(self, replies: int = 3) -> None:
        with self._lock:
            self.corrupt_next = replies

    def garbage(self) -> None:
        with self._lock:
            self.send(bytes(self.rng.randrange(256) for _ in range(11)))
