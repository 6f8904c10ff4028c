"""``labmeter apikey create|list|revoke``: tokens are made and shown here, locally, once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from labmeter.cli.common import ConfigOpt, err, load_config

apikey_app = typer.Typer(help="API keys with roles (viewer, evaluator, admin), stored hashed.")
out = Console()


@apikey_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="who or what uses the key")],
    role: Annotated[str, typer.Option(help="viewer | evaluator | admin")] = "viewer",
    config: ConfigOpt = None,
) -> None:
    """Create a key and print its token once (only its hash is stored)."""
    from labmeter.api.keys import KeyStore, Role

    try:
        parsed = Role(role)
    except ValueError as exc:
        err.print(f"[red]unknown role {role!r}[/] (viewer, evaluator, admin)")
        raise typer.Exit(2) from exc
    key, token = KeyStore(load_config(config).api.keys_path).create(name, parsed)
    err.print(f"key {key.id} ({key.name}, {key.role.value}) — shown once, keep it safe:")
    out.print(token, markup=False, highlight=False)


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M") if ts else "-"


@apikey_app.command("list")
def show(config: ConfigOpt = None) -> None:
    """List keys (id, name, role, created, revoked)."""
    from labmeter.api.keys import KeyStore

    table = Table("id", "name", "role", "created (UTC)", "revoked (UTC)")
    for k in KeyStore(load_config(config).api.keys_path).list():
        table.add_row(str(k.id), k.name, k.role.value, _when(k.created), _when(k.revoked))
    out.print(table)


@apikey_app.command("revoke")
def revoke(key_id: int, config: ConfigOpt = None) -> None:
    """Revoke a key by id."""
    from labmeter.api.keys import KeyStore

    if not KeyStore(load_config(config).api.keys_path).revoke(key_id):
        err.print(f"[red]no active key {key_id}[/]")
        raise typer.Exit(1)
    err.print(f"key {key_id} revoked")
