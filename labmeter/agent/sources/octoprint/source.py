"""OctoPrint source: ``/api/job`` and ``/api/printer`` every ``query_s``, with its API key.

OctoPrint keeps no job history in its core API (each file remembers only its last print), so
an agent outage stays unknown.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from labmeter.agent.meter import Reading
from labmeter.agent.sources import SourceEvent
from labmeter.agent.sources.http_poll import HttpPoller
from labmeter.agent.sources.octoprint.protocol import snapshot
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
from labmeter.config import AgentConfig


class OctoPrintSource:
    def __init__(
        self, config: AgentConfig, *, clock: Callable[[], int] = wall_ms, background: bool = True
    ) -> None:
        opts = Options(config.options)
        opts.reject_unknown(NET_KEYS | {"url", "api_key"})
        url = base_url(opts)
        api_key = secret(opts, "api_key", required=True, hint=" (Settings > Application Keys)")
        self.net = NetOptions.read(opts, config)
        stale_ms = int((self.net.query_s + self.net.timeout_s + 1) * 1000)
        self.lookback_s = stale_ms / 1000
        self.watch = PrinterWatch(self.net, stale_ms=stale_ms, clock=clock)
        self.poller = HttpPoller(
            "octoprint",
            url,
            self.watch,
            self._ask,
            headers={"X-Api-Key": api_key.reveal()},
            background=background,
        )

    def poll(self) -> Reading:
        return self.watch.reading()

    def drain_events(self) -> list[SourceEvent]:
        return self.watch.drain_events()

    def close(self) -> None:
        self.poller.close()

    async def _ask(self, client: httpx.AsyncClient) -> Snapshot:
        job = await client.get("/api/job")
        job.raise_for_status()
        printer = await client.get("/api/printer", params={"exclude": "sd"})
        if printer.status_code == 409:  # "Printer is not operational": no temperatures
            return snapshot(job.json(), None)
        printer.raise_for_status()
        return snapshot(job.json(), printer.json())
