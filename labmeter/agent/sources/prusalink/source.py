"""PrusaLink source: ``/api/v1/status`` every ``query_s`` through the maintained ``pyprusalink``
client (HTTP digest with the printer's password, or the ``X-Api-Key`` of older PrusaLink).

The job's file name is asked (``/api/v1/job``) only when a new job id appears. PrusaLink keeps
no job history, so an agent outage stays unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from pyprusalink import PrusaLink
from pyprusalink.types import InvalidAuth, PrusaLinkError

from labmeter.agent.meter import Reading
from labmeter.agent.sources import SourceEvent
from labmeter.agent.sources.http_poll import HttpPoller, Unanswered
from labmeter.agent.sources.options import Options
from labmeter.agent.sources.printer import (
    NET_KEYS,
    NetOptions,
    PrinterWatch,
    Snapshot,
    base_url,
    secret,
    wall_ms,
)
from labmeter.agent.sources.prusalink.protocol import job_id, snapshot
from labmeter.config import AgentConfig
from labmeter.errors import ConfigError


class PrusaLinkSource:
    def __init__(
        self, config: AgentConfig, *, clock: Callable[[], int] = wall_ms, background: bool = True
    ) -> None:
        opts = Options(config.options)
        opts.reject_unknown(NET_KEYS | {"url", "username", "password", "api_key"})
        self.url = base_url(opts)
        self.username = opts.string("username", "maker")
        self._password = secret(opts, "password", required=False)
        api_key = secret(opts, "api_key", required=False)
        if not self._password and not api_key:
            raise ConfigError(
                opts.key("password"),
                "is required (Settings > Network > PrusaLink on the printer), or api_key",
            )
        self.net = NetOptions.read(opts, config)
        stale_ms = int((self.net.query_s + self.net.timeout_s + 1) * 1000)
        self.lookback_s = stale_ms / 1000
        self.watch = PrinterWatch(self.net, stale_ms=stale_ms, clock=clock)
        self._api: PrusaLink | None = None
        self._client: httpx.AsyncClient | None = None
        self._job: tuple[int, str | None] | None = None  # the last job id and its file name
        self.poller = HttpPoller(
            "prusalink",
            self.url,
            self.watch,
            self._ask,
            headers={"X-Api-Key": api_key.reveal()} if api_key else None,
            background=background,
        )

    def poll(self) -> Reading:
        return self.watch.reading()

    def drain_events(self) -> list[SourceEvent]:
        return self.watch.drain_events()

    def close(self) -> None:
        self.poller.close()

    async def _ask(self, client: httpx.AsyncClient) -> Snapshot:
        if self._api is None or self._client is not client:
            self._api = PrusaLink(client, self.url, self.username, self._password.reveal())
            self._client = client
        try:
            status = dict(await self._api.get_status())
            found = job_id(status)
            if found is not None and (self._job is None or self._job[0] != found):
                job: dict[str, Any] = dict(await self._api.get_job() or {})
                file = job.get("file") or {}
                name = file.get("display_name") or file.get("name")
                self._job = (found, str(name) if name else None)
        except InvalidAuth as exc:
            raise Unanswered("auth") from exc
        except PrusaLinkError as exc:
            raise Unanswered(type(exc).__name__.lower()) from exc
        name = self._job[1] if self._job is not None and self._job[0] == found else None
        return snapshot(status, name)
