"""``labmeter apikey create|list|revoke``."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from labmeter.api.keys import KeyStore, Role
from labmeter.config import Config

out = Console()
err = Console(stderr=True, soft_wrap=True)


def create(config: Config, name: str, role: str) -> int:
    try:
        parsed = Role(role)
    except ValueError:
        err.print(f"[red]unknown role {role!r}[/] (viewer, evaluator, admin)")
        return 2
    key, token = KeyStore(config.api.keys_path).create(name, parsed)
    err.print(f"key {key.id} ({key.name}, {key.role.value}) — shown once, keep it safe:")
    out.print(token, markup=False, highlight=False)
    return 0


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M") if ts else "-"


def show(config: Config) -> int:
    table = Table("id", "name", "role", "created (UTC)", "revoked (UTC)")
    for k in KeyStore(config.api.keys_path).list():
        table.add_row(str(k.id), k.name, k.role.value, _when(k.created), _when(k.revoked))
    out.print(table)
    return 0


def revoke(config: Config, key_id: int) -> int:
    if KeyStore(config.api.keys_path).revoke(key_id):
        err.print(f"key {key_id} revoked")
        return 0
    err.print(f"[red]no active key {key_id}[/]")
    return 1
