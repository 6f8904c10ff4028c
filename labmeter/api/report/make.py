"""A report from a config or from its parts: the CLI, the evidence layer and the routes all
open it the same way."""

from __future__ import annotations

import time
from collections.abc import Callable

from labmeter.api.plan import Filters
from labmeter.api.report.build import Declared, build
from labmeter.api.report.model import Report
from labmeter.api.scope import open_scope
from labmeter.bookings import open_bookings
from labmeter.config import Config, InfluxConfig
from labmeter.influx import InfluxV1
from labmeter.inventory import Inventory, load
from labmeter.opening import OpeningHours

Progress = Callable[[int, int, str], None]  # step, steps, what


def build_report(
    influx: InfluxConfig,
    inventory: Inventory | None,
    start_ms: int,
    end_ms: int,
    filters: Filters,
    now_ms: int,
    progress: Progress | None = None,
    declared: Declared | None = None,
) -> Report:
    """The report's data for ``[start, end)`` as of ``now_ms``, reconciled with ``declared``
    bookings if any."""
    client = InfluxV1(influx)
    try:
        scope = open_scope(client, OpeningHours(inventory), start_ms, end_ms, filters, now_ms)
        return build(scope, progress, declared)
    finally:
        client.close()


def report_for(
    config: Config,
    start_ms: int,
    end_ms: int,
    filters: Filters,
    progress: Progress | None = None,
) -> Report:
    """The report as a config's inventory and bookings make it, now."""
    inventory = load(config.api.inventory) if config.api.inventory else None
    books = open_bookings(config.bookings, inventory) if config.bookings.sources else None
    declared = Declared.of(books, start_ms, end_ms, config.bookings.no_show_below)
    now_ms = int(time.time() * 1000)
    return build_report(
        config.influx, inventory, start_ms, end_ms, filters, now_ms, progress, declared
    )
