"""A Siemens S7 PLC: python-snap7's bundled server, with RUN/STOP answered in the system
status list (SZL 0x0424, which its server lacks) and a data block DB1 whose INT at byte 0 is
the machine's mode (0 off, 1 idle, 2 running, 3 held, 4 fault, 5 setup), behind a ``Gate``.
"""

from __future__ import annotations

import logging
import struct

from snap7.server import Server
from snap7.type import SrvArea

from labmeter.agent.sources.s7.protocol import CPU_RUN, CPU_STOP, SZL_CPU_STATE
from labmeter.simulators.devices.network import Gate, LoopThread, free_port

MODES = {"off": 0, "idle": 1, "in_use": 2, "paused": 3, "alarm": 4, "setup": 5}
MODE_MAP = {str(v): k for k, v in MODES.items()}


class _Plc(Server):
    """snap7's server, answering the CPU's operating state as a CPU does."""

    def _get_szl_data(self, szl_id: int, szl_index: int) -> bytes | None:
        if szl_id == SZL_CPU_STATE:
            record = bytearray(20)
            record[0:2] = b"\x43\x02"  # event: the mode's last transition
            record[2] = 0xFF
            record[3] = CPU_RUN if self.cpu_state == 8 else CPU_STOP
            return struct.pack(">HH", len(record), 1) + bytes(record)
        data: bytes | None = super()._get_szl_data(szl_id, szl_index)
        return data


class S7Plc:
    def __init__(self, port: int | None = None) -> None:
        logging.getLogger("snap7").setLevel(logging.WARNING)
        self._backend = free_port()
        self.server = _Plc(log=False)
        self.db1 = bytearray(16)
        self.server.register_area(SrvArea.DB, 1, self.db1)
        self.loop = LoopThread("sim-s7-gate")
        self.gate = Gate(self.loop, self._backend, port)
        self.state = "idle"

    @property
    def port(self) -> int:
        return self.gate.port

    def start(self) -> S7Plc:
        self.server.start(tcp_port=self._backend)
        self.set_state("idle")
        self.gate.open()
        return self

    def stop(self) -> None:
        self.gate.cut()
        self.server.stop()
        self.loop.close()

    def run(self, running: bool) -> None:
        self.server.set_cpu_status(8 if running else 4)

    def set_state(self, state: str) -> None:
        self.state = state
        self.run(True)
        self.db1[0:2] = struct.pack(">h", MODES[state])

    def apply(self, step: str) -> None:
        if step == "disconnect":
            self.gate.cut()
        elif step == "reconnect":
            self.gate.mend()
        else:
            self.set_state(step)
