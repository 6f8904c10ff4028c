"""Typed dependencies: routes ask for what they need, the app decides how it is built."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request

from labmeter.api.analysis import Scope, open_scope
from labmeter.api.plan import Filters
from labmeter.api.store import Store
from labmeter.config import Config
from labmeter.contract import SEGMENT_PATTERN
from labmeter.inventory import Inventory
from labmeter.timeparse import parse_time

MAX_TIME_MS = 7258118400000  # 2200-01-01: beyond it InfluxDB's nanosecond times overflow
MAX_WINDOW_MS = 10 * 366 * 24 * 3600_000


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_config(request: Request) -> Config:
    config: Config = request.app.state.config
    return config


StoreDep = Annotated[Store, Depends(get_store)]
ConfigDep = Annotated[Config, Depends(get_config)]


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


def get_inventory(request: Request) -> Inventory | None:
    inventory: Inventory | None = request.app.state.inventory
    return inventory


InventoryDep = Annotated[Inventory | None, Depends(get_inventory)]


def get_scope(request: Request, window: WindowDep, filters: FiltersDep) -> Scope:
    """The window, filters, inventory and what was seen: what every figure needs."""
    import time

    return open_scope(
        request.app.state.store.influx,
        request.app.state.opening,
        window.start_ms,
        window.end_ms,
        filters,
        int(time.time() * 1000),
    )


ScopeDep = Annotated[Scope, Depends(get_scope)]
