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
    collector_user: Annotated[
        str, typer.Option(help="1.x: a user for the collector (read and write, not admin)")
    ] = "",
    api_user: Annotated[str, typer.Option(help="1.x: a user for the API (read only)")] = "",
) -> None:
    """1.x: the database, its retention policy, and a user per role (run it with an admin's
    [influx] credentials). 2.x (influx.flavour = "v2"): the bucket with its retention, the
    DBRP mapping and a write token."""
    from labmeter.retention import initialise

    cfg = load_config(config, influx__url=influx_url)
    users = {r: n for r, n in (("collector", collector_user), ("api", api_user)) if n}
    try:
        done, token, made = initialise(cfg, retention_days, users)
    except LabmeterError as exc:
        err.print(f"[red]influx init failed:[/] {exc}")
        raise typer.Exit(1) from exc
    err.print(done)
    if token is not None:
        print(token)  # the collector's write token: put it in influx.token
    for user in made:
        if user.password is None:
            err.print(f"{user.role}: user {user.name!r} exists (password unchanged), privilege set")
            continue
        err.print(f"{user.role}: user {user.name!r} made; its [influx] credentials, shown once:")
        secret = user.password.reveal()
        print(f'# {user.role}\n[influx]\nusername = "{user.name}"\npassword = "{secret}"')
