"""``labmeter``: the root command and its subcommands, one module per area."""

from __future__ import annotations

import typer

from labmeter.cli import agent, api, collector, report, simulate
from labmeter.cli.bookings import bookings_app
from labmeter.cli.deploy import deploy_app, grafana_app
from labmeter.cli.influx import influx_app
from labmeter.cli.inventory import inventory_app
from labmeter.cli.keys import apikey_app
from labmeter.cli.period import period_app

app = typer.Typer(help="labmeter: measured usage of lab equipment.", no_args_is_help=True)
app.add_typer(agent.agent_app, name="agent")
app.command()(collector.collector)
app.command()(api.api)
app.command()(simulate.simulate)
app.command()(simulate.demo)
app.add_typer(influx_app, name="influx")
app.add_typer(collector.rollups_app, name="rollups")
app.add_typer(bookings_app, name="bookings")
app.add_typer(inventory_app, name="inventory")
app.add_typer(apikey_app, name="apikey")
app.command()(report.register)
app.command()(report.report)
app.add_typer(deploy_app, name="deploy")
app.add_typer(grafana_app, name="grafana")
app.add_typer(period_app, name="period")
