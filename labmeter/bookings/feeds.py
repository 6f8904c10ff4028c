"""Feeds: calendars the server fetches on a schedule (``fetch.py``), and their last good copy.

A booking system that is down, or serves a broken calendar for an hour, must not empty the
bookings a report reconciles with: the copy kept is the last one that was fetched *and*
passed every check, and its age is reported beside the figures that used it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import orjson

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedState:
    """What is known of one feed: its last good copy, and how the last attempt went."""

    name: str
    url: str
    copy: Path  # the last good copy (may not exist yet)
    fetched_ms: int | None  # when the copy was fetched; None: never
    attempted_ms: int | None
    error: str  # "" when the last attempt succeeded

    def age_s(self, now_ms: int) -> float | None:
        return None if self.fetched_ms is None else (now_ms - self.fetched_ms) / 1000


class FeedCache:
    """A folder with each feed's last good copy and a small JSON of its attempts."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _stem(self, url: str) -> Path:
        return self.folder / hashlib.sha256(url.encode()).hexdigest()[:24]

    def state(self, name: str, url: str) -> FeedState:
        stem = self._stem(url)
        meta: dict[str, object] = {}
        with contextlib.suppress(OSError, orjson.JSONDecodeError):
            meta = orjson.loads(stem.with_suffix(".json").read_bytes())
        fetched = meta.get("fetched_ms")
        attempted = meta.get("attempted_ms")
        copy = stem.with_suffix(".ics")
        return FeedState(
            name,
            url,
            copy,
            fetched if isinstance(fetched, int) and copy.exists() else None,
            attempted if isinstance(attempted, int) else None,
            str(meta.get("error") or ("" if copy.exists() else "never fetched")),
        )

    def keep(self, url: str, text: str, now_ms: int) -> None:
        """Store a copy that passed every check."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = self._stem(url)
        _atomic(stem.with_suffix(".ics"), text.encode())
        self._meta(url, {"url": url, "fetched_ms": now_ms, "attempted_ms": now_ms, "error": ""})

    def failed(self, url: str, error: str, now_ms: int) -> None:
        """Record a failed attempt; the last good copy stays as it was."""
        self.folder.mkdir(parents=True, exist_ok=True)
        previous = self.state("", url)
        self._meta(
            url,
            {"url": url, "fetched_ms": previous.fetched_ms, "attempted_ms": now_ms, "error": error},
        )

    def _meta(self, url: str, meta: dict[str, object]) -> None:
        _atomic(self._stem(url).with_suffix(".json"), orjson.dumps(meta))


class Refresher:
    """A daemon thread that calls ``bookings.refresh()`` at start and every ``every_s``."""

    def __init__(self, bookings: Refreshable, every_s: float) -> None:
        self.bookings = bookings
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feeds", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.bookings.refresh()
            except Exception:  # a refresh that fails must not end the schedule
                log.exception("fetching the booking feeds failed")
            self._stop.wait(self.every_s)


class Refreshable(Protocol):
    def refresh(self) -> object: ...


def _atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
