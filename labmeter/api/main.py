"""Builds the FastAPI app; nothing is created at import time."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from labmeter import __version__
from labmeter.api.deps import Services
from labmeter.api.keys import KeyStore
from labmeter.api.routes import (
    admin,
    bookings,
    equipment,
    occupancy,
    pages,
    register,
    reports,
    usage,
    utilisation,
)
from labmeter.api.store import Store
from labmeter.bookings import open_bookings
from labmeter.bookings.feeds import Refresher
from labmeter.config import Config
from labmeter.errors import InfluxError
from labmeter.influx import InfluxV1
from labmeter.inventory import load as load_inventory
from labmeter.opening import OpeningHours


def create_app(config: Config, routers: Sequence[APIRouter] = ()) -> FastAPI:
    """The read API, with ``routers`` of the roles above it (``labmeter.server`` adds the
    closed periods')."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Feeds are fetched again every ``bookings.refresh_min`` while the API runs."""
        found = services.bookings
        refresher = Refresher(found, config.bookings.refresh_min * 60) if found else None
        if refresher is not None:
            refresher.start()
        yield
        if refresher is not None:
            refresher.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="labmeter API",
        version=__version__,
        description=(
            "Measured usage of lab equipment: occupancy, utilisation with its denominator "
            "(opening hours) and coverage, software licences, sessions, openness to external "
            "users, and reports for evaluators. Every route but /healthz needs an API key "
            "(`X-API-Key` header or `Authorization: Bearer`); roles: viewer < evaluator < admin."
        ),
    )
    # A broken inventory or calendar stops the start with its file:line errors, not the first
    # request.
    inventory = load_inventory(config.api.inventory) if config.api.inventory else None
    services = Services(
        config=config,
        store=Store(InfluxV1(config.influx)),
        inventory=inventory,
        opening=OpeningHours(inventory),  # caches the open half hours
        keys=KeyStore(config.api.keys_path),
        bookings=open_bookings(config.bookings, inventory) if config.bookings.sources else None,
    )
    app.state.services = services  # read through labmeter/api/deps.py only
    own = (occupancy, utilisation, equipment, usage, bookings, register, reports, admin, pages)
    for router in (*(module.router for module in own), *routers):
        app.include_router(router)

    @app.exception_handler(InfluxError)
    def database_unavailable(request: Request, exc: InfluxError) -> JSONResponse:
        # The database failed or refused the query: a 503 the caller can retry, not a 500.
        return JSONResponse({"detail": f"InfluxDB: {exc}"}, status_code=503)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
