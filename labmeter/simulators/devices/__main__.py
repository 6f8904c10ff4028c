"""Run one simulated serial device until Ctrl-C, to try an agent against it by hand.

    python -m labmeter.simulators.devices grbl /tmp/ttyGRBL &
    labmeter agent -c agent.toml   # source = "grbl", [agent.options] port = "/tmp/ttyGRBL"

Each device loops through a short working day with its faults, at ``--speed`` times real time.
Networked printers listen on 127.0.0.1 instead of a pty (``PORT`` for the path, 0 = any):

    python -m labmeter.simulators.devices moonraker 7125 &
    labmeter agent -c agent.toml   # source = "moonraker", url = "http://127.0.0.1:7125"

Machines on the network (opcua, mtconnect, ur, s7) too, each looping through the scripted
hour of ``script.py``, disconnect included:

    python -m labmeter.simulators.devices opcua 4840 &
    labmeter agent -c agent.toml   # source = "opcua", endpoint = "opc.tcp://127.0.0.1:4840/labmeter/"
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from labmeter.localstack import Service
from labmeter.simulators.devices.badge import BadgeReaderDevice
from labmeter.simulators.devices.bambu import BambuPrinter, printer_broker
from labmeter.simulators.devices.base import Device
from labmeter.simulators.devices.clamp import ClampDevice
from labmeter.simulators.devices.grbl import GrblDevice
from labmeter.simulators.devices.marlin import MarlinDevice
from labmeter.simulators.devices.modbus_meter import ModbusMeterDevice
from labmeter.simulators.devices.moonraker import MoonrakerPrinter
from labmeter.simulators.devices.octoprint import OctoPrintServer
from labmeter.simulators.devices.printer import HttpPrinter, PrinterModel
from labmeter.simulators.devices.prusalink import PrusaLinkPrinter

Step = tuple[float, Callable[[], None]]


def _grbl(path: Path) -> tuple[Device, list[Step]]:
    d = GrblDevice(path)
    return d, [
        (0, lambda: d.set_state("Idle")), (20, lambda: d.set_state("Home")),
        (30, lambda: d.set_state("Jog")), (45, lambda: d.set_state("Run")),
        (120, lambda: d.set_state("Hold:0")), (135, lambda: d.set_state("Run")),
        (150, d.garbage), (170, lambda: d.reset("Alarm")), (190, lambda: d.set_state("Idle")),
        (200, d.unplug), (210, d.replug), (240, lambda: None),
    ]  # fmt: skip


def _marlin(path: Path) -> tuple[Device, list[Step]]:
    d = MarlinDevice(path, time_scale=1.0)
    return d, [
        (0, lambda: d.set_state("idle")), (20, d.heat), (40, d.start_print),
        (60, lambda: d.busy(10)), (120, d.pause), (135, d.resume), (180, d.finish),
        (200, d.unplug), (210, d.replug), (240, lambda: None),
    ]  # fmt: skip


def _clamp(path: Path) -> tuple[Device, list[Step]]:
    d = ClampDevice(path, period_s=0.5)
    return d, [
        (0, lambda: d.set_state("off")), (20, lambda: d.set_state("idle")),
        (40, lambda: d.set_state("in_use")), (120, lambda: d.spike(0.0)), (150, d.garbage),
        (180, lambda: d.set_state("idle")), (200, d.unplug), (210, d.replug), (240, lambda: None),
    ]  # fmt: skip


def _modbus(path: Path) -> tuple[Device, list[Step]]:
    d = ModbusMeterDevice(path)
    return d, [
        (0, lambda: d.set_state("off")), (20, lambda: d.set_state("idle")),
        (40, lambda: d.set_state("in_use")), (150, d.corrupt), (180, lambda: d.set_state("idle")),
        (200, d.unplug), (210, d.replug), (240, lambda: None),
    ]  # fmt: skip


def _badge(path: Path) -> tuple[Device, list[Step]]:
    d = BadgeReaderDevice(path)
    return d, [
        (10, lambda: d.present("0415AB12CD", 1.0)), (60, d.bad_frames),
        (120, lambda: d.present("1A2B3C4D5E", 1.0)), (200, lambda: d.present("1A2B3C4D5E", 1.0)),
        (240, lambda: None),
    ]  # fmt: skip


class _Network:
    """A networked printer's emulator behind the serial devices' interface: ``run`` plays the
    day on its model, ``stop`` takes it off the network (and its broker, for Bambu)."""

    def __init__(self, name: str, port: int, key: str) -> None:
        self.model = PrinterModel()
        self.broker: Service | None = None
        self.printer: Any
        if name == "bambu":
            self.broker = printer_broker(Path(tempfile.mkdtemp(prefix="labmeter-bambu-")), key,
                                         port or None)  # fmt: skip
            self.broker.start()
            self.printer = BambuPrinter(self.model, self.broker.port, key).start()
            self.url = f"mqtts://127.0.0.1:{self.broker.port} serial {self.printer.serial}"
        else:
            server: HttpPrinter
            if name == "moonraker":
                server = MoonrakerPrinter(self.model, port, api_key=key)
            elif name == "octoprint":
                server = OctoPrintServer(self.model, key, port)
            else:
                server = PrusaLinkPrinter(self.model, password=key, port=port)
            self.printer = server.start()
            self.url = self.printer.url

    def run(self, steps: list[Step], stop: threading.Event) -> None:
        t0 = time.monotonic()
        for at, action in steps:
            if stop.wait(max(0.0, t0 + at - time.monotonic())):
                return
            action()

    def stop(self) -> None:
        self.printer.stop()
        if self.broker is not None:
            self.broker.stop()


PRINTER_DAY = [(0, "idle"), (20, "heating"), (40, "printing"), (120, "paused"),
               (135, "printing"), (180, "error"), (200, "idle"), (220, "off")]  # fmt: skip
NETWORK = ("bambu", "moonraker", "octoprint", "prusalink")
NETWORK_KEY = "labmeter-sim-key"  # the emulators' API key, password or access code


def _network(name: str, port: int) -> tuple[_Network, list[Step]]:
    d = _Network(name, port, NETWORK_KEY)
    apply = d.printer.apply
    return d, [(at, lambda p=phase: apply(p)) for at, phase in PRINTER_DAY] + [(240, lambda: None)]


class Machine(Protocol):
    def apply(self, step: str) -> None: ...

    def stop(self) -> None: ...


MACHINES = ("mtconnect", "opcua", "s7", "ur")


def _machine(name: str, port: int) -> tuple[Machine, str]:
    """A machine on the network listening on ``port``, and where an agent finds it."""
    if name == "opcua":
        from labmeter.simulators.devices.opcua_machine import OpcUaMachine

        opcua = OpcUaMachine(port=port or None).start()
        return opcua, opcua.endpoint
    if name == "mtconnect":
        from labmeter.simulators.devices.mtconnect_agent import MTConnectAgent

        mtconnect = MTConnectAgent(port=port or None).start()
        return mtconnect, mtconnect.url
    if name == "ur":
        from labmeter.simulators.devices.ur_dashboard import URDashboard

        ur = URDashboard(port=port or None).start()
        return ur, f"127.0.0.1:{ur.port}"
    from labmeter.simulators.devices.s7_plc import S7Plc

    s7 = S7Plc(port=port or None).start()
    return s7, f"127.0.0.1:{s7.port}"


def _run_machine(name: str, port: int, speed: float, stop: threading.Event) -> None:
    from labmeter.simulators.devices.network import ScaledClock
    from labmeter.simulators.devices.script import HOUR, HOUR_S, play

    machine, address = _machine(name, port)
    print(f"{name} on {address}", flush=True)
    try:
        while not stop.is_set():
            clock = ScaledClock(int(time.time() * 1000), speed)
            play(clock, HOUR, machine.apply, stop, HOUR_S)
            machine.apply("reconnect")  # a new hour starts connected
    finally:
        machine.stop()


DEVICES = {"grbl": _grbl, "marlin": _marlin, "clamp": _clamp, "modbus": _modbus,
           "badge": _badge}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m labmeter.simulators.devices", description=__doc__
    )
    parser.add_argument("device", choices=sorted([*DEVICES, *NETWORK, *MACHINES]))
    parser.add_argument(
        "path",
        help="where the port appears (a symlink to a pty); a TCP port for a printer or machine",
    )
    parser.add_argument("--speed", type=float, default=1.0, help="times real time")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.device in MACHINES:
        with contextlib.suppress(KeyboardInterrupt):
            _run_machine(args.device, int(args.path), args.speed, stop)
        return
    device: Device | _Network
    if args.device in NETWORK:
        device, steps = _network(args.device, int(args.path))
        print(f"{args.device} on {device.url} (key {NETWORK_KEY})", flush=True)
    else:
        device, steps = DEVICES[args.device](Path(args.path))
        device.start()
        print(f"{args.device} on {args.path}", flush=True)
    try:
        while not stop.is_set():
            device.run([(at / args.speed, action) for at, action in steps], stop)
    except KeyboardInterrupt:
        pass
    finally:
        device.stop()


if __name__ == "__main__":
    main()
