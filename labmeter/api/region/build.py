"""The regional report: every site with the site report's definitions side by side, the pilot
before and after, saturation and idleness, and the funding indicators, as one typed record
(``model.py``) that every format renders (``formats.py``).

It reads what the site report reads, once for every site (per lab and month, per asset and
month, sessions per six-monthly window), plus per week for the comparison and the busy
rollups for saturation; independent reads run side by side.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from labmeter import __version__
from labmeter.api import session_counts
from labmeter.api.bookings import DEFAULT_NO_SHOW_BELOW, BookingRow, reconcile
from labmeter.api.costs import AssetCost, costs
from labmeter.api.region import saturation
from labmeter.api.region.compare import PilotSpec, comparison, read_weeks
from labmeter.api.region.indicators import external_seconds, indicators, merged, semesters
from labmeter.api.region.model import (
    RegionMeta,
    RegionReport,
    RegionThresholds,
    Saturation,
)
from labmeter.api.region.sites import kind_rows, rank, site_rows
from labmeter.api.report.build import DURABILITY_YEARS, LOW_COVERAGE_BELOW, UNDERUSED_BELOW
from labmeter.api.scope import QUERY_THREADS, Every, Scope, open_scope
from labmeter.api.usage import Totals, View
from labmeter.bookings import Bookings
from labmeter.contract import EXTERNAL_CATEGORIES
from labmeter.schema import BUSY_HOUR_S, DeviceKey

MIN_COVERAGE = LOW_COVERAGE_BELOW  # a site observed for less is listed apart, never ranked
STEPS = 5
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class RegionOptions:
    """What the caller chooses: the coverage a ranked site needs, the pilot and its windows,
    and the bookings to count outside organisations with (None: none configured)."""

    min_coverage: float = MIN_COVERAGE
    pilot: PilotSpec | None = None
    bookings: Bookings | None = field(default=None, compare=False)
    no_show_below: float = DEFAULT_NO_SHOW_BELOW


def build_region(
    scope: Scope, options: RegionOptions | None = None, progress: Progress | None = None
) -> RegionReport:
    """Every section's figures; ``progress(step, total, label)`` as they come."""
    opts = options or RegionOptions()

    def step(n: int, label: str) -> None:
        if progress is not None:
            progress(n, STEPS, label)

    inv = scope.inventory
    a, b = scope.start_ms, scope.end_ms
    pieces = semesters(scope.plan.calendar, a, b)
    books = opts.bookings
    within = _comparison_scope(scope, opts.pilot)
    with ThreadPoolExecutor(max_workers=QUERY_THREADS) as pool:
        lab_months = pool.submit(scope.facts, View.lab, Every.month)
        asset_months = pool.submit(scope.asset_facts, Every.month)
        counted = pool.submit(
            session_counts.count_per, scope, [s for _, s in pieces], per_device=True
        )
        weekly = pool.submit(read_weeks, within, opts.pilot) if opts.pilot else None
        external = pool.submit(external_seconds, scope)
        busy = pool.submit(saturation.busy, scope, books is not None)
        licences = pool.submit(saturation.licence_loads, scope)
        lab_months.result()
        months = asset_months.result()
        step(1, "utilisation per site, kind and month")
        reconciled = (
            reconcile(scope, books.between(a, b), opts.no_show_below) if books is not None else None
        )
        rows: list[BookingRow] | None = reconciled["bookings"] if reconciled else None
        sessions = counted.result()
        step(2, "sessions and distinct users")
        totals: dict[DeviceKey, Totals] = {}
        for month in months:
            for key, t in month.facts.items():
                totals.setdefault(key, Totals()).add(t.seconds)
        spent = _costs(scope, a, b, totals)
        everyone = merged(sessions)
        sites, region = site_rows(scope, everyone, totals, spent, _reached(rows))
        ranking = rank(sites, opts.min_coverage)
        kinds = kind_rows(scope, everyone, totals, spent)
        compared = None
        if opts.pilot is not None and weekly is not None:
            books_then = rows
            if within is not scope:  # the windows reach out of the report's: their bookings
                books_then = _bookings(within, opts)
            compared = comparison(
                opts.pilot,
                weekly.result(),
                [r["site"] for r in sites],
                opts.min_coverage,
                books_then,
                scope.plan.calendar,
            )
        step(3, "before and after")
        loads = Saturation(
            labs=saturation.lab_loads(scope, busy.result(), rows),
            licences=licences.result(),
            idle=saturation.idle_assets(scope, totals, spent, UNDERUSED_BELOW),
        )
        step(4, "saturation and idleness")
        found = indicators(
            scope,
            months,
            external.result(),
            pieces,
            sessions,
            spent,
            [_costs(scope, x, y, {}) for _, (x, y) in pieces],
            rows,
            DURABILITY_YEARS,
        )
        step(5, "funding indicators")
    return RegionReport(
        meta=RegionMeta(
            start_ms=a,
            end_ms=b,
            generated_ms=int(time.time() * 1000),
            timezone=scope.tz,
            inventory=inv.path if inv else None,
            inventory_sha256=inv.sha256 if inv else None,
            labmeter=__version__,
            rolled_until_ms=scope.plan.rolled_until,
        ),
        thresholds=RegionThresholds(
            min_coverage=opts.min_coverage,
            underused_below=UNDERUSED_BELOW,
            busy_hour_s=BUSY_HOUR_S,
            durability_years=DURABILITY_YEARS,
            low_coverage_below=LOW_COVERAGE_BELOW,
        ),
        sites=sites,
        region=region,
        kinds=kinds,
        ranking=ranking,
        comparison=compared,
        saturation=loads,
        indicators=found,
        unregistered=["/".join(k) for k in scope.unregistered()],
    )


def _costs(
    scope: Scope, a: int, b: int, totals: dict[DeviceKey, Totals]
) -> dict[DeviceKey, AssetCost]:
    """Each registered asset's cost over ``[a, b)`` (equipment only: a licence's hours would
    need the programs' own read), by its current identity."""
    if scope.inventory is None:
        return {}
    in_use = {k: t.in_use_s for k, t in totals.items()}
    rows = costs(scope.inventory, a, b, in_use, {}, scope.filters.tags)["assets"]
    return {(r["site"], r["lab"], r["asset"]): r for r in rows if r["asset_kind"] == "equipment"}


def _reached(rows: list[BookingRow] | None) -> dict[str, set[str]] | None:
    """Per site, the outside organisations that came (a booking that was not a no-show)."""
    if rows is None:
        return None
    out: dict[str, set[str]] = {}
    for r in rows:
        if r["category"] in EXTERNAL_CATEGORIES and not r["no_show"]:
            out.setdefault(r["site"], set()).add(r["organisation"])
    return out


def _comparison_scope(scope: Scope, spec: PilotSpec | None) -> Scope:
    """The report's scope when the comparison's windows lie within it, else their own."""
    if spec is None:
        return scope
    a, b = min(spec.baseline[0], spec.pilot[0]), max(spec.baseline[1], spec.pilot[1])
    if scope.start_ms <= a and b <= scope.end_ms:
        return scope
    r = scope.reader
    return open_scope(r.influx, r.opening, a, b, scope.filters, scope.plan.now_ms)


def _bookings(scope: Scope, opts: RegionOptions) -> list[BookingRow] | None:
    books = opts.bookings
    if books is None:
        return None
    found = books.between(scope.start_ms, scope.end_ms)
    return reconcile(scope, found, opts.no_show_below)["bookings"]
