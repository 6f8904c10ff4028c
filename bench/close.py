"""Closing a year of the region: ``labmeter period close`` on the data set of ``bench/report.py``.

Loads 300 devices for one year (hourly rollups, the last two days raw, then rolled up and
derived into daily and monthly rollups by the collector's own code, as ``bench/report.py``'s
last stage), then closes the year ending at the last local midnight (in a data dir loaded
before, the whole local days of the window it holds) and prints the median of ``--runs``
closes (the closure and the package are removed between runs): time taken, CPU seconds of
this process and of influxd (on a loaded machine the wall time says little), points archived,
the package's size and its size per device-year; with ``--verify``, the time of one
``labmeter period verify`` of the last package.

    .venv/bin/python bench/close.py                        # its own influxd in a temp dir
    .venv/bin/python bench/close.py --keep-data /tmp/lm-close --runs 3 --verify
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report as region

from labmeter.archive.manifest import Trust, generate_key
from labmeter.collector.daily import backfill
from labmeter.config import ApiConfig, Config, EvidenceConfig, InfluxConfig
from labmeter.evidence.close import close_period
from labmeter.evidence.verify import verify
from labmeter.influx import InfluxV1
from labmeter.inventory import load as load_inventory
from labmeter.localstack import influxd, wait_compacted, wait_influx_ready
from labmeter.opening import OpeningHours


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-data", type=Path, help="influxd data dir to (re)use")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--verify", action="store_true", help="also time one verify")
    args = parser.parse_args()
    workdir = args.keep_data or Path(tempfile.mkdtemp(prefix="labmeter-close-"))
    workdir.mkdir(parents=True, exist_ok=True)
    # Fully compacted 5 s after the last write, as a deployment is hours after its last
    # rewrite: reads straight after a bulk load merge many files (2-3x the CPU).
    service = influxd(workdir / "influxd", cold_s=5)
    service.start()
    try:
        url = f"http://127.0.0.1:{service.port}"
        wait_influx_ready(url)
        influx = InfluxV1(InfluxConfig(url=url, database="bench", timeout_s=120))
        region.inventory_yaml(workdir / "inventory.yaml")
        inventory = load_inventory(workdir / "inventory.yaml")
        zone = ZoneInfo(inventory.timezone)
        marker = workdir / "loaded"
        if marker.exists():
            # A data dir loaded by bench/report.py (or an earlier run): close the whole local
            # days inside the window it holds, never reload it.
            loaded_from, loaded_to = map(int, marker.read_text().split())
            first = datetime.fromtimestamp(loaded_from / 1000, zone).date() + timedelta(days=1)
            start = datetime.combine(first, datetime.min.time(), zone)
            end = datetime.combine(
                datetime.fromtimestamp(loaded_to / 1000, zone).date(), datetime.min.time(), zone
            )
        else:
            today = datetime.now(zone).date()
            end = datetime.combine(today, datetime.min.time(), zone)
            start = end.replace(year=end.year - 1)
        start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        if not marker.exists():
            influx.query('CREATE DATABASE "bench" WITH SHARD DURATION 52w')
            raw_from = int((end - timedelta(days=region.RAW_DAYS)).timestamp() * 1000)
            t0 = time.perf_counter()
            points, _ = region.load(
                influx, region.generate(start_ms, raw_from, end_ms, random.Random(1))
            )
            region.roll_hours(influx, raw_from, end_ms)
            derived = backfill(influx, influx, start_ms, end_ms, "+", OpeningHours(inventory))
            print(
                f"loaded {points:,} points, rolled up and derived {derived:,} "
                f"in {time.perf_counter() - t0:.0f} s",
                flush=True,
            )
            marker.write_text(f"{start_ms} {end_ms}\n")
            print(f"influxd compacted in {wait_compacted(workdir / 'influxd'):.0f} s", flush=True)
        print(f"closing {start.date()} to {end.date()} ({(end - start).days} days)", flush=True)
        key = workdir / "signing.pem"
        if not key.exists():
            generate_key(key)
        archive = workdir / "archive"
        config = Config(
            influx=InfluxConfig(url=url, database="bench", timeout_s=120),
            api=ApiConfig(inventory=str(workdir / "inventory.yaml")),
            evidence=EvidenceConfig(archive_dir=str(archive), signing_key=str(key)),
        )
        times, sizes, cpus = [], [], []
        devices = len(region.devices())
        for run in range(args.runs):
            influx.query("DROP MEASUREMENT closed_period")
            shutil.rmtree(archive, ignore_errors=True)
            assert service.proc is not None
            ours, theirs = time.process_time(), region.cpu_seconds(service.proc.pid)
            closed = close_period(config, start_ms, end_ms)
            ours, theirs = time.process_time() - ours, region.cpu_seconds(service.proc.pid) - theirs
            size = _size(closed.folder)
            times.append(closed.seconds)
            sizes.append(size)
            cpus.append(ours + theirs)
            print(
                f"run {run + 1}: {closed.seconds:.1f} s, {closed.points:,} points, "
                f"{size / 1e6:.1f} MB; CPU {ours:.1f} s here + {theirs:.1f} s influxd "
                f"(load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
        (workdir / "closed").write_text(f"{start_ms} {end_ms}\n")  # bench/report.py times it
        typical = statistics.median(sizes)
        print(
            f"close of a year, {devices} devices: median {statistics.median(times):.1f} s "
            f"of {args.runs} ({statistics.median(cpus):.1f} CPU-s, so at best "
            f"{statistics.median(cpus) / 2:.0f} s on 2 idle cores); "
            f"package {typical / 1e6:.1f} MB = {typical / devices / 1e3:.1f} kB "
            f"per device-year (raw data: the last {region.RAW_DAYS} days only, the rest as "
            "rollups, as bench/report.py loads it)"
        )
        if args.verify:
            t0 = time.perf_counter()
            problems, signer = verify(closed.folder, Trust(key.with_suffix(".pub.pem")))
            print(
                f"verify: {time.perf_counter() - t0:.1f} s, "
                f"{'OK' if not problems else problems[:3]} ({signer})"
            )
        print(f"load average at the end: {os.getloadavg()[0]:.1f} (2 cores)")
        influx.close()
    finally:
        service.stop()


if __name__ == "__main__":
    main()
