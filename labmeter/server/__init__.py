"""The API process as deployed: the read API with the routers of the roles above it (closed
periods), served by uvicorn. Above ``api`` and ``evidence``, so neither imports the other's
floor upwards."""

from __future__ import annotations

from fastapi import FastAPI

from labmeter.config import Config


def create_app(config: Config) -> FastAPI:
    from labmeter.api.main import create_app as read_api
    from labmeter.evidence.routes import router as periods

    return read_api(config, (periods,))


def serve(config: Config) -> None:
    """Serve until stopped, with the access log on (who asked what, for journald) and every
    API key redacted from it."""
    import uvicorn

    from labmeter.api.redact import log_config

    uvicorn.run(
        create_app(config), host=config.api.host, port=config.api.port, log_config=log_config()
    )
