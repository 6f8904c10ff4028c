"""``labmeter inventory check|import``: what the technician runs after editing the file (the
inventory, a server package, is imported when a command runs)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from labmeter.cli.common import err

inventory_app = typer.Typer(help="The inventory file: check it, import equipment from CSV.")


@inventory_app.command("check")
def check(file: Path) -> None:
    """Validate an inventory; each problem as file:line: message."""
    raise typer.Exit(_check(file))


@inventory_app.command("import")
def import_csv(
    csv_file: Path,
    into: Annotated[Path | None, typer.Option(help="inventory to merge into (rewritten)")] = None,
) -> None:
    """Equipment rows from a spreadsheet's CSV, as YAML on stdout or merged into --into."""
    raise typer.Exit(_import_csv(csv_file, into))


def _check(path: Path) -> int:
    from labmeter.inventory import InventoryError, load

    try:
        inv = load(path)
    except InventoryError as exc:
        for problem in exc.problems:
            err.print(problem, markup=False, highlight=False)
        err.print(f"[red]{len(exc.problems)} problem(s)[/]")
        return 1
    for warning in inv.warnings:
        err.print(warning, markup=False, highlight=False)
    err.print(
        f"{path}: ok — {len(inv.sites)} sites, {len(inv.labs)} labs, "
        f"{len(inv.equipment)} pieces of equipment, {len(inv.software)} software titles"
    )
    return 0


def _import_csv(csv_path: Path, into: Path | None) -> int:
    from labmeter.inventory import InventoryError, equipment_from_csv, merge_equipment, parse

    try:
        entries = equipment_from_csv(csv_path)
        base = into.read_text(encoding="utf-8") if into and into.exists() else ""
        text = merge_equipment(base, entries)
        if into is not None:
            parse(text, str(into))  # refuse to write an inventory that would not load
    except InventoryError as exc:
        for problem in exc.problems:
            err.print(problem, markup=False, highlight=False)
        return 1
    except OSError as exc:
        err.print(f"[red]cannot read:[/] {exc}")
        return 1
    if into is None:
        sys.stdout.write(text)
    else:
        into.write_text(text, encoding="utf-8")
        err.print(f"{len(entries)} rows merged into {into} (comments are not kept)")
    return 0
