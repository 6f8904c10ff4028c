"""One printer asked over HTTP by one background thread, so that ``poll()`` never waits on it.

The thread runs a private asyncio loop (the PrusaLink client library is async; OctoPrint and
Moonraker use the same ``httpx.AsyncClient``) and asks the printer every ``query_s``. A failed
answer is reported to the ``PrinterWatch`` by a short reason code, never by the exception's
text (which could hold a URL), and the next try waits longer each time (``Backoff``), so a
printer switched off for the night costs a request every ``reconnect_max_s`` at most.

Tests drive ``step()`` themselves on a pinned clock instead of starting the thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable

import httpx

from labmeter.agent.sources.printer import Backoff, PrinterWatch, Snapshot

log = logging.getLogger(__name__)


class Unanswered(Exception):
    """The printer answered, but not with a state (``reason``: a short code for the event)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Ask = Callable[[httpx.AsyncClient], Awaitable[Snapshot]]
AfterAnswer = Callable[[httpx.AsyncClient], Awaitable[None]]


def reason_of(exc: BaseException) -> str:
    """A short, credential-free code for why a request got no state."""
    if isinstance(exc, Unanswered):
        return exc.reason
    if isinstance(exc, httpx.HTTPStatusError):
        code = exc.response.status_code
        return "auth" if code in (401, 403) else f"http_{code}"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.HTTPError):
        return "unreachable"
    return "bad_answer"  # JSON of another shape than the printer's API documents


class HttpPoller:
    def __init__(
        self,
        name: str,
        url: str,
        watch: PrinterWatch,
        ask: Ask,
        *,
        headers: dict[str, str] | None = None,
        after: AfterAnswer | None = None,
        background: bool = True,
        logger: logging.Logger = log,
    ) -> None:
        """``ask`` turns the printer's answers into a ``Snapshot``; ``after`` runs once a
        snapshot is in (a history look-up, say) and may fail without losing it."""
        self.name = name
        self.url = url
        self.watch = watch
        self.net = watch.net
        self.log = logger
        self._ask = ask
        self._after = after
        self._headers = headers or {}
        self.backoff = Backoff(self.net.query_s, self.net.reconnect_max_s)
        self._loop = asyncio.new_event_loop()
        self._client: httpx.AsyncClient | None = None
        self._stop = threading.Event()
        self._warned = ""
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name=f"labmeter-{name}", daemon=True)
            self._thread.start()

    def step(self) -> float:
        """Ask the printer once; the seconds to wait before the next question."""
        return self._loop.run_until_complete(self._step())

    async def _step(self) -> float:
        if self._client is None:
            # Headers carry the key; httpx never logs them, and we never log a request.
            self._client = httpx.AsyncClient(
                base_url=self.url,
                headers=self._headers,
                timeout=self.net.timeout_s,
                # Printers serve plain HTTP on the LAN: load the CA bundle (~3 MB) only for https.
                verify=self.url.startswith("https://"),
            )
        try:
            snap = await self._ask(self._client)
        except (httpx.HTTPError, Unanswered, ValueError, KeyError, TypeError) as exc:
            reason = reason_of(exc)
            if reason != self._warned:  # each new reason once, not every retry
                self.log.warning("%s at %s gives no state: %s", self.name, self.url, reason)
                self._warned = reason
            self.watch.lost(reason)
            return self.backoff.next_s()
        if self._warned:
            self.log.warning("%s at %s answers again", self.name, self.url)
            self._warned = ""
        self.backoff.reset()
        self.watch.answered(snap)
        if self._after is not None:
            try:
                await self._after(self._client)
            except (httpx.HTTPError, Unanswered, ValueError, KeyError, TypeError) as exc:
                self.log.warning(
                    "%s at %s: %s after its state", self.name, self.url, reason_of(exc)
                )
        return self.net.query_s

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                delay = self.step()
            except Exception:  # a bug must not end the thread: the time stays unknown
                self.log.exception("%s: asking the printer failed", self.name)
                self.watch.lost("internal")
                delay = self.backoff.next_s()
            self._stop.wait(delay)
        self._shut()

    def _shut(self) -> None:
        if self._client is not None:
            self._loop.run_until_complete(self._client.aclose())
            self._client = None
        self._loop.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread is None:
            self._shut()
        elif self._thread is not threading.current_thread():
            self._thread.join(timeout=self.net.timeout_s + 2)
