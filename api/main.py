"""Builds the FastAPI app; nothing is created at import time."""

from __future__ import annotations

from fastapi import FastAPI

from api.routes import occupancy, utilisation
from api.store import Store
from labmeter import __version__
from labmeter.config import Config
from labmeter.influx import InfluxV1


def create_app(config: Config) -> FastAPI:
    app = FastAPI(
        title="labmeter API",
        version=__version__,
        description="Measured usage of lab equipment: occupancy and utilisation with coverage.",
    )
    app.state.config = config
    app.state.store = Store(InfluxV1(config.influx))
    app.include_router(occupancy.router)
    app.include_router(utilisation.router)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
