"""``labmeter demo``: a whole simulated lab on real Mosquitto and InfluxDB child processes.

Started in the order broker and database, API, collector, agents, and stopped in the reverse
order, so that each part still has what it writes to while it stops: the collector makes its
last write before InfluxDB goes. Mosquitto and influxd run in their own process groups, since a
Ctrl-C in the terminal goes to the whole foreground group and would stop them at the same
moment as the demo; SIGTERM and SIGHUP (the terminal closed) stop the demo like Ctrl-C.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table

from labmeter.api.keys import KeyStore, Role
from labmeter.api.plan import Filters
from labmeter.api.store import Store
from labmeter.collector.service import Collector
from labmeter.config import (
    ApiConfig,
    BookingsConfig,
    CollectorConfig,
    Config,
    InfluxConfig,
    MqttConfig,
)
from labmeter.influx import InfluxV1
from labmeter.localstack import free_port, stack
from labmeter.server import create_app
from labmeter.simulators import lab, region

console = Console()
# The example inventory matches the simulated lab (12 devices); a source checkout has it.
INVENTORY = Path(__file__).parents[2] / "deploy" / "inventory.example.yaml"


@contextlib.contextmanager
def _api(config: Config) -> Iterator[None]:
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config), host=config.api.host, port=config.api.port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def _collector(config: Config) -> Iterator[Collector]:
    influx = InfluxV1(config.influx)
    influx.create_database()
    collector = Collector(config, influx, influx)  # reader: hourly rollups on
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()
        influx.close()


@contextlib.contextmanager
def _agents(config: Config, workdir: Path, **run: Any) -> Iterator[threading.Thread]:
    """The simulated lab's agents: a backfill of the past at ``speed``x, then live."""
    stop = threading.Event()
    sim = threading.Thread(
        target=lab.run,
        kwargs={
            "mqtt": config.mqtt,
            "truth_path": workdir / "truth.json",
            "live": True,
            "stop": stop,
        }
        | run,
        name="simulated-lab",
        daemon=True,
    )
    sim.start()
    try:
        yield sim
    finally:
        stop.set()
        sim.join(30)


def _wait_live(config: Config, devices: int, sim: threading.Thread, timeout: float) -> None:
    """Return once ``devices`` devices have a sample recent enough to count as online.

    During the backfill the agents are connected but their newest samples are hours old, so
    the API rightly shows them offline; how long the backfill takes depends on the machine's
    load. This is the API's own test of "online" (a sample within ``stale_intervals``), asked
    of the raw samples so that a device with no sample yet does not pass it.
    """
    deadline = time.monotonic() + timeout
    influx = InfluxV1(config.influx)
    store = Store(influx)
    try:
        with console.status("backfilling the simulated lab's history…"):
            while sim.is_alive() and time.monotonic() < deadline:
                now_ms = time.time() * 1000
                live = sum(
                    1
                    for r in store.last_samples(Filters()).values()
                    if r["time"] + (1 + config.api.stale_intervals) * r["interval_s"] * 1000
                    >= now_ms
                )
                if live >= devices:
                    return
                time.sleep(1.0)
    finally:
        influx.close()


def _show_occupancy(api: str, headers: dict[str, str]) -> None:
    occupancy = httpx.get(f"{api}/api/v1/occupancy", headers=headers, timeout=10).json()
    table = Table(title=f"Occupancy now ({api}/api/v1/occupancy)")
    for col in ("site", "lab", "device", "state", "last seen"):
        table.add_column(col)
    for row in occupancy:
        table.add_row(row["site"], row["lab"], row["device"], row["state"], row["last_seen"] or "-")
    console.print(table)


