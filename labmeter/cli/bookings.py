"""``labmeter bookings check|fetch``: what the technician runs after editing a calendar.

The bookings and the inventory are server packages (httpx, icalendar, PyYAML): imported when a
command runs, so that the CLI of an agent-only install starts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from labmeter.cli.common import ConfigOpt, err, load_config
from labmeter.config import Config

bookings_app = typer.Typer(help="Bookings (iCalendar files and feeds, CSV): check, fetch.")


def _check(file: Path, inventory: Path | None, site: str, lab: str) -> int:
    """Every problem of FILE as file:line: message; 0 when there is none."""
    from labmeter.bookings import Defaults, check_file
    from labmeter.inventory import InventoryError, load

    try:
        inv = load(inventory) if inventory is not None else None
    except InventoryError as exc:
        for problem in exc.problems:
            err.print(problem, markup=False, highlight=False)
        return 2
    if inv is None:
        err.print("[yellow]no inventory: labs and devices are not checked (--inventory)[/]")
    problems, count = check_file(file, inv, Defaults(site=site, lab=lab))
    for problem in problems:
        err.print(problem, markup=False, highlight=False)
    if problems:
        err.print(f"[red]{len(problems)} problem(s)[/]")
        return 1
    what = f"{count} booking(s) or event(s)" if count else "every calendar it lists"
    err.print(f"{file}: ok — {what}")
    return 0


def _fetch(config: Config) -> int:
    """Fetch every feed once, keeping each new copy only if it passes every check."""
    from labmeter.bookings import BookingError, open_bookings
    from labmeter.inventory import InventoryError, load

    if not config.bookings.sources:
        err.print("[red]bookings.sources is not set[/]")
        return 2
    try:
        inv = load(config.api.inventory) if config.api.inventory else None
        books = open_bookings(config.bookings, inv)
    except (BookingError, InventoryError) as exc:
        for problem in exc.problems:
            err.print(problem, markup=False, highlight=False)
        return 1
    failed = 0
    for state in books.refresh():
        if state.error:
            failed += 1
            age = state.age_s(int(books.clock() * 1000))
            kept = f"last good copy {age / 3600:.1f} h old" if age is not None else "no copy yet"
            err.print(f"{state.name}: [red]{state.error}[/] ({kept})", highlight=False)
        else:
            err.print(f"{state.name}: fetched", highlight=False)
    return 1 if failed else 0


@bookings_app.command("check")
def check(
    file: Path,
    inventory: Annotated[
        Path | None, typer.Option(help="inventory whose labs and devices bookings must name")
    ] = None,
    site: Annotated[str, typer.Option(help="site of events that do not say theirs")] = "",
    lab: Annotated[str, typer.Option(help="lab of events that do not say theirs")] = "",
    config: ConfigOpt = None,
) -> None:
    """Validate a calendar (.ics), a CSV of bookings or a sources file; file:line problems."""
    if inventory is None and config is not None:
        found = load_config(config).api.inventory
        inventory = Path(found) if found else None
    raise typer.Exit(_check(file, inventory, site, lab))


@bookings_app.command("fetch")
def fetch(config: ConfigOpt = None) -> None:
    """Fetch every feed of bookings.sources once (the API does it every refresh_min)."""
    raise typer.Exit(_fetch(load_config(config)))
