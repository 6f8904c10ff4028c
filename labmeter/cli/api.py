"""``labmeter api``: serve the read API."""

from __future__ import annotations

from typing import Annotated

import typer

from labmeter.cli.common import ConfigOpt, InfluxOpt, load_config


def api(
    config: ConfigOpt = None,
    influx_url: InfluxOpt = None,
    host: Annotated[str | None, typer.Option(help="listen address")] = None,
    port: Annotated[int | None, typer.Option(help="listen port")] = None,
) -> None:
    """Serve the read API (OpenAPI at /docs)."""
    from labmeter.server import serve

    serve(load_config(config, influx__url=influx_url, api__host=host, api__port=port))
