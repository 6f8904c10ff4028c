"""The API under load: 20 concurrent clients on the demo's data, against a baseline in the same run.

Builds the demo's lab (``labmeter demo``: 12 devices in two labs, a week of history, seed 1,
``deploy/inventory.example.yaml``) through the real pipeline on its own Mosquitto and influxd:
the simulated agents publish, a collector writes and rolls up, as the demo does. Then it serves
the data with ``labmeter api`` as deployed (uvicorn, one process, the access log on), and with
``--baseline REF`` also that commit's API (its packages extracted to a temp dir, first on the
child's path; same venv, database, inventory and key). Per round, for each endpoint, each API
in turn gets ``--clients`` concurrent keep-alive HTTP/1.1 connections, each sending its next
request as soon as the previous answer is read, for ``--seconds`` after a one-second warm-up.
The sessions summary asks for the 24 hours before the last weekday noon (Tuesday to Friday, the
inventory's zone) of that week: whatever day the bench runs on, a window with the labs open on
both days and no whole day in it, whose sessions are found in raw samples and events, the
heavy case. It prints per endpoint and API: requests/s (rounds and median), p50 and p99
latency, errors (any status but 200, or a broken connection), and the CPU seconds per 1,000
requests of the API process and of influxd; then the ratios the targets name and the load
average.

    .venv/bin/python bench/api_load.py --baseline bdffcf9     # 3 rounds x 10 s per endpoint
    .venv/bin/python bench/api_load.py --rounds 1 --seconds 5  # a quick look, this tree only

The client is asyncio's streams with the request bytes written once and the answer parsed by
its Content-Length: a few microseconds per request, so that the API, not the meter, is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psutil

from labmeter.api.keys import KeyStore, Role
from labmeter.collector.service import Collector
from labmeter.config import CollectorConfig, Config, InfluxConfig, MqttConfig
from labmeter.influx import InfluxV1
from labmeter.inventory import load
from labmeter.localstack import free_port, stack
from labmeter.simulators import lab

ROOT = Path(__file__).resolve().parent.parent
INVENTORY = ROOT / "deploy" / "inventory.example.yaml"
ENDPOINTS = {
    "healthz": "/healthz",
    "occupancy": "/api/v1/occupancy",
    "sessions summary": "/api/v1/sessions/summary",
    "utilisation per lab": "/api/v1/utilisation?group_by=lab",
}


def busy_window(end_ms: int, zone: ZoneInfo) -> tuple[int, int]:
    """The 24 hours before the last weekday noon, Tuesday to Friday, before ``end_ms``."""
    noon = datetime.fromtimestamp(end_ms / 1000, zone).replace(
        hour=12, minute=0, second=0, microsecond=0
    )
    while noon.timestamp() * 1000 > end_ms or noon.weekday() not in (1, 2, 3, 4):
        noon -= timedelta(days=1)
    end = int(noon.timestamp() * 1000)
    return end - 86_400_000, end


def load_demo(config: Config, devices: int, hours: float, seed: int, end_ms: int) -> int:
    """The demo's lab up to ``end_ms``, written and rolled up by a collector; the messages
    published."""
    influx = InfluxV1(config.influx)
    influx.create_database()
    collector = Collector(config, influx, influx)
    collector.start()
    try:
        truth = lab.run(
            config.mqtt, devices=devices, hours=hours, seed=seed, speed=0, end_ms=end_ms,
            opening=lab.inventory_opening(str(INVENTORY)),
        )  # fmt: skip
        sent = int(truth.get("samples_published", 0))
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            rollups = collector.rollups
            idle = collector.drained(idle_s=2.0)
            if (
                idle
                and rollups is not None
                and not [h for h in rollups.pending() if h < end_ms - 3600_000]
            ):
                break
            time.sleep(1.0)
        return sent or collector.metrics.acked
    finally:
        collector.stop()
        influx.close()


def baseline_tree(ref: str, into: Path) -> Path:
    """The API of git ``ref``: its packages, with the roles moved under ``labmeter`` when the
    tree had them at the top (``bench/report.py``'s ``as_subpackage``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from report import as_subpackage

    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-tree", "--name-only", ref],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    roles = [p for p in ("api", "collector", "agent", "simulators") if p in listed]
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, *roles, "labmeter"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    for role in roles:
        as_subpackage(into, role)
    return into


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def pid(self) -> int:
        return self.proc.pid


@contextmanager
def api_server(name: str, toml: Path, workdir: Path, code: Path | None) -> Iterator[Server]:
    port = free_port()
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from labmeter.cli.main import app; app()",
         "api", "-c", str(toml), "--port", str(port)],
        stdout=(workdir / f"api-{name}.log").open("ab"), stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                asyncio.run(_one(port, "/healthz", ""))
                break
            except OSError:
                time.sleep(0.2)
        yield Server(name, proc, port)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


