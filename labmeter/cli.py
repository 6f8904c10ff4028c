"""``labmeter``: one CLI, a subcommand per role. It parses and delegates; nothing else."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from labmeter import config as config_mod
from labmeter.errors import LabmeterError

app = typer.Typer(help="labmeter: measured usage of lab equipment.", no_args_is_help=True)
influx_app = typer.Typer(help="InfluxDB set-up.", no_args_is_help=True)
app.add_typer(influx_app, name="influx")
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML config file", envvar="LABMETER_CONFIG")
]
MqttOpt = Annotated[str | None, typer.Option(help="mqtt://host:port or mqtts://host:port")]
InfluxOpt = Annotated[
    str | None, typer.Option(help="InfluxDB base URL, e.g. http://127.0.0.1:8086")
]


def _load(path: Path | None, **overrides: Any) -> config_mod.Config:
    try:
        return config_mod.load(path, {k.replace("__", "."): v for k, v in overrides.items()})
    except LabmeterError as exc:
        err.print(f"[red]config error:[/] {exc}")
        raise typer.Exit(2) from exc


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


@app.command()
def agent(
    config: ConfigOpt = None,
    mqtt_url: MqttOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the edge agent on this PC or machine until stopped."""
    from agent.runner import run_agent

    _logging(verbose)
    cfg = _load(config, mqtt__url=mqtt_url)
    try:
        run_agent(cfg, _stop_on_signals())
    except LabmeterError as exc:
        err.print(f"[red]agent error:[/] {exc}")
        raise typer.Exit(1) from exc


@app.command()
def collector(
    config: ConfigOpt = None,
    mqtt_url: MqttOpt = None,
    influx_url: InfluxOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Subscribe to the broker and write every valid message to InfluxDB (ack after write)."""
    from collector.service import Collector
    from labmeter.influx import InfluxV1, make_writer

    _logging(verbose)
    cfg = _load(config, mqtt__url=mqtt_url, influx__url=influx_url)
    stop = _stop_on_signals()
    writer, reader = make_writer(cfg.influx), InfluxV1(cfg.influx)  # reads: InfluxQL /query
    service = Collector(cfg, writer, reader)
    service.start()
    stop.wait()
    service.stop()
    writer.close()
    reader.close()


@app.command()
def api(
    config: ConfigOpt = None,
    influx_url: InfluxOpt = None,
    host: Annotated[str | None, typer.Option(help="listen address")] = None,
    port: Annotated[int | None, typer.Option(help="listen port")] = None,
) -> None:
    """Serve the read API (OpenAPI at /docs)."""
    import uvicorn

    from api.main import create_app

    cfg = _load(config, influx__url=influx_url, api__host=host, api__port=port)
    uvicorn.run(create_app(cfg), host=cfg.api.host, port=cfg.api.port)


@app.command()
def simulate(
    config: ConfigOpt = None,
    mqtt_url: MqttOpt = None,
    devices: Annotated[int, typer.Option(min=1, max=2000, help="simulated devices")] = 10,
    hours: Annotated[float, typer.Option(min=0.02, help="simulated hours, ending now")] = 4.0,
    seed: Annotated[int, typer.Option(help="random seed: same seed, same lab")] = 1,
    speed: Annotated[
        float, typer.Option(min=0, help="time acceleration; 0 = as fast as possible")
    ] = 0,
    interval: Annotated[int, typer.Option(min=1, help="sample interval in seconds")] = 60,
    truth: Annotated[Path, typer.Option(help="where to write the ground truth JSON")] = Path(
        "truth.json"
    ),
) -> None:
    """Publish a simulated lab through the agent's real publishing path; write its ground truth."""
    from rich.progress import Progress

    from simulators import lab

    cfg = _load(config, mqtt__url=mqtt_url)
    stop = _stop_on_signals()
    with Progress(console=err) as bar:
        task = bar.add_task("simulating", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = lab.run(
            cfg.mqtt,
            devices=devices,
            hours=hours,
            seed=seed,
            speed=speed,
            interval_s=interval,
            truth_path=truth,
            stop=stop,
            progress=progress,
        )
    err.print(f"{len(result['devices'])} devices simulated; ground truth in {truth}")


@app.command()
def demo(
    devices: Annotated[int, typer.Option(min=1, max=200)] = 12,
    hours: Annotated[float, typer.Option(min=0.1, help="hours of history to backfill")] = 8.0,
    speed: Annotated[float, typer.Option(min=0, help="acceleration of the backfill")] = 2400.0,
    seed: int = 1,
    duration: Annotated[
        float | None, typer.Option(help="stop after this many seconds (default: until Ctrl-C)")
    ] = None,
) -> None:
    """Start mosquitto, influxd, a collector, the API and a simulated lab; stop all on Ctrl-C."""
    from simulators.demo import run_demo

    try:
        run_demo(devices, hours, speed, seed, duration)
    except LabmeterError as exc:
        err.print(f"[red]demo cannot start:[/] {exc}")
        raise typer.Exit(1) from exc


@influx_app.command("init")
def influx_init(config: ConfigOpt = None, influx_url: InfluxOpt = None) -> None:
    """1.x: create the database. 2.x (influx.flavour = "v2"): bucket, DBRP mapping, write token."""
    from labmeter.influx import InfluxV1, init_v2

    cfg = _load(config, influx__url=influx_url)
    influx = InfluxV1(cfg.influx)
    try:
        if cfg.influx.flavour == "v2":
            token = init_v2(cfg.influx)
            err.print(f"bucket {cfg.influx.bucket!r} mapped to database {cfg.influx.database!r}")
            print(token)  # the collector's write token: put it in influx.token
            return
        influx.create_database()
    except LabmeterError as exc:
        err.print(f"[red]influx init failed:[/] {exc}")
        raise typer.Exit(1) from exc
    err.print(f"database {cfg.influx.database!r} ready at {cfg.influx.url}")
