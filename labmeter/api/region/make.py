"""A regional report from a config or from its parts: the CLI and the route open it the same
way, and read the pilot's windows the same way."""

from __future__ import annotations

import time
from dataclasses import dataclass

from labmeter.api.plan import Filters
from labmeter.api.region.build import MIN_COVERAGE, Progress, RegionOptions, build_region
from labmeter.api.region.compare import PilotSpec
from labmeter.api.region.model import RegionReport
from labmeter.api.scope import open_scope
from labmeter.bookings import open_bookings
from labmeter.config import Config
from labmeter.influx import InfluxV1
from labmeter.inventory import load
from labmeter.opening import OpeningHours
from labmeter.timeparse import parse_time


@dataclass(frozen=True)
class PilotArgs:
    """The pilot as a caller writes it: a site, and a change date or two windows
    ``START..END`` (RFC 3339 or epoch seconds); the bootstrap's settings."""

    site: str | None = None
    change: str | None = None
    baseline: str | None = None
    pilot: str | None = None
    seed: int = 1
    resamples: int = 2000
    confidence: float = 0.95

    def spec(self, start_ms: int, end_ms: int) -> PilotSpec | None:
        """The comparison to make (None: none asked); ValueError says what is wrong. A change
        date compares the window before it with the window after it."""
        if self.site is None:
            if self.change or self.baseline or self.pilot:
                raise ValueError("a comparison needs its pilot site (--pilot-site, pilot_site=)")
            return None
        if self.change is not None:
            if self.baseline or self.pilot:
                raise ValueError("give either a change date or the two windows, not both")
            at = parse_time(self.change)
            if not start_ms < at < end_ms:
                raise ValueError("the change date must lie inside the report's window")
            baseline, pilot = (start_ms, at), (at, end_ms)
        elif self.baseline and self.pilot:
            baseline, pilot = _window(self.baseline), _window(self.pilot)
        else:
            raise ValueError("give a change date, or both a baseline and a pilot window")
        spec = PilotSpec(self.site, baseline, pilot, self.seed, self.resamples, self.confidence)
        spec.check()
        return spec


def _window(text: str) -> tuple[int, int]:
    """``START..END``."""
    start, sep, end = text.partition("..")
    if not sep:
        raise ValueError(f"{text!r}: a window is START..END")
    return parse_time(start), parse_time(end)


def region_for(
    config: Config,
    start_ms: int,
    end_ms: int,
    pilot: PilotArgs,
    min_coverage: float = MIN_COVERAGE,
    progress: Progress | None = None,
) -> RegionReport:
    """The regional report as a config's inventory and bookings make it, now."""
    spec = pilot.spec(start_ms, end_ms)
    inventory = load(config.api.inventory) if config.api.inventory else None
    books = open_bookings(config.bookings, inventory) if config.bookings.sources else None
    options = RegionOptions(min_coverage, spec, books, config.bookings.no_show_below)
    client = InfluxV1(config.influx)
    try:
        now_ms = int(time.time() * 1000)
        opening = OpeningHours(inventory)
        scope = open_scope(client, opening, start_ms, end_ms, Filters(), now_ms)
        return build_region(scope, options, progress)
    finally:
        client.close()
