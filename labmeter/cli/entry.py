"""The ``labmeter`` command's entry: ``labmeter agent`` starts straight away, every other
command goes through typer (``main.py``).

typer 0.29 coerces every option through pydantic and prints through rich: some 15 MB that the
agent, the one command a lab PC runs, would hold for its whole life for three options
(bench/agent_footprint.py). So ``labmeter agent [-c FILE] [--mqtt-url URL] [-v]`` is parsed
here with argparse and delegates to the same runner; anything else (``--help``, ``check``,
``idle-helper``, a mistyped option) goes to typer, which says what it means.
"""

from __future__ import annotations

import argparse
import os
import sys


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["agent"]:
        parsed = _agent_args(args[1:])
        if parsed is not None:
            sys.exit(_run_agent(parsed))
    from labmeter.cli.main import app

    app()


def _agent_args(args: list[str]) -> argparse.Namespace | None:
    """The agent's own options, or None when ``args`` holds anything else."""
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    parser.add_argument("-c", "--config")
    parser.add_argument("--mqtt-url")
    parser.add_argument("-v", "--verbose", action="store_true")
    try:
        parsed, rest = parser.parse_known_args(args)
    except argparse.ArgumentError:
        return None
    return None if rest else parsed


def _run_agent(args: argparse.Namespace) -> int:
    """As ``labmeter.cli.agent.agent`` does: exit 2 for a bad config, 1 for a failed start."""
    from labmeter import config as config_mod
    from labmeter.agent.runner import run_agent
    from labmeter.cli.process import setup_logging, stop_on_signals
    from labmeter.errors import ConfigError, LabmeterError

    setup_logging(args.verbose)
    path = args.config or os.environ.get("LABMETER_CONFIG")
    overrides = {"mqtt.url": args.mqtt_url} if args.mqtt_url else {}
    try:
        config = config_mod.load(path, overrides)
        run_agent(config, stop_on_signals())
    except LabmeterError as exc:
        bad_config = isinstance(exc, ConfigError)
        print(f"{'config' if bad_config else 'agent'} error: {exc}", file=sys.stderr)
        return 2 if bad_config else 1
    return 0
