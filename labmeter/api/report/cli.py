"""``labmeter report``: the same report from the command line, with a progress bar."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from labmeter.api.analysis import open_scope
from labmeter.api.plan import Filters
from labmeter.api.report.build import STEPS, Declared, build
from labmeter.api.report.formats import Format, filename, produce
from labmeter.api.report.texts import Lang
from labmeter.api.timeparse import parse_time
from labmeter.bookings_cli import open_bookings
from labmeter.config import Config
from labmeter.influx import InfluxV1
from labmeter.inventory import load
from labmeter.opening import OpeningHours

err = Console(stderr=True, soft_wrap=True)


def run(
    config: Config,
    start: str,
    end: str | None,
    fmt: str,
    lang: str,
    out: Path | None,
    filters: Filters,
) -> int:
    try:
        format_, lang_ = Format(fmt), Lang(lang)
        end_ms = parse_time(end) if end else int(time.time() * 1000)
        start_ms = parse_time(start)
    except ValueError as exc:
        err.print(f"[red]report:[/] {exc}")
        return 2
    inventory = load(config.api.inventory) if config.api.inventory else None
    influx = InfluxV1(config.influx)
    try:
        with Progress(console=err) as bar:
            task = bar.add_task("report", total=STEPS + 2)
            scope = open_scope(
                influx,
                OpeningHours(inventory),
                start_ms,
                end_ms,
                filters,
                int(time.time() * 1000),
            )
            bar.update(task, advance=1, description="scope")

            def progress(step: int, total: int, label: str) -> None:
                bar.update(task, completed=step + 1, description=label)

            books = open_bookings(config, inventory) if config.bookings.sources else None
            declared = Declared.of(books, start_ms, end_ms, config.bookings.no_show_below)
            data = build(scope, progress, declared)
            bar.update(task, description=f"rendering {format_.value}")
            body = produce(data, format_, lang_)
            bar.update(task, completed=STEPS + 2)
    finally:
        influx.close()
    path = out or Path(filename(data, format_, lang_))
    path.write_bytes(body)
    err.print(f"{path} ({len(body):,} bytes)")
    return 0
