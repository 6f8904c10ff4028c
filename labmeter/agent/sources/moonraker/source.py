"""Moonraker source: Klipper's state every ``query_s`` over HTTP; an agent outage filled from
Moonraker's job history once the printer answers again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import httpx

from labmeter.agent.backfill import Filled, Outage
from labmeter.agent.meter import Reading
from labmeter.agent.sources import SourceEvent
from labmeter.agent.sources.http_poll import HttpPoller, Unanswered
from labmeter.agent.sources.moonraker.protocol import OBJECTS, history_fill, klippy, objects
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

log = logging.getLogger(__name__)

HISTORY_LIMIT = 50  # jobs read back; an outage with more jobs than this is filled in part


def _result(response: httpx.Response) -> dict[str, Any]:
    response.raise_for_status()
    body = response.json()
    result = body.get("result") if isinstance(body, dict) else None
    if not isinstance(result, dict):
        raise ValueError("no result object")
    return result


class MoonrakerSource:
    def __init__(
        self, config: AgentConfig, *, clock: Callable[[], int] = wall_ms, background: bool = True
    ) -> None:
        opts = Options(config.options)
        opts.reject_unknown(NET_KEYS | {"url", "api_key", "history"})
        url = base_url(opts)
        self.net = NetOptions.read(opts, config)
        api_key = secret(opts, "api_key", required=False)
        self.history = bool(opts.raw.get("history", True))
        stale_ms = int((self.net.query_s + self.net.timeout_s + 1) * 1000)
        self.lookback_s = stale_ms / 1000  # silence is back-dated to the last answer
        self.watch = PrinterWatch(self.net, stale_ms=stale_ms, clock=clock)
        self._lock = threading.Lock()
        self._outage: Outage | None = None
        self._filled: tuple[Outage, list[Filled]] | None = None
        self._live: dict[str, Any] | None = None
        self.poller = HttpPoller(
            "moonraker",
            url,
            self.watch,
            self._ask,
            headers={"X-Api-Key": api_key.reveal()} if api_key else None,
            after=self._fill,
            background=background,
        )

    def poll(self) -> Reading:
        return self.watch.reading()

    def drain_events(self) -> list[SourceEvent]:
        return self.watch.drain_events()

    def close(self) -> None:
        self.poller.close()

    # --- filling an agent outage --------------------------------------------------------------

    def fill_outage(self, outage: Outage) -> None:
        """The agent saw nothing in ``outage``; fill it from the history once Moonraker answers."""
        if self.history:
            with self._lock:
                self._outage = outage

    def drain_filled(self) -> tuple[Outage, list[Filled]] | None:
        with self._lock:
            found, self._filled = self._filled, None
        return found

    async def _fill(self, client: httpx.AsyncClient) -> None:
        with self._lock:
            outage = self._outage
        if outage is None:
            return
        response = await client.get(
            "/server/history/list", params={"limit": HISTORY_LIMIT, "order": "desc"}
        )
        if response.status_code == 404:
            log.warning("moonraker keeps no job history ([history]): the outage stays unknown")
            with self._lock:
                self._outage = None
            return
        found = _result(response)
        jobs = found.get("jobs")
        if not isinstance(jobs, list):
            raise ValueError("history without jobs")
        now = self.watch.clock()
        filled = history_fill(jobs, self._live, outage, now)
        for span, job in filled:
            name = str(job.get("filename", ""))
            if job.get("status") != "in_progress" and span.end_ms <= outage.end_ms:
                data: dict[str, str | int | float | bool] = {
                    "reason": str(job.get("status", "")),
                    "filled": True,
                    "print_s": round(float(job.get("print_duration") or 0.0), 1),
                    **self.watch.ref(name),
                }
                self.watch.events.add(SourceEvent("job_end", data, ts_ms=span.end_ms))
        with self._lock:
            self._outage = None
            self._filled = (outage, [span for span, _ in filled])

    # --- one question -------------------------------------------------------------------------

    async def _ask(self, client: httpx.AsyncClient) -> Snapshot:
        response = await client.get("/printer/info")
        if response.status_code == 503:
            # Moonraker answers, Klippy (Klipper's host program) does not run: it cannot tell.
            raise Unanswered("klippy_disconnected")
        info = _result(response)
        snap = klippy(info)
        if snap is not None:
            self._live = None
            return snap
        status = _result(await client.get(f"/printer/objects/query?{OBJECTS}"))["status"]
        if not isinstance(status, dict):
            raise ValueError("status is not an object")
        self._live = status.get("print_stats")
        return objects(status)
