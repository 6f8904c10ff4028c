"""Typed dependencies: routes ask for what they need, the app decides how it is built."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request

from api.store import Store
from api.timeparse import parse_time
from labmeter.config import Config


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


class Filters:
    def __init__(
        self, site: str | None = None, lab: str | None = None, device: str | None = None
    ) -> None:
        self.tags: dict[str, str | None] = {"site": site, "lab": lab, "device": device}


WindowDep = Annotated[Window, Depends()]
FiltersDep = Annotated[Filters, Depends()]
