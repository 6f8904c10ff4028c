"""Builds the FastAPI app; nothing is created at import time."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, Response

from labmeter import __version__
from labmeter.api.auth import exchange_key, require_page
from labmeter.api.closed import ClosedReports
from labmeter.api.deps import KeysDep, Services
from labmeter.api.health import Health, RollupHealth
from labmeter.api.keys import KeyStore, Role
from labmeter.api.recent import Recent
from labmeter.api.routes import (
    admin,
    bookings,
    equipment,
    occupancy,
    pages,
    region,
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

    public = config.api.public_docs
    app = FastAPI(
        lifespan=lifespan,
        title="labmeter API",
        version=__version__,
        # api.public_docs = false: the same pages, behind a key (below).
        docs_url="/docs" if public else None,
        redoc_url="/redoc" if public else None,
        openapi_url="/openapi.json" if public else None,
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
    influx = InfluxV1(config.influx)
    services = Services(
        config=config,
        store=Store(influx, config.api.live_s),
        inventory=inventory,
        opening=OpeningHours(inventory),  # caches the open half hours
        keys=KeyStore(config.api.keys_path, config.api.session_idle_hours * 3600),
        bookings=open_bookings(config.bookings, inventory) if config.bookings.sources else None,
        closed=ClosedReports(influx, config.evidence.archive_dir),
        scopes=Recent(config.api.share_s),
    )
    app.state.services = services  # read through labmeter/api/deps.py only
    own = (
        occupancy, utilisation, equipment, usage, bookings, register, reports, region, admin, pages,
    )  # fmt: skip
    for router in (*(module.router for module in own), *routers):
        app.include_router(router)

    @app.exception_handler(InfluxError)
    def database_unavailable(request: Request, exc: InfluxError) -> JSONResponse:
        # The database failed or refused the query: a 503 the caller can retry, not a 500.
        return JSONResponse({"detail": f"InfluxDB: {exc}"}, status_code=503)

    rollups = RollupHealth(influx, services.opening.calendar)

    @app.get("/healthz", tags=["health"])
    def healthz() -> Health:
        """Up; and the days of older rollups the collectors still bring up to date (the API
        reads those the slow way meanwhile)."""
        return rollups.health()

    if not public:
        _private_docs(app)
    return app


def _private_docs(app: FastAPI) -> None:
    """/docs and /openapi.json for key holders only: a viewer's key, or a session opened
    with ``/docs?key=...`` as for any page."""
    viewer = [Depends(require_page(Role.viewer))]

    @app.get("/openapi.json", include_in_schema=False, dependencies=viewer)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=viewer)
    def docs(request: Request, keys: KeysDep) -> Response:
        return exchange_key(request, keys) or get_swagger_ui_html(
            openapi_url="/openapi.json", title=f"{app.title} - docs"
        )
