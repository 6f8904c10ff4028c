"""``labmeter demo``: a whole simulated lab on real Mosquitto and InfluxDB child processes."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table

from api.keys import KeyStore, Role
from api.main import create_app
from collector.service import Collector
from labmeter.config import ApiConfig, CollectorConfig, Config, InfluxConfig, MqttConfig
from labmeter.influx import InfluxV1
from labmeter.localstack import free_port, stack
from simulators import lab

console = Console()
# The example inventory matches the simulated lab (12 devices); a source checkout has it.
INVENTORY = Path(__file__).parents[1] / "deploy" / "inventory.example.yaml"


def _serve_api(config: Config) -> tuple[uvicorn.Server, threading.Thread]:
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
    return server, thread


def _show(api: str, hours: float, headers: dict[str, str]) -> None:
    occupancy = httpx.get(f"{api}/api/v1/occupancy", headers=headers, timeout=10).json()
    table = Table(title=f"Occupancy now ({api}/api/v1/occupancy)")
    for col in ("site", "lab", "device", "state", "last seen"):
        table.add_column(col)
    for row in occupancy:
        table.add_row(row["site"], row["lab"], row["device"], row["state"], row["last_seen"] or "-")
    console.print(table)
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
        "open h: the labs' opening hours in deploy/inventory.example.yaml, summed over their "
        "devices; utilisation = in use within them / open h. The simulated lab also works at "
        "night: that use is 'after h'. '-' = no opening hours in the window"
    )


def run_demo(devices: int, hours: float, speed: float, seed: int, duration: float | None) -> None:
    """Backfill ``hours`` of a simulated lab at ``speed``x, then keep it live until Ctrl-C."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    with tempfile.TemporaryDirectory(prefix="labmeter-demo-") as tmp:
        workdir = Path(tmp)
        console.print(f"[bold]labmeter demo[/] — starting mosquitto and influxd in {workdir}")
        with stack(workdir) as (broker, db):
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
            influx = InfluxV1(config.influx)
            influx.create_database()
            collector = Collector(config, influx, influx)  # reader: hourly rollups on
            collector.start()
            server, api_thread = _serve_api(config)
            api = f"http://{config.api.host}:{config.api.port}"
            console.print(f"  MQTT broker  mqtt://127.0.0.1:{broker.port}")
            console.print(f"  InfluxDB     {config.influx.url} (database labmeter)")
            console.print(f"  API          {api}/docs")
            console.print(f"  API key      {token}  (evaluator; header X-API-Key)")
            console.print(f"  board        {api}/board?key={token}")
            console.print(f"  report       {api}/api/v1/report?format=html&key={token}")
            console.print(f"  occupancy    {api}/api/v1/occupancy")
            console.print(f"  utilisation  {api}/api/v1/utilisation?group_by=lab")
            stop = threading.Event()

            sim = threading.Thread(
                target=lab.run,
                kwargs={
                    "mqtt": config.mqtt,
                    "devices": devices,
                    "hours": hours,
                    "seed": seed,
                    "speed": speed,
                    "truth_path": workdir / "truth.json",
                    "live": True,
                    "stop": stop,
                },
                name="simulated-lab",
                daemon=True,
            )
            sim.start()
            backfill_s = hours * 3600 / speed if speed > 0 else 5.0
            console.print(
                f"Simulating {devices} devices: {hours:g} h of history at {speed:g}x "
                f"(~{backfill_s:.0f} s), then live. Ctrl-C stops everything."
            )
            started = time.monotonic()
            try:
                stop.wait(backfill_s + 3)
                _show(api, hours, {"X-API-Key": token})
                console.print(
                    f"collector: {collector.metrics.received} messages received, "
                    f"{collector.metrics.written_lines} lines written, "
                    f"{sum(collector.dead_letters.counts.values())} dead letters"
                )
                while duration is None or time.monotonic() - started < duration:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                console.print("stopping…")
            finally:
                stop.set()
                sim.join(30)
                collector.stop()
                server.should_exit = True
                api_thread.join(10)
                influx.close()
        console.print("stopped: mosquitto, influxd, collector, API and the simulated lab")
