"""The API process as deployed: the read API with the routers of the roles above it (closed
periods), served by uvicorn. Above ``api`` and ``evidence``, so neither imports the other's
floor upwards."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from labmeter.config import Config


def create_app(config: Config) -> FastAPI:
    from labmeter.api.main import create_app as read_api
    from labmeter.evidence.routes import router as periods

    return read_api(config, (periods,))


def uvicorn_config(config: Config) -> Any:
    """How the API is served: the access log on (who asked what, for journald) with every API
    key redacted from it, and the forwarded headers of the proxies ``api.forwarded_allow_ips``
    names, and of no other (not the environment's ``FORWARDED_ALLOW_IPS``): behind a TLS
    proxy the request's scheme is then ``https``, and the session cookie ``Secure``."""
    import uvicorn

    from labmeter.api.redact import log_config

    trusted = [i.strip() for i in config.api.forwarded_allow_ips.split(",") if i.strip()]
    return uvicorn.Config(
        create_app(config),
        host=config.api.host,
        port=config.api.port,
        log_config=log_config(),
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or [],
    )


def serve(config: Config) -> None:
    """Serve until stopped."""
    import uvicorn

    uvicorn.Server(uvicorn_config(config)).run()