def _show_utilisation(api: str, hours: float, headers: dict[str, str]) -> None:
    start = int(time.time() - hours * 3600 - 120)
    rows = httpx.get(
        f"{api}/api/v1/utilisation",
        params={"start": start, "group_by": "lab"},
        headers=headers,
        timeout=10,
    ).json()
    table = Table(
        title=f"Utilisation of the last {hours:g} h by lab ({api}/api/v1/utilisation?group_by=lab)"
    )
    for col in ("site", "lab", "devices", "in use h", "after h", "open h", "util.", "cover."):
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(
            row["site"],
            row["lab"],
            str(row["devices"]),
            f"{row['in_use_open_s'] / 3600:.1f}",
            f"{(row['after_hours_s'] or 0) / 3600:.1f}",
            f"{(row['available_s'] or 0) / 3600:.1f}",
            # None: no opening hours in the window (the lab was closed), not zero use.
            "-" if row["utilisation"] is None else f"{row['utilisation'] * 100:.1f} %",
            "-" if row["coverage"] is None else f"{row['coverage'] * 100:.1f} %",
        )
    console.print(table)
    console.print(
        "in use h: in use within opening hours; after h: in use outside them; open h: the "
        "labs' opening hours in deploy/inventory.example.yaml, summed over their devices; "
        "util. = in use h / open h; cover. = observed within opening hours / open h; "
        "'-' = no opening hours in the window"
    )


def _region_config(config: Config, workdir: Path) -> Config:
    """A second API over a simulated region of five sites (``simulators/region.py``), in a
    database of its own on the same influxd, with its inventory and bookings: the region's
    view needs several sites and months, where the live lab is one site of a few hours."""
    sim = region.small_region()
    inventory = workdir / "region.yaml"
    inventory.write_text(region.inventory_yaml(sim), encoding="utf-8")
    (workdir / "region-bookings.csv").write_text(sim.bookings_csv(sim.truth()), encoding="utf-8")
    sources = workdir / "region-bookings.yaml"
    sources.write_text("version: 1\ncalendars:\n  - {file: region-bookings.csv}\n")
    return dataclasses.replace(
        config,
        influx=dataclasses.replace(config.influx, database="region"),
        api=dataclasses.replace(config.api, port=free_port(), inventory=str(inventory)),
        bookings=BookingsConfig(sources=str(sources)),
    )


def _load_region(config: Config) -> threading.Thread:
    """The simulated region's rollups written in the background, while the lab backfills."""

    def load() -> None:
        influx = InfluxV1(config.influx)
        try:
            influx.create_database()
            region.write_rollups(influx, region.small_region())
        finally:
            influx.close()

    thread = threading.Thread(target=load, name="simulated-region", daemon=True)
    thread.start()
    return thread


