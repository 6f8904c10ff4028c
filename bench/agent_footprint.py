"""The agent's footprint: CPU share and peak RSS of the real ``labmeter agent`` process.

It runs the PC agent (poll every 1 s, a sample every 60 s, process scans every 15 s with a
small licence catalogue, publishing from its durable queue) against a real mosquitto on a
free port, for ``--seconds`` per run, and prints the median of ``--runs`` runs. CPU is
measured after a warm-up (imports and the first scan are a one-off cost, reported apart).

    .venv/bin/python bench/agent_footprint.py --seconds 120 --runs 3
    .venv/bin/python bench/agent_footprint.py --seconds 60 --runs 3 --baseline 23a1cbe

With ``--baseline REF`` the agent of that commit (its ``labmeter`` package extracted to a temp
dir, first on the child's path, started as ``labmeter agent`` through its own CLI) runs too,
taking turns with this tree's run by run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from labmeter.localstack import mosquitto

CONFIG = """
[mqtt]
url = "mqtt://127.0.0.1:{port}"
[agent]
site = "bench"
lab = "lab"
device = "pc-{run}"
interval_s = 60
poll_s = 1.0
pseudonym_secret = "bench-secret-of-enough-length"
queue_path = "{dir}/queue.db"
[agent.apps.matlab]
patterns = ["matlab*"]
[agent.apps.solidworks]
patterns = ["sldworks.exe"]
[agent.apps.python]
patterns = ["python*"]
"""

WARMUP_S = 10.0
ROOT = Path(__file__).resolve().parent.parent


def one_run(
    port: int, workdir: Path, run: int, seconds: float, code: Path | None = None
) -> tuple[float, float, float]:
    """(CPU % of one core after warm-up, peak RSS in MB, CPU seconds of the warm-up)."""
    name = f"{'base' if code else 'this'}-{run}"
    config = workdir / f"agent-{name}.toml"
    config.write_text(CONFIG.format(port=port, run=name, dir=workdir / f"run-{name}"))
    if code is None:
        labmeter = Path(sys.executable).parent / "labmeter"
        proc = subprocess.Popen([str(labmeter), "agent", "-c", str(config)])
    else:
        cli = "from labmeter.cli.main import app; app()"
        proc = subprocess.Popen(
            [sys.executable, "-c", cli, "agent", "-c", str(config)],
            env={**os.environ, "PYTHONPATH": str(code)},
        )
    watched = psutil.Process(proc.pid)
    try:
        time.sleep(WARMUP_S)
        start = watched.cpu_times()
        warmup_cpu = start.user + start.system
        t0 = time.monotonic()
        peak = 0
        while time.monotonic() - t0 < seconds:
            peak = max(peak, watched.memory_info().rss)
            time.sleep(1.0)
        end = watched.cpu_times()
        elapsed = time.monotonic() - t0
        cpu = (end.user + end.system - warmup_cpu) / elapsed * 100
        peak = max(peak, watched.memory_info().rss)
    finally:
        proc.terminate()
        proc.wait(30)
    return cpu, peak / 1024 / 1024, warmup_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="measured seconds per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", metavar="REF", help="also run the agent of this commit")
    args = parser.parse_args()
    trees: dict[str, list[tuple[float, float, float]]] = {"this tree": []}
    with tempfile.TemporaryDirectory() as tmp:
        code = None
        if args.baseline:
            code = Path(tmp) / "baseline"
            code.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.baseline, "labmeter"],
                check=True, capture_output=True,
            ).stdout  # fmt: skip
            subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True)
            trees = {f"baseline {args.baseline}": [], "this tree": []}
        broker = mosquitto(Path(tmp) / "mosquitto")
        broker.start()
        try:
            for run in range(args.runs):
                for name in trees:
                    tree = code if name.startswith("baseline") else None
                    trees[name].append(one_run(broker.port, Path(tmp), run, args.seconds, tree))
        finally:
            broker.stop()
    print(f"runs: {args.runs} x {args.seconds:.0f} s (after {WARMUP_S:.0f} s warm-up)")
    for name, results in trees.items():
        cpus, rss, warm = zip(*results, strict=True)
        print(f"{name}:")
        each = [round(c, 3) for c in cpus]
        print(f"  cpu % of one core: median {statistics.median(cpus):.3f}  runs {each}")
        each = [round(r, 1) for r in rss]
        print(f"  peak RSS MB:       median {statistics.median(rss):.1f}  runs {each}")
        print(f"  start-up CPU s:    median {statistics.median(warm):.2f}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (2 cores)")


if __name__ == "__main__":
    main()
