"""Modbus RTU energy meter: read the register map every ``read_s``; power decides the state.

A thread owns the pymodbus client (its calls block for up to the timeout) and keeps the last
good values; after ``timeout_s`` without a good read the state is unknown.
"""

from __future__ import annotations

import logging
import threading
import time

from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ModbusException

from labmeter.agent.meter import Reading
from labmeter.agent.sources import SourceEvent
from labmeter.agent.sources.modbus.protocol import Register, parse_register_map
from labmeter.agent.sources.options import Options
from labmeter.agent.sources.stamp import EventLog, JobEdges, stamped
from labmeter.config import AgentConfig
from labmeter.errors import ConfigError

log = logging.getLogger(__name__)


def power_state(watts: float, off_below_w: float, run_above_w: float) -> str:
    """Off below the standby draw, running from the working draw, idle between."""
    if watts >= run_above_w:
        return "in_use"
    if watts < off_below_w:
        return "off"
    return "idle"


class ModbusSource:
    def __init__(self, config: AgentConfig) -> None:
        opts = Options(config.options)
        opts.reject_unknown(
            {"port", "baudrate", "parity", "device_id", "registers", "power_register",
             "off_below_w", "run_above_w", "read_s", "timeout_s", "response_timeout_s"}
        )  # fmt: skip
        self.registers = parse_register_map(opts.table("registers"))
        self.power_name = opts.string("power_register", "power")
        if self.power_name not in {r.name for r in self.registers}:
            raise ConfigError(
                "agent.options.power_register",
                f"{self.power_name!r} is not in agent.options.registers",
            )
        self.run_above_w = opts.number("run_above_w", minimum=0)
        self.off_below_w = opts.number("off_below_w", 0.0, minimum=0, maximum=self.run_above_w)
        self.device_id = opts.integer("device_id", 1, minimum=1, maximum=247)
        self.read_s = opts.number("read_s", 1.0, minimum=0.05)
        self.timeout_s = opts.number("timeout_s", 5.0, minimum=self.read_s)
        self.client = ModbusSerialClient(
            opts.string("port"),
            baudrate=opts.integer("baudrate", 9600, minimum=300),
            parity=opts.string("parity", "N", choices=("N", "E", "O")),
            timeout=opts.number("response_timeout_s", 0.5, minimum=0.01),
            retries=0,  # the next read is the retry; a stale value is aged out by timeout_s
        )
        self._lock = threading.Lock()
        self._values: dict[str, float] = {}
        self._good_t = 0.0
        self._failing = False
        self._events = EventLog()
        self._jobs = JobEdges(self._events)
        self.counters = {"reads": 0, "errors": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="labmeter-modbus", daemon=True)
        self._thread.start()

    def poll(self) -> Reading:
        with self._lock:
            metrics = {f"modbus_{k}": float(v) for k, v in self.counters.items()}
            if time.monotonic() - self._good_t > self.timeout_s or not self._values:
                return Reading(state=None, metrics=metrics)
            metrics.update(self._values)
            watts = self._values[self.power_name]
        return Reading(power_state(watts, self.off_below_w, self.run_above_w), metrics=metrics)

    def drain_events(self) -> list[SourceEvent]:
        return self._events.drain()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self.client.close()  # type: ignore[no-untyped-call]

    def _read(self, register: Register) -> float:
        call = (
            self.client.read_input_registers
            if register.function == "input"
            else self.client.read_holding_registers
        )
        response = call(register.address, count=register.count, device_id=self.device_id)
        if response.isError():
            raise ModbusException(f"{register.name}: exception response {response}")
        return register.decode(list(response.registers))

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                if not self.client.connected and not self.client.connect():
                    raise ModbusException(f"cannot open {self.client.comm_params.host}")
                values = {r.name: self._read(r) for r in self.registers}
            except (ModbusException, OSError, ValueError) as exc:
                self._on_error(exc)
            else:
                self._on_values(values)
            self._stop.wait(max(0.0, self.read_s - (time.monotonic() - started)))

    def _on_error(self, exc: Exception) -> None:
        # Reopen next round: the adapter may have been unplugged.
        self.client.close()  # type: ignore[no-untyped-call]
        with self._lock:
            self.counters["errors"] += 1
            if not self._failing:
                self._failing = True
                log.warning("modbus read failed: %s", exc)
                self._events.add(stamped("source_error", {"reason": str(exc)[:200]}))

    def _on_values(self, values: dict[str, float]) -> None:
        state = power_state(values[self.power_name], self.off_below_w, self.run_above_w)
        with self._lock:
            self.counters["reads"] += 1
            self._values, self._good_t, self._failing = values, time.monotonic(), False
            self._jobs.update(state)
