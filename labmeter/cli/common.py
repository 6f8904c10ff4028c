"""What every command shares: the config option and its loading, signals, logging, progress."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from labmeter import config as config_mod
from labmeter.cli.process import setup_logging as setup_logging
from labmeter.cli.process import stop_on_signals as stop_on_signals
from labmeter.errors import LabmeterError

err = Console(stderr=True, soft_wrap=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML config file", envvar="LABMETER_CONFIG")
]
MqttOpt = Annotated[str | None, typer.Option(help="mqtt://host:port or mqtts://host:port")]
InfluxOpt = Annotated[
    str | None, typer.Option(help="InfluxDB base URL, e.g. http://127.0.0.1:8086")
]


def load_config(path: Path | None, **overrides: Any) -> config_mod.Config:
    """The config file, then the environment, then ``overrides`` (``mqtt__url`` for
    ``mqtt.url``); a bad config, or a secret still holding an example's placeholder, exits 2
    naming the key."""
    try:
        config = config_mod.load(path, {k.replace("__", "."): v for k, v in overrides.items()})
        config_mod.refuse_placeholders(config)
        return config
    except LabmeterError as exc:
        err.print(f"[red]config error:[/] {exc}")
        raise typer.Exit(2) from exc


def progress_bar() -> Progress:
    """A stage's name, a bar when its total is known, the count and the time spent."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}"),
        TimeElapsedColumn(),
        console=err,
    )
