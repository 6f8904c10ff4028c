"""``labmeter bookings check|fetch``: what the technician runs after editing a calendar."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from labmeter.bookings import BookingError, Bookings, Defaults, check_file
from labmeter.config import Config
from labmeter.inventory import Inventory, InventoryError, load

err = Console(stderr=True, soft_wrap=True)


def _inventory(path: Path | None) -> Inventory | None:
    return load(path) if path is not None else None


def check(file: Path, inventory: Path | None, site: str, lab: str) -> int:
    """Every problem of FILE as file:line: message; 0 when there is none."""
    try:
        inv = _inventory(inventory)
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


def fetch(config: Config) -> int:
    """Fetch every feed once, keeping each new copy only if it passes every check."""
    if not config.bookings.sources:
        err.print("[red]bookings.sources is not set[/]")
        return 2
    try:
        inv = load(config.api.inventory) if config.api.inventory else None
        books = open_bookings(config, inv)
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


def open_bookings(config: Config, inventory: Inventory | None) -> Bookings:
    b = config.bookings
    return Bookings(
        Path(b.sources),
        inventory,
        Path(b.cache_dir) if b.cache_dir else None,
        timeout_s=b.timeout_s,
    )