async def _one(port: int, path: str, token: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_request(path, token))
        status, _ = await _answer(reader)
        return status
    finally:
        writer.close()


def _request(path: str, token: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\nX-API-Key: {token}\r\n\r\n".encode()


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for header in lines[1:]:
        name, _, value = header.partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding":
            raise RuntimeError("chunked answers are not expected from the API")
    return status, await reader.readexactly(length)


@dataclass
class Phase:
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    api_cpu: float
    influxd_cpu: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _client(
    port: int, request: bytes, until: float, started: float, out: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            t0 = time.perf_counter()
            if t0 >= until:
                return
            writer.write(request)
            try:
                status, _ = await _answer(reader)
            except (OSError, asyncio.IncompleteReadError):
                errors.append(0)
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            if t0 >= started:  # after the warm-up
                out.append(time.perf_counter() - t0)
                if status != 200:
                    errors.append(status)
    finally:
        writer.close()


def phase(server: Server, path: str, token: str, clients: int, seconds: float, db: int) -> Phase:
    api, influxd = psutil.Process(server.pid), psutil.Process(db)

    def cpu(p: psutil.Process) -> float:
        t = p.cpu_times()
        return float(t.user + t.system)

    async def run() -> tuple[list[float], list[int], float, float, float]:
        request = _request(path, token)
        warm = time.perf_counter() + 1.0
        until = warm + seconds
        out: list[float] = []
        errors: list[int] = []
        tasks = [_client(server.port, request, until, warm, out, errors) for _ in range(clients)]
        gathering = asyncio.gather(*tasks)
        await asyncio.sleep(max(0.0, warm - time.perf_counter()))
        a0, d0 = cpu(api), cpu(influxd)
        await gathering
        return out, errors, cpu(api) - a0, cpu(influxd) - d0, time.perf_counter() - warm

    out, errors, api_cpu, db_cpu, elapsed = asyncio.run(run())
    return Phase(len(out), len(errors), elapsed, out, api_cpu, db_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="REF", help="also load the API of this commit")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured per phase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--devices", type=int, default=12)
    parser.add_argument("--hours", type=float, default=168.0)
    parser.add_argument("--only", default="", help="endpoints whose name contains this")
    args = parser.parse_args()
    endpoints = {k: v for k, v in ENDPOINTS.items() if args.only in k}
    with tempfile.TemporaryDirectory(prefix="labmeter-load-") as tmp:
        workdir = Path(tmp)
        with stack(workdir) as (broker, db):
            assert db.proc is not None
            config = Config(
                mqtt=MqttConfig(url=f"mqtt://127.0.0.1:{broker.port}"),
                influx=InfluxConfig(url=f"http://127.0.0.1:{db.port}", database="labmeter"),
                collector=CollectorConfig(
                    dead_letter_path=str(workdir / "deadletters.jsonl"),
                    inventory=str(INVENTORY),
                    rollup_grace_s=0.0,
                    rollup_settle_s=0.5,
                ),
            )
            t0 = time.perf_counter()
            end_ms = int(time.time()) // 60 * 60_000
            sent = load_demo(config, args.devices, args.hours, 1, end_ms)
            start, end = busy_window(end_ms, load(INVENTORY).tz)
            if "sessions summary" in endpoints:
                endpoints["sessions summary"] += f"?start={start // 1000}&end={end // 1000}"
            took = time.perf_counter() - t0
            print(f"demo's lab: {args.devices} devices, {args.hours:g} h, {sent:,} samples "
                  f"written and rolled up in {took:.0f} s", flush=True)  # fmt: skip
            keys = workdir / "keys.sqlite"
            _, token = KeyStore(keys).create("bench", Role.evaluator)
            toml = workdir / "server.toml"
            toml.write_text(
                f'[influx]\nurl = "{config.influx.url}"\ndatabase = "labmeter"\n'
                f'[api]\ninventory = "{INVENTORY}"\nkeys_path = "{keys}"\n'
            )
            trees: list[tuple[str, Path | None]] = [("this tree", None)]
            if args.baseline:
                code = baseline_tree(args.baseline, workdir / "baseline")
                trees.insert(0, (f"baseline {args.baseline}", code))
            with ExitStack() as started:
                running = [
                    (name, started.enter_context(api_server(f"api{n}", toml, workdir, code)))
                    for n, (name, code) in enumerate(trees)
                ]
                results = rounds(running, endpoints, token, args, db.proc.pid)
    report(results, [name for name, _ in trees], endpoints, args)


def rounds(
    servers: list[tuple[str, Server]],
    endpoints: dict[str, str],
    token: str,
    args: argparse.Namespace,
    db: int,
) -> dict[tuple[str, str], list[Phase]]:
    out: dict[tuple[str, str], list[Phase]] = {}
    for r in range(args.rounds):
        order = servers if r % 2 == 0 else servers[::-1]  # turns, so both see the same load
        for name, path in endpoints.items():
            for tree, server in order:
                p = phase(server, path, token, args.clients, args.seconds, db)
                out.setdefault((name, tree), []).append(p)
                print(f"round {r} {name:<20} {tree:<22} {p.rate:8.1f} req/s  p50 "
                      f"{p.pct(0.5) * 1000:7.1f} ms  p99 {p.pct(0.99) * 1000:7.1f} ms  "
                      f"errors {p.errors}", flush=True)  # fmt: skip
    return out


def report(
    results: dict[tuple[str, str], list[Phase]],
    trees: list[str],
    endpoints: dict[str, str],
    args: argparse.Namespace,
) -> None:
    print(f"\n{args.clients} clients, {args.seconds:g} s per phase, median of {args.rounds}:")
    print(f"{'endpoint':<20} {'API':<22} {'req/s (rounds)':<26} {'median':>8} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'errors':>6} {'API CPU-s/1k':>12} {'influxd CPU-s/1k':>16}")  # fmt: skip
    medians: dict[tuple[str, str], float] = {}
    for name in endpoints:
        for tree in trees:
            runs = results[(name, tree)]
            rate = statistics.median(p.rate for p in runs)
            medians[(name, tree)] = rate
            each = " / ".join(f"{p.rate:,.0f}" for p in runs)
            n = sum(p.requests for p in runs) / 1000
            print(
                f"{name:<20} {tree:<22} {each:<26} {rate:>8.1f} "
                f"{statistics.median(p.pct(0.5) for p in runs) * 1000:>8.1f} "
                f"{statistics.median(p.pct(0.99) for p in runs) * 1000:>8.1f} "
                f"{sum(p.errors for p in runs):>6} "
                f"{sum(p.api_cpu for p in runs) / n:>12.2f} "
                f"{sum(p.influxd_cpu for p in runs) / n:>16.2f}"
            )
    for tree in trees:
        health = medians.get(("healthz", tree))
        occupancy = medians.get(("occupancy", tree))
        if health and occupancy:
            print(f"{tree}: occupancy / healthz = {occupancy / health:.2f}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (2 cores)")


if __name__ == "__main__":
    main()
