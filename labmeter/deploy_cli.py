"""``labmeter deploy ...`` and ``labmeter grafana ...``: parse options, delegate, print."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from labmeter.errors import LabmeterError

deploy_app = typer.Typer(
    help="Broker accounts for devices and the collector.", no_args_is_help=True
)
grafana_app = typer.Typer(help="Grafana datasource and dashboards.", no_args_is_help=True)
err = Console(stderr=True)

PasswordFileOpt = Annotated[
    Path, typer.Option(help="mosquitto password file to update (created if missing)")
]
BrokerOpt = Annotated[
    str, typer.Option(help="broker URL the client will use", envvar="LABMETER_MQTT_URL")
]
CaOpt = Annotated[str, typer.Option(help="path of the lab CA certificate on the client")]
PasswordOpt = Annotated[
    str | None,
    typer.Option(
        help="password to set (default: a new random one)", envvar="LABMETER_MQTT_PASSWORD"
    ),
]


def _fail(what: str, exc: Exception) -> typer.Exit:
    err.print(f"[red]{what}:[/] {escape(str(exc))}")
    return typer.Exit(1)


@deploy_app.command("add-device")
def add_device(
    site: Annotated[str, typer.Option(help="site segment, e.g. its-prime")],
    lab: Annotated[str, typer.Option(help="lab segment, e.g. lab-cad")],
    device: Annotated[str, typer.Option(help="device segment, e.g. pc-01")],
    password_file: PasswordFileOpt,
    kind: Annotated[str, typer.Option(help="device kind: pc, cnc, printer3d, ...")] = "pc",
    broker_url: BrokerOpt = "mqtts://mqtt.lab.example:8883",
    ca_file: CaOpt = "/etc/labmeter/ca.crt",
    password: PasswordOpt = None,
    pseudonym_secret: Annotated[
        str | None, typer.Option(envvar="LABMETER_AGENT_PSEUDONYM_SECRET", help="site secret")
    ] = None,
) -> None:
    """Create the device's broker password and print its agent config (TOML) on stdout."""
    from labmeter.deploy import BrokerAccess
    from labmeter.deploy import add_device as run

    try:
        toml = run(
            password_file,
            BrokerAccess(broker_url, ca_file),
            site,
            lab,
            device,
            kind=kind,
            password=password,
            pseudonym_secret=pseudonym_secret,
        )
    except (LabmeterError, OSError) as exc:
        raise _fail("add-device failed", exc) from exc
    typer.echo(toml, nl=False)
    err.print(f"password set in {password_file}: reload the broker (SIGHUP) to apply it")


@deploy_app.command("add-collector")
def add_collector(
    password_file: PasswordFileOpt,
    broker_url: BrokerOpt = "mqtts://mosquitto:8883",
    ca_file: CaOpt = "/etc/labmeter/ca.crt",
    password: PasswordOpt = None,
) -> None:
    """Create the collector's broker password and print its [mqtt] section (TOML) on stdout."""
    from labmeter.deploy import BrokerAccess
    from labmeter.deploy import add_collector as run

    try:
        toml = run(password_file, BrokerAccess(broker_url, ca_file), password)
    except (LabmeterError, OSError) as exc:
        raise _fail("add-collector failed", exc) from exc
    typer.echo(toml, nl=False)
