"""``labmeter simulate`` and ``labmeter demo``: a simulated lab, alone or with everything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from labmeter.cli.common import ConfigOpt, MqttOpt, err, load_config, stop_on_signals
from labmeter.errors import LabmeterError
from labmeter.timeparse import parse_time


def simulate(
    config: ConfigOpt = None,
    mqtt_url: MqttOpt = None,
    devices: Annotated[int, typer.Option(min=1, max=2000, help="simulated devices")] = 10,
    hours: Annotated[float, typer.Option(min=0.02, help="simulated hours, ending at --end")] = 4.0,
    end: Annotated[
        str | None, typer.Option(help="end of the lab, RFC 3339 or epoch seconds (default: now)")
    ] = None,
    inventory: Annotated[
        Path | None,
        typer.Option(
            help="inventory whose opening hours the lab's plan follows (default: "
            "Monday to Friday 08:30-18:30 in Rome)"
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="random seed: same seed and end, same lab")] = 1,
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

    from labmeter.simulators import lab

    cfg = load_config(config, mqtt__url=mqtt_url)
    try:
        end_ms = parse_time(end) if end else None
        opening = lab.inventory_opening(inventory) if inventory else None
    except (ValueError, LabmeterError) as exc:
        err.print(f"[red]simulate:[/] {exc}")
        raise typer.Exit(2) from exc
    stop = stop_on_signals()
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
            end_ms=end_ms,
            opening=opening,
        )
    err.print(f"{len(result['devices'])} devices simulated; ground truth in {truth}")


def demo(
    devices: Annotated[int, typer.Option(min=1, max=200)] = 12,
    hours: Annotated[float, typer.Option(min=0.1, help="hours of history to backfill")] = 72.0,
    speed: Annotated[float, typer.Option(min=0, help="acceleration of the backfill")] = 7200.0,
    seed: int = 1,
    duration: Annotated[
        float | None, typer.Option(help="stop after this many seconds (default: until Ctrl-C)")
    ] = None,
) -> None:
    """Start mosquitto, influxd, a collector, the API and a simulated lab; stop all on Ctrl-C."""
    from labmeter.simulators.demo import run_demo

    try:
        run_demo(devices, hours, speed, seed, duration)
    except LabmeterError as exc:
        err.print(f"[red]demo cannot start:[/] {exc}")
        raise typer.Exit(1) from exc
