"""Run one simulated serial device until Ctrl-C, to try an agent against it by hand.

    python -m labmeter.simulators.devices grbl /tmp/ttyGRBL &
    labmeter agent -c agent.toml   # source = "grbl", [agent.options] port = "/tmp/ttyGRBL"

Each device loops through a short working day with its faults, at ``--speed`` times real time.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from labmeter.simulators.devices.badge import BadgeReaderDevice
from labmeter.simulators.devices.base import Device
from labmeter.simulators.devices.clamp import ClampDevice
from labmeter.simulators.devices.grbl import GrblDevice
from labmeter.simulators.devices.marlin import MarlinDevice
from labmeter.simulators.devices.modbus_meter import ModbusMeterDevice

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


DEVICES = {"grbl": _grbl, "marlin": _marlin, "clamp": _clamp, "modbus": _modbus,
           "badge": _badge}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m labmeter.simulators.devices", description=__doc__
    )
    parser.add_argument("device", choices=sorted(DEVICES))
    parser.add_argument("path", type=Path, help="where the port appears (a symlink to a pty)")
    parser.add_argument("--speed", type=float, default=1.0, help="times real time")
    args = parser.parse_args(argv)
    device, steps = DEVICES[args.device](args.path)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
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
