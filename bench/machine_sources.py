"""CPU share and peak RSS of each machine source while the agent polls it once a second.

Each device runs in a child process (``python -m labmeter.simulators.devices``), so this process
holds only what an agent on a lab machine holds: the source, its reader thread and the
real pyserial (or pymodbus) code. Prints the median of ``--repeat`` runs per source.

Networked printers (prusalink, octoprint, moonraker, bambu) and machines (opcua, mtconnect,
ur, s7) at their default settings: the emulator runs in a child process (Bambu's with its own
TLS Mosquitto; the machines play the scripted hour of ``simulators/devices/script.py``), and
the source in a fresh child of its own that first loads the agent (runner, queue, publisher:
the agent without the source: what ``labmeter agent`` imports, its CLI included), notes its
RSS, then builds the source and polls it once a second: its CPU share and the RSS it adds over
that agent, median of ``--repeat`` children.

    .venv/bin/python bench/machine_sources.py --seconds 20 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from labmeter.agent.sources import SOURCES
from labmeter.config import AgentConfig

OPTIONS: dict[str, dict[str, Any]] = {
    "grbl": {},
    "marlin": {},
    "clamp": {"off_below_a": 0.3, "run_above_a": 4.0},
    "modbus": {"registers": {"power": {"address": 12}, "voltage": {"address": 0}},
               "run_above_w": 1000},
    "badge": {},
}  # fmt: skip


def run_once(name: str, seconds: float) -> float:
    """CPU share of one core (percent) used by this process while polling ``name``."""
    path = Path(tempfile.mkdtemp(prefix="labmeter-bench-")) / "tty"
    device = subprocess.Popen(
        [sys.executable, "-m", "labmeter.simulators.devices", name, str(path)],
        stdout=subprocess.PIPE,
    )
    assert device.stdout is not None
    device.stdout.readline()  # the port exists
    config = AgentConfig(pseudonym_secret="b" * 16, options={"port": str(path), **OPTIONS[name]})
    source = SOURCES[name](config)
    try:
        time.sleep(2.0)  # connected, first reports in
        cpu0, t0 = time.process_time(), time.monotonic()
        while time.monotonic() - t0 < seconds:
            source.poll()
            getattr(source, "drain_events", list)()
            time.sleep(1.0)
        return 100 * (time.process_time() - cpu0) / (time.monotonic() - t0)
    finally:
        source.close()
        os.kill(device.pid, signal.SIGTERM)
        device.wait(timeout=10)


PRINTERS = ("prusalink", "octoprint", "moonraker", "bambu")
MACHINES = ("opcua", "mtconnect", "ur", "s7")


def _host_port(target: str) -> dict[str, Any]:
    host, port = target.rsplit(":", 1)
    return {"host": host, "port": int(port)}


def _options(name: str, target: str, key: str) -> dict[str, Any]:
    """A networked source's options at its default settings, given where its emulator is."""
    if name == "bambu":
        return {"host": "127.0.0.1", "port": int(target.split()[0]), "serial": target.split()[1],
                "access_code": key}  # fmt: skip
    if name in PRINTERS:
        return {"url": target, "api_key" if name != "prusalink" else "password": key}
    if name == "opcua":
        return {"endpoint": target}
    if name == "mtconnect":
        return {"url": target}
    if name == "ur":
        return _host_port(target)
    mode = {"name": "Mode", "db": 1, "offset": 0, "type": "int", "map": {"2": "in_use"}}
    return {**_host_port(target), "values": [mode]}  # s7


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def network_child(name: str, target: str, key: str, seconds: float) -> None:
    """In a fresh process: the agent's floor, then the source polled once a second."""
    # What `labmeter agent` holds before it builds its source: the CLI (typer, rich, and the
    # modules it loads) and the agent's runner, queue and publisher.
    import labmeter.agent.runner
    import labmeter.cli.main  # noqa: F401

    base = _rss_mb()
    options = _options(name, target, key)
    source = SOURCES[name](AgentConfig(pseudonym_secret="b" * 16, options=options))
    try:
        time.sleep(3.0)  # connected, first answers in
        assert source.poll().state is not None, "the source sees no state"
        cpu0, t0 = time.process_time(), time.monotonic()
        while time.monotonic() - t0 < seconds:
            source.poll()
            getattr(source, "drain_events", list)()
            time.sleep(1.0)
        cpu = 100 * (time.process_time() - cpu0) / (time.monotonic() - t0)
        print(f"{cpu:.4f} {_rss_mb() - base:.2f} {_rss_mb():.1f}", flush=True)
    finally:
        source.close()


def network_once(name: str, seconds: float) -> tuple[float, float, float]:
    """(CPU % of one core, RSS MB added over the agent, RSS MB) of one child polling ``name``."""
    from labmeter.localstack import free_port
    from labmeter.simulators.devices.__main__ import NETWORK_KEY

    speed = ["--speed", "10"] if name in PRINTERS else []  # the machines: their hour as it is
    emulator = subprocess.Popen(
        [sys.executable, "-m", "labmeter.simulators.devices", name, str(free_port()), *speed],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert emulator.stdout is not None
    line = emulator.stdout.readline().split()  # "<name> on <url> ..." / "... serial <s>"
    target = line[2] if name != "bambu" else f"{line[2].rsplit(':', 1)[1]} {line[4]}"
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", name, "--target", target,
             "--key", NETWORK_KEY, "--seconds", str(seconds)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        cpu, added, rss = (float(x) for x in out.stdout.split()[-3:])
        return cpu, added, rss
    finally:
        os.kill(emulator.pid, signal.SIGTERM)
        emulator.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("sources", nargs="*", default=[*OPTIONS, *PRINTERS, *MACHINES])
    args = parser.parse_args()
    if args.child:
        network_child(args.child, args.target, args.key, args.seconds)
        return
    networked = [n for n in args.sources if n in (*PRINTERS, *MACHINES)]
    if networked:
        print(f"{'network':10} {'cpu % of one core':>18} {'RSS added, MB':>14} {'RSS, MB':>8}"
              "   (medians; runs: cpu / added)")  # fmt: skip
    for name in networked:
        runs = [network_once(name, args.seconds) for _ in range(args.repeat)]
        cpu, added, rss = (statistics.median(r[i] for r in runs) for i in range(3))
        shown = "; ".join(f"{r[0]:.2f} / {r[1]:.1f}" for r in runs)
        print(f"{name:10} {cpu:18.2f} {added:14.1f} {rss:8.1f}   {shown}")
    serial = [n for n in args.sources if n in OPTIONS]
    if serial:
        print(f"{'source':8} {'cpu % of one core (median)':>28} {'runs':>24}")
    for name in serial:
        runs = [run_once(name, args.seconds) for _ in range(args.repeat)]
        shown = ", ".join(f"{r:.2f}" for r in runs)
        print(f"{name:8} {statistics.median(runs):28.2f} {shown:>24}")
    if serial:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(f"peak RSS of this process (the serial sources): {peak} MB")


if __name__ == "__main__":
    main()
