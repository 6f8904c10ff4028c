"""``labmeter agent check``: what the agent detects on this machine right now.

For the technician installing an agent: it shows sessions (pseudonymised, as they would be
published), idle time, the state the PC would be in, catalogued apps running, serial ports
and the queue, without connecting to the broker.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agent.identity import pseudonym
from agent.platform import current
from labmeter.config import Config


def _seconds(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.0f} s"


def sessions_table(config: Config) -> tuple[Table, str]:
    from agent.sources.pc.source import PcSource, classify

    cfg = config.agent
    source = PcSource(cfg)
    found = source.sessions()
    table = Table(title="Interactive sessions (logins shown only as pseudonyms)")
    for column in ("session", "user", "category", "idle", "locked", "remote", "active"):
        table.add_column(column)
    for s in found:
        table.add_row(
            s.id or "-",
            pseudonym(cfg.pseudonym_secret, s.login),
            cfg.categories.get(s.login, cfg.default_category),
            _seconds(s.idle_s),
            "yes" if s.locked else "no",
            "yes" if s.remote else "no",
            "yes" if s.active else "no",
        )
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
        f"catalogued apps running: {apps} (of {len(source.apps)} in the catalogue); busy: {busy}"
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


def run_check(config: Config, console: Console) -> int:
    """Print the report; 0 when the configuration is valid, 2 when it is not."""
    from labmeter.errors import ConfigError

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
        table, summary = sessions_table(config)
        console.print(table)
        console.print(summary)
    console.print(ports_table())
    queue = Path(cfg.queue_path)
    if queue.exists():
        from agent.queue import QueueBusy
        from agent.runner import open_queue

        try:
            opened = open_queue(config)
        except QueueBusy:
            console.print(f"queue {queue}: held by the running agent")
        else:
            waiting = f"{len(opened)} messages waiting, {opened.size_bytes} bytes"
            console.print(f"queue {queue}: {waiting}")
            opened.close()
    else:
        base = queue.resolve().parent
        while not base.exists():
            base = base.parent
        writable = "yes" if os.access(base, os.W_OK) else "NO"
        console.print(f"queue {queue}: not created yet (can be created under {base}: {writable})")
    return 0
