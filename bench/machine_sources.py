"""CPU share and peak RSS of each machine source while the agent polls it once a second.

Each device runs in a child process (``python -m labmeter.simulators.devices``), so this process
holds only what an agent on a lab machine holds: the source, its reader thread and the
real pyserial (or pymodbus) code. Prints the median of ``--repeat`` runs per source.

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("sources", nargs="*", default=list(OPTIONS))
    args = parser.parse_args()
    print(f"{'source':8} {'cpu % of one core (median)':>28} {'runs':>24}")
    for name in args.sources:
        runs = [run_once(name, args.seconds) for _ in range(args.repeat)]
        shown = ", ".join(f"{r:.2f}" for r in runs)
        print(f"{name:8} {statistics.median(runs):28.2f} {shown:>24}")
    print(
        f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB"
    )


if __name__ == "__main__":
    main()
