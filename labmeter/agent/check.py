"""``labmeter agent check``: what the agent detects on this machine right now.

For the technician installing an agent, who runs it first, before any config exists: without a
config file it shows what the machine offers the agent (sessions, pseudonymised under a
throwaway key; idle signals; catalogued apps; serial ports) and then what the config must still
say. With a config file it validates it and adds the state the PC would be in and the queue.
It never connects to the broker.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labmeter.agent.categories import Categories
from labmeter.agent.identity import pseudonym
from labmeter.agent.platform import Session, current
from labmeter.config import AgentConfig, Config, MqttConfig, Secret
from labmeter.contract import Topic
from labmeter.errors import ConfigError, PayloadRejected

# The PC source's commented sample config: its catalogue stands in until the site writes one.
EXAMPLE_CONFIG = Path(__file__).parent / "sources" / "pc" / "sample.toml"
# Machines on the network: the check connects and shows what the machine says now.
NETWORKED = ("opcua", "mtconnect", "ur", "s7")
MACHINE_WAIT_S = 8.0  # a connection, a first answer, perhaps a security handshake


def _seconds(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.0f} s"


def _categories(cfg: AgentConfig) -> Categories:
    return Categories(cfg.categories, cfg.default_category, current().groups)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


# One column per fact about a session: (heading, value). A new fact is one more entry.
SESSION_COLUMNS: list[tuple[str, Callable[[AgentConfig, Session], str]]] = [
    ("session", lambda cfg, s: s.id or "-"),
    ("user", lambda cfg, s: pseudonym(cfg.pseudonym_secret, s.login)),
    ("category", lambda cfg, s: _categories(cfg).of(s.login, s.domain)),
    ("idle", lambda cfg, s: _seconds(s.idle_s)),
    # x11, helper, logind, tty, ... or none: then the session's time is unknown.
    ("idle signal", lambda cfg, s: s.idle_signal),
    ("locked", lambda cfg, s: _yes(s.locked)),
    ("remote", lambda cfg, s: _yes(s.remote)),
    ("active", lambda cfg, s: _yes(s.active)),
]


def session_rows(cfg: AgentConfig, found: list[Session]) -> Table:
    table = Table(title="Interactive sessions (logins shown only as pseudonyms)")
    for heading, _ in SESSION_COLUMNS:
        table.add_column(heading)
    for s in found:
        table.add_row(*(escape(value(cfg, s)) for _, value in SESSION_COLUMNS))
    if not found:
        table.caption = "no interactive session now"
    return table


def sessions_table(cfg: AgentConfig, catalogue_from: str = "") -> tuple[Table, str]:
    """The sessions as the PC source sees them, and a summary: state, idle, catalogued apps."""
    from labmeter.agent.sources.pc.source import PcSource, classify

    source = PcSource(cfg)
    found = source.sessions()
    table = session_rows(cfg, found)
    source.scan()
    time.sleep(0.5)  # a second scan gives CPU deltas: which apps are busy
    source.scan()
    verdict = classify(found, cfg.idle_threshold_s, bool(source.busy_apps))
    state = verdict.state or "unknown (idle time not observable)"
    source.close()
    apps = ", ".join(sorted(source.running_apps)) or "none"
    busy = ", ".join(sorted(source.busy_apps)) or "none"
    summary = (
        f"state now: [bold]{state}[/] (idle threshold {cfg.idle_threshold_s} s)\n"
        f"own desktop input idle: {_seconds(current().input_idle_s())}\n"
        f"catalogued apps running: {apps} (of {len(source.apps)} in the catalogue"
        f"{catalogue_from}); busy: {busy}"
    )
    return table, summary


def ports_table() -> Table:
    from serial.tools import list_ports

    table = Table(title="Serial ports")
    for column in ("device", "description", "usb vid:pid", "serial number"):
        table.add_column(column)
    for port in sorted(list_ports.comports(), key=lambda p: p.device):
        vid_pid = f"{port.vid:04x}:{port.pid:04x}" if port.vid is not None else "-"
        table.add_row(port.device, port.description or "-", vid_pid, port.serial_number or "-")
    return table


def example_catalogue() -> dict[str, Any]:
    with EXAMPLE_CONFIG.open("rb") as f:
        apps: dict[str, Any] = tomllib.load(f)["agent"]["apps"]
    return apps


def still_missing(config: Config) -> list[tuple[str, str]]:
    """(key, what to write) for everything a working agent config still lacks."""
    cfg = config.agent
    out = []
    try:
        Topic(cfg.site, cfg.lab, cfg.device, "sample")
    except PayloadRejected:
        out.append(
            (
                "agent.site, agent.lab, agent.device",
                "required: where the device is, as in the inventory (each [a-z0-9_-], at most "
                '64 characters), e.g. site = "its-prime", lab = "lab-cad", device = "pc-01"',
            )
        )
    if len(cfg.pseudonym_secret) < 16:
        out.append(
            (
                "agent.pseudonym_secret",
                "required: the site's secret (at least 16 characters), the same on all its "
                "agents, rotated each reporting period",
            )
        )
    if config.mqtt.url == MqttConfig.url:
        out.append(
            (
                "mqtt.url, mqtt.ca_file, mqtt.username, mqtt.password",
                "the broker and this device's account: mqtts://<broker>:8883 "
                "(`labmeter deploy add-device` on the server prints them)",
            )
        )
    if not cfg.categories and cfg.source == "pc":
        out.append(
            (
                "agent.categories",
                f"login -> stakeholder category; without it every session counts as "
                f"{cfg.default_category!r} (agent.default_category)",
            )
        )
    if not cfg.apps and cfg.source == "pc":
        out.append(
            (
                "agent.apps.<title>",
                "licensed software to count: patterns = [executable names], seats = owned",
            )
        )
    if cfg.source == "s7" and not cfg.options.get("values"):
        out.append(
            (
                "agent.options.values",
                "data-block values that tell the machine's states apart; without them RUN "
                "counts as in use and STOP as idle (agent/sources/s7/sample.toml)",
            )
        )
    if cfg.source == "pc":
        out.append(
            (
                "agent.source, agent.options.port",
                "only for a machine: on a serial port grbl | marlin | clamp | modbus | badge | "
                "with_badge and the port; on the network opcua | mtconnect | ur | s7 and its "
                "address (agent/sources/<name>/sample.toml)",
            )
        )
    return out


def machine_now(
    cfg: AgentConfig, wait_s: float = MACHINE_WAIT_S
) -> tuple[Table, list[tuple[str, str]]]:
    """Connect to the configured machine as the agent would and show what it says now, and
    what the config lacks that only the machine can tell (no Machinery model, unmapped
    values)."""
    from labmeter.agent.sources import SOURCES

    source: Any = SOURCES[cfg.source](cfg)
    hints: list[tuple[str, str]] = []
    try:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            source.poll()
            seen = source.track.now
            if seen is not None and seen.state is not None:
                break
            time.sleep(0.1)
        seen = source.track.now
        error = getattr(source, "last_error", "")
        counters = dict(getattr(source, "counters", {}))
    finally:
        source.close()
    table = Table(title=f"The machine now ({cfg.source})")
    table.add_column("what")
    table.add_column("value")
    where = getattr(getattr(source, "settings", None), "endpoint_shown", None)
    where = where or getattr(source, "base", None) or getattr(source, "host", "")
    table.add_row("address", str(where))
    state = seen.state if seen is not None else None
    table.add_row("state", state or f"unobserved (nothing within {wait_s:g} s)")
    table.add_row("substate", (seen.substate if seen else None) or "-")
    table.add_row("program", (seen.program if seen else None) or "- (shown here, never published)")
    table.add_row("last error", error or "-")
    table.add_row("counters", ", ".join(f"{k} {v}" for k, v in counters.items()) or "-")
    if "OPC 40001-1" in error:
        hints.append(
            (
                "agent.options.tags",
                "this server has no OPC UA for Machinery model: map PLC tags to states and "
                'set model = "tags" (agent/sources/opcua/sample.toml)',
            )
        )
    if state is None and seen is not None and not error and counters.get("unmapped"):
        hints.append(
            ("agent.options.tags", "the machine answers, but no map gives its value a state")
        )
    return table, hints


def discover(config: Config, console: Console) -> int:
    """No config file yet: what this machine shows the agent, then what the config must say."""
    cfg = config.agent
    console.print(
        "No config file: what this machine shows the agent. Logins appear as pseudonyms under "
        "a throwaway key (not the site's), categories as the default."
    )
    catalogue_from = "" if cfg.apps else f": the example of {EXAMPLE_CONFIG.name} for PCs"
    probe = dataclasses.replace(
        cfg, pseudonym_secret=Secret(secrets.token_hex(16)), apps=cfg.apps or example_catalogue()
    )
    table, summary = sessions_table(probe, catalogue_from)
    console.print(table)
    console.print(summary)
    console.print(ports_table())
    missing = Table(title="What the config must still say")
    missing.add_column("key")
    missing.add_column("what to write")
    for key, what in still_missing(config):
        missing.add_row(escape(key), escape(what))
    console.print(missing)
    console.print(
        escape(
            "Write it to a TOML file (sections [mqtt] and [agent]; example: "
            f"{EXAMPLE_CONFIG}) and check it with: labmeter agent check -c agent.toml"
        )
    )
    return 0


def run_check(config: Config, console: Console, config_file: Path | None = None) -> int:
    """Print the report; 0 when the configuration is valid or absent, 2 when it is invalid."""
    if config_file is None:
        return discover(config, console)
    cfg = config.agent
    try:
        cfg.check()
    except ConfigError as exc:
        console.print(f"[red]config error:[/] {exc}")
        return 2
    console.print(
        f"agent {cfg.site}/{cfg.lab}/{cfg.device} (kind {cfg.kind}, source {cfg.source}), "
        f"broker {config.mqtt.url}"
    )
    if cfg.source == "pc":
        table, summary = sessions_table(cfg)
        console.print(table)
        console.print(summary)
    if cfg.source in NETWORKED:
        table, hints = machine_now(cfg)
        console.print(table)
        for key, what in still_missing(config) + hints:
            console.print(f"still missing: {escape(key)}: {escape(what)}")
    else:
        console.print(ports_table())
    queue = Path(cfg.queue_path)
    if queue.exists():
        from labmeter.agent.queue import QueueBusy
        from labmeter.agent.runner import open_queue

        try:
            opened = open_queue(config)
        except QueueBusy:
            console.print(f"queue {queue}: held by the running agent")
        else:
            waiting = f"{len(opened)} messages waiting, {opened.size_bytes} bytes"
            until = (
                "each until the collector confirms it is written"
                if opened.confirmed_by_collector
                else "each until the broker acknowledges it (no collector has confirmed a row yet)"
            )
            console.print(f"queue {queue}: {waiting}, {until}")
            opened.close()
    else:
        base = queue.resolve().parent
        while not base.exists():
            base = base.parent
        writable = "yes" if os.access(base, os.W_OK) else "NO"
        console.print(f"queue {queue}: not created yet (can be created under {base}: {writable})")
    return 0
