"""``labmeter collector`` and ``labmeter rollups rebuild``."""

from __future__ import annotations

from typing import Annotated

import typer

from labmeter.cli.common import (
    ConfigOpt,
    InfluxOpt,
    MqttOpt,
    err,
    load_config,
    setup_logging,
    stop_on_signals,
)
from labmeter.errors import LabmeterError
from labmeter.timeparse import parse_time

rollups_app = typer.Typer(help="The collector's rollups.", no_args_is_help=True)


def collector(
    config: ConfigOpt = None,
    mqtt_url: MqttOpt = None,
    influx_url: InfluxOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="subscriber processes on one shared subscription "
            "[default: one per core, at most 4]",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Subscribe to the broker and write every valid message to InfluxDB (ack after write)."""
    from labmeter.collector.workers import run_collector

    setup_logging(verbose)
    cfg = load_config(config, mqtt__url=mqtt_url, influx__url=influx_url)
    run_collector(cfg, workers, verbose, stop_on_signals())


@rollups_app.command("rebuild")
def rollups_rebuild(
    start: Annotated[str, typer.Option(help="RFC 3339 or epoch seconds")],
    end: Annotated[str, typer.Option(help="RFC 3339 or epoch seconds")],
    config: ConfigOpt = None,
) -> None:
    """Recompute daily rollups with collector.inventory (after its opening hours changed)."""
    from labmeter.collector.rebuild import rebuild

    cfg = load_config(config)
    try:
        start_ms, end_ms = parse_time(start), parse_time(end)
        if end_ms <= start_ms:
            raise ValueError("end must be after start")
        rebuild(cfg, start_ms, end_ms, err)
    except ValueError as exc:
        err.print(f"[red]rollups rebuild:[/] {exc}")
        raise typer.Exit(2) from exc
    except LabmeterError as exc:
        err.print(f"[red]rollups rebuild failed:[/] {exc}")
        raise typer.Exit(1) from exc
