"""Typed dependencies: routes ask for what they need, the app decides how it is built.

The ones that only pick a service or parse the query are ``async``: FastAPI runs those on the
event loop, where a plain ``def`` costs a hop to the thread pool and back for each (under 20
clients a live read made some ten such hops); whatever reads a file or InfluxDB stays a plain
``def`` and runs in the pool, never on the loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request

from labmeter.api.closed import ClosedReports, Sealed
from labmeter.api.keys import KeyStore
from labmeter.api.plan import Filters
from labmeter.api.recent import Recent
from labmeter.api.report.build import Declared, build
from labmeter.api.report.model import Report
from labmeter.api.scope import Scope, open_scope
from labmeter.api.store import Store
from labmeter.bookings import Bookings
from labmeter.config import Config
from labmeter.contract import SEGMENT_PATTERN
from labmeter.inventory import Inventory
from labmeter.opening import OpeningHours
from labmeter.timeparse import parse_time

MAX_TIME_MS = 7258118400000  # 2200-01-01: beyond it InfluxDB's nanosecond times overflow
MAX_WINDOW_MS = 10 * 366 * 24 * 3600_000


@dataclass(frozen=True)
class Services:
    """What the app builds once at start and every request may use."""

    config: Config
    store: Store
    inventory: Inventory | None
    opening: OpeningHours
    keys: KeyStore
    bookings: Bookings | None
    closed: ClosedReports  # closed periods' sealed reports
    # Scopes by window and filters, shared by the requests for the same window for a few
    # seconds (``api.share_s``, ``recent.py``): their plan, facts and session counts are read
    # once.
    scopes: Recent[tuple[int, int, Filters], Scope]


async def get_services(request: Request) -> Services:
    """The one place that reads the app's state."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_store(services: ServicesDep) -> Store:
    return services.store


async def get_config(services: ServicesDep) -> Config:
    return services.config


async def get_opening(services: ServicesDep) -> OpeningHours:
    return services.opening


async def get_keys(services: ServicesDep) -> KeyStore:
    return services.keys


async def get_bookings(services: ServicesDep) -> Bookings | None:
    """The bookings (None: none configured)."""
    return services.bookings


StoreDep = Annotated[Store, Depends(get_store)]
ConfigDep = Annotated[Config, Depends(get_config)]
OpeningDep = Annotated[OpeningHours, Depends(get_opening)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]
BookingsDep = Annotated[Bookings | None, Depends(get_bookings)]


@dataclass(frozen=True)
class Window:
    """A request's window, in epoch milliseconds."""

    start_ms: int
    end_ms: int


async def get_window(
    start: Annotated[str | None, Query(description="RFC 3339 or epoch seconds")] = None,
    end: Annotated[str | None, Query(description="RFC 3339 or epoch seconds; default now")] = None,
) -> Window:
    """``start``/``end`` as RFC 3339 or epoch seconds; default: the last 24 hours."""
    try:
        # Whole seconds, as a window given in epoch seconds: the requests of one second
        # share their scope (``get_scope``).
        end_ms = parse_time(end) if end else int(time.time()) * 1000
        start_ms = parse_time(start) if start else end_ms - 24 * 3600 * 1000
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    if end_ms <= start_ms:
        raise HTTPException(422, "end must be after start")
    if not (start_ms >= 0 and end_ms <= MAX_TIME_MS):
        raise HTTPException(422, "start and end must fall between 1970 and 2200")
    if end_ms - start_ms > MAX_WINDOW_MS:
        raise HTTPException(422, "the window must not exceed 10 years")
    return Window(start_ms, end_ms)


SEGMENT = f"^{SEGMENT_PATTERN}$"  # a topic segment: nothing else can match a tag


async def get_filters(
    site: Annotated[str | None, Query(pattern=SEGMENT)] = None,
    lab: Annotated[str | None, Query(pattern=SEGMENT)] = None,
    device: Annotated[str | None, Query(pattern=SEGMENT)] = None,
) -> Filters:
    return Filters(site, lab, device)


WindowDep = Annotated[Window, Depends(get_window)]
FiltersDep = Annotated[Filters, Depends(get_filters)]


async def get_inventory(services: ServicesDep) -> Inventory | None:
    return services.inventory


InventoryDep = Annotated[Inventory | None, Depends(get_inventory)]


def get_scope(services: ServicesDep, window: WindowDep, filters: FiltersDep) -> Scope:
    """The window, filters, inventory and what was seen: what every figure needs; shared by
    the requests for the same window and filters within ``api.share_s`` seconds."""
    return services.scopes.get(
        (window.start_ms, window.end_ms, filters),
        lambda: open_scope(
            services.store.influx,
            services.opening,
            window.start_ms,
            window.end_ms,
            filters,
            int(time.time() * 1000),
        ),
    )


ScopeDep = Annotated[Scope, Depends(get_scope)]


def get_declared(services: Services, scope: Scope) -> Declared | None:
    """The bookings a report of the scope's window reconciles with (None: none configured)."""
    no_show = services.config.bookings.no_show_below
    return Declared.of(services.bookings, scope.start_ms, scope.end_ms, no_show)


def report_data(
    services: Services, window: Window, filters: Filters
) -> tuple[Report, Sealed | None]:
    """The report of a window: a closed period's from its package, any other built now."""
    sealed = services.closed.find(window.start_ms, window.end_ms, filters)
    if sealed is not None:
        return sealed.report, sealed
    scope = get_scope(services, window, filters)
    return build(scope, declared=get_declared(services, scope)), None
