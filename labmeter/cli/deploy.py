"""``labmeter deploy ...`` and ``labmeter grafana ...``: parse options, delegate, print."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from labmeter.cli.common import err
from labmeter.errors import ConfigError, LabmeterError

deploy_app = typer.Typer(
    help="Broker accounts for devices and the collector.", no_args_is_help=True
)
grafana_app = typer.Typer(help="Grafana datasource and dashboards.", no_args_is_help=True)

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


@grafana_app.command("push")
def grafana_push(
    url: Annotated[str, typer.Option(help="Grafana base URL", envvar="GRAFANA_URL")],
    token: Annotated[
        str, typer.Option(help="Grafana service account token (Editor)", envvar="GRAFANA_TOKEN")
    ],
    influx_url: Annotated[
        str, typer.Option(help="InfluxDB URL as Grafana reaches it", envvar="LABMETER_INFLUX_URL")
    ],
    influx_database: Annotated[
        str, typer.Option(help="InfluxQL database (DBRP on 2.x)", envvar="LABMETER_INFLUX_DATABASE")
    ] = "labmeter",
    influx_version: Annotated[int, typer.Option(min=1, max=2, help="InfluxDB major version")] = 2,
    influx_token: Annotated[
        str | None, typer.Option(help="2.x read token", envvar="LABMETER_INFLUX_TOKEN")
    ] = None,
    influx_username: Annotated[
        str | None, typer.Option(help="1.x user", envvar="LABMETER_INFLUX_USERNAME")
    ] = None,
    influx_password: Annotated[
        str | None, typer.Option(help="1.x password", envvar="LABMETER_INFLUX_PASSWORD")
    ] = None,
    grafana_dir: Annotated[
        Path | None,
        typer.Option(help="labmeter's dashboards/grafana folder", envvar="LABMETER_GRAFANA_DIR"),
    ] = None,
) -> None:
    """Create or update labmeter's datasource and dashboards in a running Grafana, by uid."""
    from labmeter.grafana import GRAFANA_DIR, dashboard_payloads, datasource_payload, push

    given = {
        "LABMETER_INFLUX_URL": influx_url,
        "LABMETER_INFLUX_DATABASE": influx_database,
        "LABMETER_INFLUX_TOKEN": influx_token,
        "LABMETER_INFLUX_USERNAME": influx_username,
        "LABMETER_INFLUX_PASSWORD": influx_password,
    }
    folder = grafana_dir or GRAFANA_DIR
    try:
        payload = datasource_payload(
            influx_version, {k: v for k, v in given.items() if v is not None}, folder
        )
        dashboards = dashboard_payloads(folder)
        if not dashboards:
            raise ConfigError("grafana_dir", f"no dashboard JSON in {folder / 'dashboards'}")
        report = push(url, token, payload, dashboards)
    except LabmeterError as exc:
        raise _fail("grafana push failed", exc) from exc
    err.print(f"datasource {payload['uid']} {report.datasource}")
    for uid in report.dashboards:
        typer.echo(f"dashboard {uid} pushed")
