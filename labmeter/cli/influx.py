"""``labmeter influx init``: the database or bucket, its retention, the 2.x mapping."""

from __future__ import annotations

from typing import Annotated

import typer

from labmeter.cli.common import ConfigOpt, InfluxOpt, err, load_config
from labmeter.errors import LabmeterError

influx_app = typer.Typer(help="InfluxDB set-up.", no_args_is_help=True)


@influx_app.command("init")
def influx_init(
    config: ConfigOpt = None,
    influx_url: InfluxOpt = None,
    retention_days: Annotated[
        int | None,
        typer.Option(
            help="days to keep data, 0 = forever (default: evidence.retention_years); shorter "
            "than the evidence retention only with evidence.archive_dir"
        ),
    ] = None,
) -> None:
    """1.x: the database and its retention policy. 2.x (influx.flavour = "v2"): the bucket
    with its retention, the DBRP mapping and a write token."""
    from labmeter.retention import initialise

    cfg = load_config(config, influx__url=influx_url)
    try:
        done, token = initialise(cfg, retention_days)
    except LabmeterError as exc:
        err.print(f"[red]influx init failed:[/] {exc}")
        raise typer.Exit(1) from exc
    err.print(done)
    if token is not None:
        print(token)  # the collector's write token: put it in influx.token
