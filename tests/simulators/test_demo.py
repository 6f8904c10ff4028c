"""``labmeter demo`` as a newcomer runs it: in a terminal, stopped with Ctrl-C.

A terminal sends SIGINT to its whole foreground process group, so the test starts the demo in
a session of its own and signals the group, not the process. The demo gets SIGINT's default
disposition back: a suite started from a background job (which ignores SIGINT) would otherwise
hand it an ignored SIGINT, and Python leaves an ignored SIGINT ignored.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

DEVICES = 12  # as many as deploy/inventory.example.yaml registers
LIVE = "The lab keeps running live"
# What an error burst looks like: logging's levels, a traceback, paho's or uvicorn's complaints.
BAD_LINE = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback|Exception|exited with code", re.I)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _read_lines(stream: object, out: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        out.put(line)
    out.put(None)


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


def _occupancy_rows(lines: list[str]) -> list[list[str]]:
    """The rows of the first occupancy table: site, lab, device, state, last seen."""
    start = next(i for i, line in enumerate(lines) if "Occupancy now" in line)
    rows = []
    for line in lines[start + 1 :]:
        if "Utilisation" in line:
            break
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) == 5 and cells[0] == "its-prime":
            rows.append(cells)
    return rows


def test_demo_shows_live_devices_and_stops_cleanly_on_ctrl_c() -> None:
    labmeter = Path(sys.executable).with_name("labmeter")
    # --duration is a fuse: the demo must stop on the SIGINT, long before it.
    argv = [str(labmeter), "demo", "--hours", "6", "--devices", str(DEVICES), "--duration", "600"]
    env = os.environ | {"COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
        preexec_fn=_default_sigint,
    )
    lines: list[str] = []
    received: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read_lines, args=(proc.stdout, received), daemon=True).start()
    try:
        deadline = time.monotonic() + 240
        while not any(LIVE in line for line in lines):
            line = received.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "demo ended early:\n" + "".join(lines)
            lines.append(line)
        time.sleep(2)  # the live run goes on: agents publishing, the collector writing
        os.killpg(proc.pid, signal.SIGINT)
        interrupted = time.monotonic()
        proc.wait(timeout=30)
        stop_s = time.monotonic() - interrupted
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    while (line := received.get(timeout=10)) is not None:
        lines.append(line)
    output = "".join(lines)

    assert proc.returncode == 0, output
    assert stop_s < 5, f"stopped {stop_s:.1f} s after Ctrl-C\n{output}"
    assert [line for line in lines if BAD_LINE.search(line)] == [], output
    assert "stopping: agents, collector, API, then mosquitto and influxd" in output
    # The opening hours the figures divide by are the example inventory's, not "always open".
    assert re.search(r"inventory\s+\S*deploy/inventory\.example\.yaml", output), output

    # The regional page: five simulated Foundations, the one with poor coverage not ranked,
    # the pilot before and after with its interval.
    assert "Region: 5 simulated Foundations" in output, output
    assert re.search(r"not ranked, coverage below 80\.0 %: its-si \(\d+\.\d %\)", output), output
    assert "Before and after at its-fi" in output
    assert re.search(r"difference in differences, outside share: \d+\.\d %", output), output

    rows = _occupancy_rows(lines)
    assert len(rows) == DEVICES, output
    offline = [row for row in rows if row[3] == "offline"]
    assert offline == [], f"devices offline in the first occupancy table:\n{output}"

    # mosquitto and influxd (in process groups of their own) were stopped, not left behind.
    workdir = re.search(r"starting mosquitto and influxd in (\S+)", output)
    assert workdir is not None, output
    assert _processes_mentioning(workdir.group(1)) == []
    assert not Path(workdir.group(1)).exists()
