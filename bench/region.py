"""The regional report on a year of the simulated region: 10 sites of 18 PCs and 12 machines
(300 devices), a pilot site whose outside share rises by 0.2 from 1 September, one site whose
agents observe half of the days (``labmeter.simulators.region.bench_region``).

Loads its own influxd (52-week shards): the simulated samples as the hourly device, app and
seat rollups and the daily session rollups the collector would have written from them (a year
of raw samples would take hours to roll up), then the collector's own ``backfill`` for the
daily and monthly rollups per device, asset, lab and busy devices, and ``month_lines`` for the
monthly session rollups; waits until influxd has compacted. Then times, through the real API
app (auth included), the regional report as JSON and PDF (and the other formats) for the year,
with the pilot compared over 13 weeks before and 13 weeks after the change, and with the change
date splitting the year; median of 3 runs each, with the wall time and the CPU seconds of the
API process and of influxd, and the load average.

    .venv/bin/python bench/region.py                        # starts its own influxd in a temp dir
    .venv/bin/python bench/region.py --keep-data /tmp/lm-region   # reuse a loaded data dir
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from report import cpu_seconds, time_one  # bench/report.py, beside this script

from labmeter.api.keys import KeyStore, Role
from labmeter.api.main import create_app
from labmeter.config import ApiConfig, Config, InfluxConfig
from labmeter.influx import InfluxV1
from labmeter.localstack import influxd, wait_compacted, wait_influx_ready
from labmeter.simulators.region import Region, bench_region, inventory_yaml, write_rollups

YEAR = 2025
DAYS = 400  # the report covers 2025; January 2026 is rolled up too, as a year later it is


def load_region(influx: InfluxV1, region: Region, workdir: Path) -> None:
    """The year's rollups as the collector would have them."""
    t0 = time.perf_counter()
    influx.query('CREATE DATABASE "bench" WITH SHARD DURATION 52w')
    points = write_rollups(influx, region)
    print(f"loaded {points:,} rollup points in {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"influxd compacted in {wait_compacted(workdir / 'influxd'):.0f} s", flush=True)


def iso(region: Region, day: date) -> str:
    return datetime.combine(day, datetime.min.time(), region.calendar.zone).isoformat()


def cases(region: Region) -> list[tuple[str, dict[str, str]]]:
    year = {"start": iso(region, region.first), "end": iso(region, date(YEAR + 1, 1, 1))}
    change = region.change
    terms = {
        "pilot_site": region.pilot,
        "baseline": f"{iso(region, change - timedelta(weeks=13))}..{iso(region, change)}",
        "pilot": f"{iso(region, change)}..{iso(region, change + timedelta(weeks=13))}",
    }
    split = {"pilot_site": region.pilot, "change": iso(region, change)}
    out = [(f"regional report, 13+13 weeks, {f.upper()}", {**year, **terms, "format": f})
           for f in ("json", "pdf", "html", "xlsx", "csv")]  # fmt: skip
    out += [(f"regional report, year split, {f.upper()}", {**year, **split, "format": f})
            for f in ("json", "pdf")]  # fmt: skip
    out.append(("regional report, no comparison, JSON", {**year, "format": "json"}))
    out.append(("site report of the same year, JSON", {**year, "format": "json", "site": ""}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-data", type=Path, help="influxd data dir to (re)use")
    parser.add_argument("--only", default="", help="time only the requests naming this")
    args = parser.parse_args()
    workdir = args.keep_data or Path(tempfile.mkdtemp(prefix="labmeter-region-"))
    workdir.mkdir(parents=True, exist_ok=True)
    region = bench_region(first=date(YEAR, 1, 1), days=DAYS)
    (workdir / "inventory.yaml").write_text(inventory_yaml(region))
    service = influxd(workdir / "influxd", cold_s=5)
    service.start()
    try:
        url = f"http://127.0.0.1:{service.port}"
        wait_influx_ready(url)
        influx = InfluxV1(InfluxConfig(url=url, database="bench", timeout_s=300))
        if not (workdir / "loaded").exists():
            load_region(influx, region, workdir)
            (workdir / "loaded").write_text("done\n")
        config = Config(
            influx=InfluxConfig(url=url, database="bench", timeout_s=300),
            api=ApiConfig(
                inventory=str(workdir / "inventory.yaml"),
                keys_path=str(workdir / "k.db"),
                share_s=0.0,  # each request reads for itself: none shares another's scope
                live_s=0.0,
            ),
        )
        _, token = KeyStore(config.api.keys_path).create("bench", Role.evaluator)
        client = TestClient(create_app(config), headers={"X-API-Key": token})
        assert service.proc is not None
        print(f"load average at the start: {os.getloadavg()[0]:.1f} (2 cores)")
        print(f"{'request':<46} {'wall':>8} {'API CPU':>8} {'influxd CPU':>12}  (median of 3)")
        for name, params in cases(region):
            if args.only not in name:
                continue
            path = "/api/v1/report" if name.startswith("site report") else "/api/v1/region"
            params = {k: v for k, v in params.items() if v}
            time_one(client, path, params)  # a first run warms both up
            runs = []
            for _ in range(3):
                db0 = cpu_seconds(service.proc.pid)
                wall, cpu = time_one(client, path, params)
                runs.append((wall, cpu, cpu_seconds(service.proc.pid) - db0))
            med = [statistics.median(r[i] for r in runs) for i in range(3)]
            print(f"{name:<46} {med[0]:>7.2f}s {med[1]:>7.2f}s {med[2]:>11.2f}s", flush=True)
        print(f"load average at the end: {os.getloadavg()[0]:.1f} (2 cores)")
        influx.close()
    finally:
        service.stop()


if __name__ == "__main__":
    main()
