"""``labmeter rollups rebuild``: recompute daily rollups with the inventory's opening hours.

After the opening hours of past days were edited, the API reads those days from the hourly
rollups (exact, slower) until their daily rollups are recomputed with the new hours; after an
upgrade that added rollups (per asset and lab, sessions), it reads older days the slow way
until they are recomputed. Session rollups are rebuilt from the raw samples and events.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import Progress

from labmeter.collector.daily import backfill
from labmeter.config import Config
from labmeter.errors import EvidenceError
from labmeter.influx import InfluxV1
from labmeter.inventory import load
from labmeter.opening import OpeningHours
from labmeter.periods import closures_query, parse_closures


def rebuild(config: Config, start_ms: int, end_ms: int, console: Console) -> int:
    """Recompute the daily and monthly rollups, sessions included, of every local day touching
    ``[start, end)``; closed periods are refused."""
    if not config.collector.inventory:
        console.print(
            "[yellow]collector.inventory is not set:[/] the days get no opening-hours split "
            "and the API will read them from hourly rollups"
        )
    inventory = load(config.collector.inventory) if config.collector.inventory else None
    influx = InfluxV1(config.influx)
    try:
        for closure in parse_closures(influx.query(closures_query())):
            if closure.overlaps(
                start_ms, end_ms, "" if config.collector.site == "+" else config.collector.site
            ):
                raise EvidenceError(
                    f"the period {closure} is closed: its rollups are evidence, never recomputed"
                )
        with Progress(console=console) as bar:
            task = bar.add_task("daily rollups", total=end_ms - start_ms)

            def progress(done: int, _end: int) -> None:
                bar.update(task, completed=done - start_ms)

            written = backfill(
                influx, influx, start_ms, end_ms, config.collector.site,
                OpeningHours(inventory), progress,
            )  # fmt: skip
    finally:
        influx.close()
    console.print(f"{written:,} daily rollup points written")
    return written