def _show_region(api: str, headers: dict[str, str], token: str) -> None:
    """The region's page: the sites side by side, the flagged ones, the pilot before and after."""
    sim = region.small_region()
    day = sim.first
    params: dict[str, str | int] = {
        "start": sim.start_ms // 1000,
        "end": sim.end_ms // 1000,
        "pilot_site": sim.pilot,
        "change": sim.ms(sim.change) // 1000,
        "lang": "en",
    }
    found = httpx.get(f"{api}/api/v1/region", params=params, headers=headers, timeout=120).json()
    query = "&".join(f"{k}={v}" for k, v in params.items())
    table = Table(
        title=f"Region: {len(found['sites'])} simulated Foundations from {day:%d %b %Y}, "
        f"{sim.days} days ({api}/region?key={token}&{query})"
    )
    for col in ("site", "util.", "cover.", "outside", "users", "orgs", "rank"):
        table.add_column(col, justify="right")

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value * 100:.1f} %"

    for row in found["sites"]:
        table.add_row(
            row["site"],
            pct(row["utilisation"]),
            pct(row["coverage"]),
            pct(row["quota_esterna"]),
            str(row["users"]),
            str(row["organisations"]),
            str(row["rank_utilisation"] or "not ranked"),
        )
    console.print(table)
    apart = ", ".join(f"{a['site']} ({pct(a['coverage'])})" for a in found["ranking"]["apart"])
    console.print(
        f"not ranked, coverage below {pct(found['ranking']['min_coverage'])}: {apart or 'none'}"
    )
    c = found["comparison"]
    compared = Table(
        title=f"Before and after at {c['site']} (open lab from {sim.change:%d %b %Y}): "
        f"bootstrap over weeks, seed {c['seed']}, {c['resamples']} resamples, "
        f"{c['confidence'] * 100:.0f} % intervals"
    )
    for col in ("site", "role", "outside before", "after", "change", "interval"):
        compared.add_column(col, justify="right")
    for row in [*c["sites"], c["pooled"]]:
        q = row["quota_esterna"]
        d = q["delta"]
        compared.add_row(
            row["site"] or "controls",
            row["role"],
            pct(q["baseline"]),
            pct(q["pilot"]),
            pct(d["value"]),
            f"{pct(d['low'])} .. {pct(d['high'])}",
        )
    console.print(compared)
    did = c["did"]["quota_esterna"]
    console.print(
        f"difference in differences, outside share: {pct(did['value'])} "
        f"({pct(did['low'])} .. {pct(did['high'])}); the simulator injected "
        f"+{sim.effect * 100:.0f} % at {sim.pilot}"
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_demo(devices: int, hours: float, speed: float, seed: int, duration: float | None) -> None:
    """Backfill ``hours`` of a simulated lab at ``speed``x, then keep it live until Ctrl-C."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="labmeter-demo-") as tmp:
        workdir = Path(tmp)
        console.print(f"[bold]labmeter demo[/] — starting mosquitto and influxd in {workdir}")
        # Exits run in reverse: agents, collector, API, then broker and database.
        with contextlib.ExitStack() as running:
            try:
                broker, db = running.enter_context(stack(workdir, own_group=True))
                inventory = str(INVENTORY) if INVENTORY.exists() else ""
                config = Config(
                    mqtt=MqttConfig(url=f"mqtt://127.0.0.1:{broker.port}"),
                    influx=InfluxConfig(url=f"http://127.0.0.1:{db.port}", database="labmeter"),
                    collector=CollectorConfig(
                        dead_letter_path=str(workdir / "deadletters.jsonl"), inventory=inventory
                    ),
                    api=ApiConfig(
                        port=free_port(),
                        inventory=inventory,
                        keys_path=str(workdir / "apikeys.sqlite"),
                    ),
                )
                _, token = KeyStore(config.api.keys_path).create("demo", Role.evaluator)
                headers = {"X-API-Key": token}
                running.enter_context(_api(config))
                collector = running.enter_context(_collector(config))
                regional = _region_config(config, workdir)
                loading = _load_region(regional)
                running.enter_context(_api(regional))
                region_api = f"http://{regional.api.host}:{regional.api.port}"
                api = f"http://{config.api.host}:{config.api.port}"
                console.print(f"  MQTT broker  mqtt://127.0.0.1:{broker.port}")
                console.print(f"  InfluxDB     {config.influx.url} (database labmeter)")
                console.print(f"  API          {api}/docs")
                console.print(f"  API key      {token}  (evaluator; header X-API-Key)")
                console.print(f"  board        {api}/board?key={token}")
                console.print(f"  report       {api}/report?key={token}")
                shown = inventory or "none (not a source checkout): every half hour counts as open"
                console.print(f"  inventory    {shown}")
                console.print(f"  occupancy    {api}/api/v1/occupancy")
                console.print(f"  utilisation  {api}/api/v1/utilisation?group_by=lab")
                backfill_s = hours * 3600 / speed if speed > 0 else 5.0
                console.print(
                    f"Simulating {devices} devices: {hours:g} h of history at {speed:g}x "
                    f"(~{backfill_s:.0f} s), then live. Ctrl-C stops everything."
                )
                # The lab's plan of classes and bookings follows the inventory's hours.
                opening = lab.inventory_opening(inventory) if inventory else None
                sim = running.enter_context(
                    _agents(
                        config,
                        workdir,
                        devices=devices,
                        hours=hours,
                        seed=seed,
                        speed=speed,
                        opening=opening,
                    )
                )
                _wait_live(config, devices, sim, 4 * backfill_s + 120)
                _show_occupancy(api, headers)
                _show_utilisation(api, hours, headers)
                loading.join(300)
                _show_region(region_api, headers, token)
                console.print(
                    f"collector: {collector.metrics.received} messages received, "
                    f"{collector.metrics.written_lines} lines written, "
                    f"{sum(collector.dead_letters.counts.values())} dead letters. "
                    "The lab keeps running live."
                )
                while duration is None or time.monotonic() - started < duration:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
            console.print("stopping: agents, collector, API, then mosquitto and influxd")
    console.print(f"stopped ({time.monotonic() - started:.0f} s after start)")
