"""Region-sized benchmark of the report and the main endpoints on a real influxd.

Loads 300 devices (10 ITS sites x 3 labs x 10 devices) for one year: hourly rollup points
(the collector's schema) for every weekday hour 06-18 UTC up to two days ago, and raw one-minute
samples (with app usage) for the last two days, written as line protocol in big batches. Then
times the yearly report (JSON, HTML, PDF) and the main endpoints through the real API app, and
prints the median of 3 runs of each, in stages: as loaded; after the collector's own code
(``collector.rollups.rollup_lines``) rolled up the raw hours, as a running collector would
have; after deriving the daily and monthly rollups from the hourly ones with the collector's
own code (``collector.daily.backfill``); then the ratio of the first and the last stage. With
``--keep-data``, stages already done are not redone (only the last one is measured). With
``--baseline REF``, the API code of that git commit is timed too, on the same server and data,
in a child process taking turns with this tree request by request, so that a change is
measured before and after in one run under the same load.

With a data dir in which ``bench/close.py`` closed the whole local days of the year, it also
times that closed year's report in each format (answered from its evidence package). With
``--catch-up`` (a data dir of its own), it stops after the hourly rollups and times the yearly
report before and after the collector's own catch-up of the days (``collector/catchup.py``),
and says whether the figures are the same.

    .venv/bin/python bench/report.py             # starts its own influxd in a temp dir
    .venv/bin/python bench/report.py --keep-data /tmp/lm-bench   # reuse a loaded data dir
    .venv/bin/python bench/report.py --keep-data /tmp/lm-bench --only report --baseline main
    .venv/bin/python bench/close.py --keep-data /tmp/lm-bench --runs 1   # then: the closed year
    .venv/bin/python bench/report.py --keep-data /tmp/lm-hourly --only occupancy --catch-up
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

import labmeter.api  # in --baseline's child, from the baseline's tree (the child's path says so)
from labmeter.api.keys import KeyStore, Role
from labmeter.api.main import create_app
from labmeter.collector.daily import backfill
from labmeter.collector.rollups import rollup_lines
from labmeter.config import ApiConfig, Config, InfluxConfig
from labmeter.influx import InfluxV1
from labmeter.inventory import load as load_inventory
from labmeter.localstack import influxd, wait_influx_ready
from labmeter.opening import OpeningHours

SITES = [f"its-{i:02d}" for i in range(1, 11)]
LABS = {"lab-cad": "pc", "lab-ele": "pc", "lab-fab": None}
MACHINES = ("cnc", "printer3d", "laser")
APPS = ("solidworks", "autocad", "matlab", "tia_portal")
CATEGORIES = ("its_student", "school", "company", "training_agency", "staff")
WEIGHTS = (50, 20, 12, 10, 8)
HOUR = 3600_000
RAW_DAYS = 2


def devices() -> list[tuple[str, str, str, str]]:
    out = []
    for site in SITES:
        for lab, kind in LABS.items():
            for n in range(1, 11):
                k = kind or MACHINES[n % 3]
                name = f"pc-{lab[4:]}-{n:02d}" if kind else f"{k}-{n:02d}"  # unique per site
                out.append((site, lab, name, k))
    return out


def inventory_yaml(path: Path) -> None:
    lines = ["version: 1", "timezone: Europe/Rome", "sites:"]
    lines += [f"  - {{id: {s}, patron_day: '06-24'}}" for s in SITES]
    lines.append("labs:")
    for site in SITES:
        for lab in LABS:
            lines.append(f"  - {{id: {lab}, site: {site}, hours: {{mon-fri: '08:00-19:00'}}}}")
    lines.append("equipment:")
    for site, lab, device, kind in devices():
        lines.append(
            f"  - {{id: {device}, site: {site}, lab: {lab}, kind: {kind}, fund: FESR, "
            f"cup: J19J21000120007, cost: 2500, purchased: 2025-01-10}}"
        )
    lines.append("software:")
    lines += [f"  - {{id: {app}, site: {s}, seats: 8}}" for s in SITES for app in APPS]
    path.write_text("\n".join(lines) + "\n")


def _tags(site: str, lab: str, device: str) -> str:
    return f"device={device},lab={lab},site={site}"


def generate(
    start_ms: int, raw_from_ms: int, end_ms: int, rng: random.Random
) -> Iterator[list[str]]:
    """Rollups before ``raw_from_ms``, raw samples after, on weekdays 06-18 UTC; hour by hour."""
    devs = devices()
    hour = start_ms
    while hour < end_ms:
        moment = datetime.fromtimestamp(hour / 1000, UTC)
        out: list[str] = []
        if moment.weekday() < 5 and 6 <= moment.hour < 19:
            running: dict[tuple[str, str], int] = {}
            for site, lab, device, kind in devs:
                busy = rng.random()
                category = rng.choices(CATEGORIES, WEIGHTS)[0]
                base = f"{_tags(site, lab, device)},kind={kind},category={category}"
                in_use = round(3600 * busy * 0.8, 1)
                observed = 3600.0 if busy > 0.05 else 1800.0
                idle = observed - in_use
                apps = rng.sample(APPS, k=1) if kind == "pc" and busy > 0.4 else []
                if hour < raw_from_ms:
                    out.append(
                        f"rollup_device_hourly,{base} in_use_s={in_use},idle_s={idle},setup_s=0.0,"
                        f"paused_s=0.0,alarm_s=0.0,off_s=0.0,observed_s={observed},samples=60i,"
                        f"in_use_h1_s={in_use / 2},observed_h1_s={observed / 2} {hour}"
                    )
                    for app in apps:
                        out.append(
                            f"rollup_app_hourly,app={app},{base.replace(f',kind={kind}', '')} "
                            f"running_s={in_use} {hour}"
                        )
                        running[(site, app)] = running.get((site, app), 0) + 1
                    continue
                per_min = round(in_use / 60, 3)
                idle_min = round(observed / 60 - per_min, 3)
                user = f"p_{rng.getrandbits(64):016x}"  # one user per device-hour
                for m in range(60):
                    t = hour + m * 60_000
                    out.append(
                        f"sample,{base} in_use_s={per_min},idle_s={idle_min},"
                        f"setup_s=0.0,paused_s=0.0,alarm_s=0.0,off_s=0.0,observed_s="
                        f'{observed / 60},interval_s=60.0,seq={t // 60_000}i,state="in_use",'
                        f'user="{user}" {t}'
                    )
                    for app in apps:
                        out.append(
                            f"app_usage,app={app},{base.replace(f',kind={kind}', '')} "
                            f"running_s={per_min} {t}"
                        )
            for (site, app), count in running.items():
                out.append(
                    f"rollup_app_concurrency_hourly,app={app},site={site} "
                    f"peak_seats={max(1, count // 2)}i,seat_hours={count / 2} {hour}"
                )
        yield out
        hour += HOUR


USERS_PER_LAB = 120  # a lab's population of pseudonyms (a few classes)


def session_rollups(influx: InfluxV1, start_ms: int, raw_from_ms: int, end_ms: int) -> str:
    """Daily session rollups for the days before the raw ones, as the collector would have
    written them from raw samples the bench does not keep (a weekday: 2-6 sessions per device,
    each a user of its lab's population and a category by the usual weights), then the months
    summed by the collector's own code. The days with raw samples keep what ``backfill``
    found in them. Imported here: ``--baseline``'s child loads this module from a tree
    without session rollups."""
    from labmeter.collector.sessions import SessionSums, join_users, month_lines
    from labmeter.influx import FieldValue, line
    from labmeter.schema import SESSION_TAGS, SESSIONS, USERS, Calendar, Period, sessions_rollup

    cal = Calendar("Europe/Rome")
    rng = random.Random(7)
    pools = {
        (site, lab): [f"p_{rng.getrandbits(64):016x}" for _ in range(USERS_PER_LAB)]
        for site in SITES
        for lab in LABS
    }
    name, points = sessions_rollup(Period.daily).name, 0
    day, last = cal.first_day_within(start_ms), cal.day_of(raw_from_ms)
    while day < last:
        lines = []
        summed = SessionSums()  # per asset and per lab, as the collector writes them
        if datetime.fromtimestamp(day / 1000, UTC).weekday() < 5:
            for site, lab, device, _kind in devices():
                begun: dict[str, list[str]] = defaultdict(list)
                for _ in range(rng.randint(2, 6)):
                    category = rng.choices(CATEGORIES, WEIGHTS)[0]
                    begun[category].append(rng.choice(pools[(site, lab)]))
                for category, users in sorted(begun.items()):
                    tags = dict(zip(SESSION_TAGS, (site, lab, device, category), strict=True))
                    fields: dict[str, FieldValue] = {
                        SESSIONS: len(users),
                        USERS: join_users(set(users)),
                    }
                    lines.append(line(name, tags, fields, day))
                    summed.add(tags, day, len(users), set(users))
        lines += summed.lines(Period.daily)
        influx.write_lines(lines)
        points += len(lines)
        day = cal.next_day(day)
    month = cal.month_of(start_ms)
    while month < end_ms:
        months = month_lines(influx, month, "+", cal)
        influx.write_lines(months)
        points += len(months)
        month = cal.next_month(month)
    return f"{points:,}"


def load(influx: InfluxV1, hours: Iterator[list[str]], batch: int = 50_000) -> tuple[int, float]:
    """Write in big batches as the data is generated; return (points, seconds writing)."""
    pending: list[str] = []
    points, writing = 0, 0.0
    for lines in hours:
        pending += lines
        if len(pending) >= batch:
            t0 = time.perf_counter()
            influx.write_lines(pending)
            writing += time.perf_counter() - t0
            points += len(pending)
            pending = []
    t0 = time.perf_counter()
    influx.write_lines(pending)
    return points + len(pending), writing + time.perf_counter() - t0


def roll_hours(influx: InfluxV1, start_ms: int, end_ms: int) -> str:
    """Hourly rollups of the raw hours, by the collector's own code (``rollup_lines``)."""
    points = 0
    for hour in range(start_ms, end_ms, HOUR):
        lines = rollup_lines(influx, hour, "+")
        influx.write_lines(lines)
        points += len(lines)
    return f"{points:,}"


def median_of_3(client: TestClient, path: str, params: dict[str, str | int]) -> float:
    return statistics.median(time_one(client, path, params)[0] for _ in range(3))


def measure(
    client: TestClient, title: str, cases: list[tuple[str, str, dict[str, str | int]]]
) -> dict[str, float]:
    print(f"{title:<44} {'median of 3':>12}")
    times = {}
    for name, path, params in cases:
        times[name] = median_of_3(client, path, params)
        print(f"{name:<44} {times[name]:>10.3f} s", flush=True)
    return times


def app_client(url: str, workdir: Path) -> TestClient:
    """The real API app (auth included) over the bench's inventory and database."""
    inventory_yaml(workdir / "inventory.yaml")
    config = Config(
        influx=InfluxConfig(url=url, database="bench", timeout_s=120),
        api=ApiConfig(inventory=str(workdir / "inventory.yaml"), keys_path=str(workdir / "k.db")),
    )
    if hasattr(config.api, "share_s"):  # each request reads for itself: no request shares
        config = replace(config, api=replace(config.api, share_s=0.0, live_s=0.0))
    _, token = KeyStore(config.api.keys_path).create("bench", Role.evaluator)
    return TestClient(create_app(config), headers={"X-API-Key": token})


def requests(
    start_ms: int, end_ms: int, only: str, closed: tuple[int, int] | None = None
) -> list[tuple[str, str, dict[str, str | int]]]:
    year = {"start": start_ms // 1000, "end": end_ms // 1000}
    cases: list[tuple[str, str, dict[str, str | int]]] = [
        ("yearly report, JSON", "/api/v1/report", {**year, "format": "json"}),
        ("yearly report, HTML", "/api/v1/report", {**year, "format": "html"}),
        ("yearly report, XLSX", "/api/v1/report", {**year, "format": "xlsx"}),
        ("yearly report, PDF", "/api/v1/report", {**year, "format": "pdf"}),
        ("utilisation per device, year", "/api/v1/utilisation", year),
        ("utilisation per lab per month", "/api/v1/utilisation",
         {**year, "group_by": "lab", "every": "month"}),
        ("utilisation per site per week", "/api/v1/utilisation",
         {**year, "group_by": "site", "every": "week"}),
        ("openness, year", "/api/v1/openness", year),
        ("software licences, year", "/api/v1/software", year),
        ("occupancy, live", "/api/v1/occupancy", {}),
        ("sessions, last day (raw)", "/api/v1/sessions",
         {"start": end_ms // 1000 - 86400, "end": end_ms // 1000}),
    ]  # fmt: skip
    if closed is not None:  # bench/close.py closed the data's whole local days
        period = {"start": closed[0] // 1000, "end": closed[1] // 1000}
        cases += [
            (f"closed year's report, {fmt.upper()}", "/api/v1/report", {**period, "format": fmt})
            for fmt in ("json", "html", "xlsx", "pdf")
        ]
    return [case for case in cases if only in case[0]]


def closed_window(workdir: Path) -> tuple[int, int] | None:
    """The period ``bench/close.py`` closed in this data dir, as ``closed`` records it."""
    marker = workdir / "closed"
    if not marker.exists():
        return None
    start_ms, end_ms = map(int, marker.read_text().split())
    return start_ms, end_ms


def time_one(client: TestClient, path: str, params: dict[str, str | int]) -> tuple[float, float]:
    """Wall seconds of one request and the CPU seconds this process (the API) spent on it."""
    t0, c0 = time.perf_counter(), time.process_time()
    response = client.get(path, params=params)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return elapsed, cpu


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve_timings(url: str, workdir: Path, only: str) -> None:
    """--baseline's child: time the request named on each stdin line, print wall and CPU."""
    start_ms, end_ms = map(int, (workdir / "loaded").read_text().split())
    client = app_client(url, workdir)
    found = requests(start_ms, end_ms, only, closed_window(workdir))
    cases = {name: (path, params) for name, path, params in found}
    print(f"baseline code: {Path(labmeter.api.__file__).parent}", flush=True)
    for name in sys.stdin:
        print(*time_one(client, *cases[name.strip()]), flush=True)


def as_subpackage(tree: Path, role: str) -> None:
    """A baseline's top-level role package moved under ``labmeter`` with its imports
    rewritten, so that this script imports the same names from either layout."""
    (tree / role).rename(tree / "labmeter" / role)
    imports = re.compile(rf"^(\s*)(from|import) {role}(\.|\s)", re.M)
    for path in (tree / "labmeter").rglob("*.py"):
        text = path.read_text()
        rewritten = imports.sub(rf"\1\2 labmeter.{role}\3", text)
        if rewritten != text:
            path.write_text(rewritten)


def compare(ref: str, client: TestClient, url: str, db_pid: int, workdir: Path, only: str) -> None:
    """Before/after: the API code of git ``ref`` (its packages extracted to a temp dir, first
    on a child's path; same script, venv and server) and this tree take turns request by
    request, so that both see the same load; a first round warms both up, then median of 3.

    Wall time depends on the load of a shared machine; CPU seconds much less, so each request
    also reports those of the API process and of influxd (the Python and the database cost).
    """
    start_ms, end_ms = map(int, (workdir / "loaded").read_text().split())
    cases = requests(start_ms, end_ms, only, closed_window(workdir))
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="labmeter-baseline-") as tmp:
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-tree", "--name-only", ref],
            check=True, capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        roles = [p for p in ("api", "collector") if p in listed]  # a tree before labmeter.*
        archive = subprocess.run(
            ["git", "-C", str(root), "archive", ref, *roles, "labmeter"],
            check=True, capture_output=True,
        ).stdout  # fmt: skip
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        for role in roles:
            as_subpackage(Path(tmp), role)
        child = subprocess.Popen(
            [sys.executable, __file__, "--keep-data", str(workdir), "--only", only,
             "--influx-url", url],
            env={**os.environ, "PYTHONPATH": tmp}, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert child.stdin is not None and child.stdout is not None
        print(child.stdout.readline().strip(), flush=True)
        print(f"{'':<44} {'wall, API CPU, influxd CPU (s)':>36}")
        runs: dict[tuple[str, str], list[tuple[float, float, float]]] = defaultdict(list)
        for round_ in range(4):
            for name, path, params in cases:
                db0 = cpu_seconds(db_pid)
                child.stdin.write(name + "\n")
                child.stdin.flush()
                wall, cpu = map(float, child.stdout.readline().split())
                db1 = cpu_seconds(db_pid)
                old = (wall, cpu, db1 - db0)
                new = (*time_one(client, path, params), cpu_seconds(db_pid) - db1)
                for code, timing in (("before", old), ("after", new)):
                    print(f"round {round_} {code:<6} {name:<30} {_fmt(timing)}", flush=True)
                    if round_ > 0:
                        runs[(code, name)].append(timing)
        child.stdin.close()
        child.wait()
    print(f"before ({ref}) -> after (this tree), same data, same run, median of 3 (s):")
    print(f"{'':<30} {'wall':>17} {'API CPU':>17} {'influxd CPU':>17}")
    for name, _, _ in cases:
        cols = []
        for i in range(3):
            old = statistics.median(t[i] for t in runs[("before", name)])
            new = statistics.median(t[i] for t in runs[("after", name)])
            cols.append(f"{old:6.2f} -> {new:5.2f}")
        print(f"{name:<30} {'  '.join(cols)}")


def catch_up(
    client: TestClient, influx: InfluxV1, workdir: Path, opening: OpeningHours, db_pid: int
) -> None:
    """Hourly rollups only (a deployment from before daily rollups, or just upgraded): the
    yearly report, then the collector's own catch-up (``labmeter.collector.catchup``, here
    without its rests), then the report again, which must hold the same figures."""
    from labmeter.collector.catchup import REST, CatchUp
    from labmeter.collector.metrics import Metrics
    from labmeter.localstack import wait_compacted

    start_ms, end_ms = map(int, (workdir / "loaded").read_text().split())
    year = {"start": start_ms // 1000, "end": end_ms // 1000, "format": "json"}

    def report() -> tuple[float, float, float, dict[str, object]]:
        db0 = cpu_seconds(db_pid)
        t0, c0 = time.perf_counter(), time.process_time()
        response = client.get("/api/v1/report", params=year)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert response.status_code == 200, response.text[:300]
        figures = response.json()
        del figures["meta"]["generated_ms"], figures["meta"]["rolled_until_ms"]
        return wall, cpu, cpu_seconds(db_pid) - db0, figures

    def timed(title: str) -> dict[str, object]:
        runs = [report() for _ in range(3)]
        print(f"{title}: yearly report, JSON, median of 3: "
              f"{_fmt(tuple(statistics.median(r[i] for r in runs) for i in range(3)))} "
              "(wall, API CPU, influxd CPU s)", flush=True)  # fmt: skip
        return runs[-1][3]

    before = timed("hourly rollups only")
    catchup = CatchUp(influx, influx, Metrics(), site="+", opening=opening, rest=0.0)
    t0, c0, db0 = time.perf_counter(), time.process_time(), cpu_seconds(db_pid)
    days = 0
    while catchup.step(end_ms):
        days += 1
    took = time.perf_counter() - t0
    print(f"the collector's catch-up: {days} days in {took:.0f} s, "
          f"{time.process_time() - c0:.0f} CPU-s here + {cpu_seconds(db_pid) - db0:.0f} influxd "
          f"(resting {REST:g}x each step's time, a collector takes ~{took * (1 + REST):.0f} s)",
          flush=True)  # fmt: skip
    print(f"influxd compacted the shards in {wait_compacted(workdir / 'influxd'):.0f} s")
    after = timed("after the catch-up")
    # Sums of the same seconds through daily instead of hourly rollups differ in their last
    # bits: compared as ``labmeter period verify`` compares a package (1e-9 relative).
    from labmeter.evidence.verify import differences

    found = differences(before, after)
    print(f"figures before and after: {'the same' if not found else found[:5]}", flush=True)


def _fmt(timing: tuple[float, ...]) -> str:
    return "  ".join(f"{v:8.3f}" for v in timing)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-data", type=Path, help="influxd data dir to (re)use")
    parser.add_argument(
        "--shard-duration",
        default="52w",
        help="InfluxDB shard group duration of the database (1.x default for it: 7d)",
    )
    parser.add_argument(
        "--only", default="", help="measure only the requests whose name contains this text"
    )
    parser.add_argument("--baseline", metavar="REF", help="also time the API code of this commit")
    parser.add_argument(
        "--catch-up",
        action="store_true",
        help="hourly rollups only: time the yearly report before and after the collector's "
        "own catch-up of the days (a data dir of its own: no daily rollups are derived)",
    )
    parser.add_argument("--influx-url", help=argparse.SUPPRESS)  # --baseline's child: time only
    args = parser.parse_args()
    if args.influx_url:
        serve_timings(args.influx_url, args.keep_data, args.only)
        return
    from labmeter.localstack import wait_compacted  # not in --baseline's tree

    workdir = args.keep_data or Path(tempfile.mkdtemp(prefix="labmeter-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    loaded = (workdir / "loaded").exists()
    # Fully compacted 5 s after the last write, as a deployment is hours after its last
    # rewrite: reads straight after a bulk load merge many files (2-3x the CPU).
    service = influxd(workdir / "influxd", cold_s=5)
    service.start()
    try:
        url = f"http://127.0.0.1:{service.port}"
        wait_influx_ready(url)
        influx = InfluxV1(InfluxConfig(url=url, database="bench", timeout_s=120))
        if loaded:
            start_ms, end_ms = map(int, (workdir / "loaded").read_text().split())
        else:
            now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            end_ms = int(now.timestamp() * 1000)
            start_ms = int((now - timedelta(days=365)).timestamp() * 1000)
        raw_from = end_ms - RAW_DAYS * 24 * HOUR
        if not loaded:
            # Reads pay per series per shard: a year in 7-day shards is 53 times the work of
            # the same year in one 52-week shard (docs/api-and-report.md).
            influx.query(f'CREATE DATABASE "bench" WITH SHARD DURATION {args.shard_duration}')
            t0 = time.perf_counter()
            points, write_s = load(influx, generate(start_ms, raw_from, end_ms, random.Random(1)))
            print(
                f"loaded {points:,} points ({len(devices())} devices, 1 year of hourly rollups "
                f"+ {RAW_DAYS} days of raw samples) in {time.perf_counter() - t0:.1f} s "
                f"({write_s:.1f} s writing: {points / write_s:,.0f} points/s)",
                flush=True,
            )
            (workdir / "loaded").write_text(f"{start_ms} {end_ms}\n")
            print(f"influxd compacted in {wait_compacted(workdir / 'influxd'):.0f} s", flush=True)
        client = app_client(url, workdir)
        cases = requests(start_ms, end_ms, args.only, closed_window(workdir))
        opening = OpeningHours(load_inventory(workdir / "inventory.yaml"))  # the collector's split
        stages: list[tuple[str, Callable[[], str] | None]] = [
            ("as loaded: hourly rollups, raw last 2 days", None),
            ("+ collector rolled up the raw hours", lambda: roll_hours(influx, raw_from, end_ms)),
            (
                "+ daily and monthly rollups",
                lambda: (
                    f"{backfill(influx, influx, start_ms, end_ms, '+', opening):,}"
                    f" + sessions {session_rollups(influx, start_ms, raw_from, end_ms)}"
                ),
            ),
        ]
        if args.catch_up:
            stages = stages[:2]  # the collector's catch-up derives the days, not the bench
        measured: list[tuple[str, dict[str, float]]] = []
        for n, (stage, action) in enumerate(stages):
            marker = workdir / f"stage-{n}"
            if marker.exists():
                continue
            if action is not None:
                t0 = time.perf_counter()
                done = action()
                print(f"{stage}: {done} points in {time.perf_counter() - t0:.1f} s", flush=True)
                waited = wait_compacted(workdir / "influxd")
                print(f"influxd compacted the shards in {waited:.0f} s", flush=True)
            marker.write_text("done\n")
            measured.append((stage, measure(client, stage, cases)))
        if not measured and not args.baseline:  # every stage done: measure the data as kept
            measure(client, "data as kept", cases)
        if len(measured) > 1:
            (first, base), (last, final) = measured[0], measured[-1]
            print(f"ratio '{first}' / '{last}' (same run):")
            for name, seconds in final.items():
                ratio = base[name] / seconds
                print(f"{name:<44} {base[name]:>8.3f} s -> {seconds:>7.3f} s  {ratio:>5.1f}x")
        assert service.proc is not None
        if args.catch_up:
            catch_up(client, influx, workdir, opening, service.proc.pid)
        elif args.baseline:
            compare(args.baseline, client, url, service.proc.pid, workdir, args.only)
        print(f"load average at the end: {os.getloadavg()[0]:.1f} (2 cores)")
        influx.close()
    finally:
        service.stop()


if __name__ == "__main__":
    main()
