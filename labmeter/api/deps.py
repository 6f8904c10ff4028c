"""Typed dependencies: routes ask for what they need, the app decides how it is built."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request

from labmeter.api.closed import ClosedReports, Sealed
from labmeter.api.keys import KeyStore
from labmeter.api.plan import Filters
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


def get_services(request: Request) -> Services:
    """The one place that reads the app's state."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_store(services: ServicesDep) -> Store:
    return services.store


def get_config(services: ServicesDep) -> Config:
    return services.config


def get_opening(services: ServicesDep) -> OpeningHours:
    return services.opening


def get_keys(services: ServicesDep) -> KeyStore:
    return services.keys


def get_bookings(services: ServicesDep) -> Bookings | None:
    """The bookings (None: none configured)."""
    return services.bookings


StoreDep = Annotated[Store, Depends(get_store)]
ConfigDep = Annotated[Config, Depends(get_config)]
OpeningDep = Annotated[OpeningHours, Depends(get_opening)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]
BookingsDep = Annotated[Bookings | None, Depends(get_bookings)]


class Window:
    """``start``/``end`` as RFC 3339 or epoch seconds; default: the last 24 hours."""

    def __init__(
        self,
        start: Annotated[str | None, Query(description="RFC 3339 or epoch seconds")] = None,
        end: Annotated[
            str | None, Query(description="RFC 3339 or epoch seconds; default now")
        ] = None,
    ) -> None:
        import time

        try:
            self.end_ms = parse_time(end) if end else int(time.time() * 1000)
            self.start_ms = parse_time(start) if start else self.end_ms - 24 * 3600 * 1000
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        if self.end_ms <= self.start_ms:
            raise HTTPException(422, "end must be after start")
        if not (self.start_ms >= 0 and self.end_ms <= MAX_TIME_MS):
            raise HTTPException(422, "start and end must fall between 1970 and 2200")
        if self.end_ms - self.start_ms > MAX_WINDOW_MS:
            raise HTTPException(422, "the window must not exceed 10 years")


SEGMENT = f"^{SEGMENT_PATTERN}$"  # a topic segment: nothing else can match a tag


def get_filters(
    site: Annotated[str | None, Query(pattern=SEGMENT)] = None,
    lab: Annotated[str | None, Query(pattern=SEGMENT)] = None,
    device: Annotated[str | None, Query(pattern=SEGMENT)] = None,
) -> Filters:
    return Filters(site, lab, device)


WindowDep = Annotated[Window, Depends()]
FiltersDep = Annotated[Filters, Depends(get_filters)]


def get_inventory(services: ServicesDep) -> Inventory | None:
    return services.inventory


InventoryDep = Annotated[Inventory | None, Depends(get_inventory)]


def get_scope(services: ServicesDep, window: WindowDep, filters: FiltersDep) -> Scope:
    """The window, filters, inventory and what was seen: what every figure needs."""
    import time

    return open_scope(
        services.store.influx,
        services.opening,
        window.start_ms,
        window.end_ms,
        filters,
        int(time.time() * 1000),
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
