"""``labmeter agent``: run the edge agent, check what it detects, the idle helper."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from labmeter.cli.common import (
    ConfigOpt,
    MqttOpt,
    err,
    load_config,
    setup_logging,
    stop_on_signals,
)
from labmeter.errors import ConfigError, LabmeterError

agent_app = typer.Typer(help="The edge agent: run it, or check what it detects.")


@agent_app.callback(invoke_without_command=True)
def agent(
    ctx: typer.Context,
    config: ConfigOpt = None,
    mqtt_url: MqttOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the edge agent on this PC or machine until stopped."""
    if ctx.invoked_subcommand is not None:
        return
    from labmeter.agent.runner import run_agent

    setup_logging(verbose)
    cfg = load_config(config, mqtt__url=mqtt_url)
    try:
        run_agent(cfg, stop_on_signals())
    except LabmeterError as exc:
        bad_config = isinstance(exc, ConfigError)
        err.print(f"[red]{'config' if bad_config else 'agent'} error:[/] {exc}")
        raise typer.Exit(2 if bad_config else 1) from exc


@agent_app.command("idle-helper")
def agent_idle_helper(
    folder: Annotated[Path, typer.Option("--dir", help="the agent's idle_dir")],
    poll_s: Annotated[float, typer.Option(min=0.2)] = 1.0,
) -> None:
    """Run in a user's desktop session: report its input idleness to the machine's agent."""
    from labmeter.agent.idle_helper import run_helper

    try:
        run_helper(folder, poll_s, stop_on_signals())
    except LabmeterError as exc:
        err.print(f"[red]idle helper error:[/] {exc}")
        raise typer.Exit(1) from exc


@agent_app.command("check")
def agent_check(config: ConfigOpt = None) -> None:
    """Print what the agent detects here now; without a config, also what the config must say."""
    from labmeter.agent.check import run_check

    raise typer.Exit(run_check(load_config(config), Console(), config))
