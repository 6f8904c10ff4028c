"""Jobs that run every few seconds, each on a thread of its own.

The agent's three jobs (poll, scan, pump) need no more than this: a job never overlaps itself,
runs missed while it was busy are skipped rather than caught up, and an exception is logged
and the job goes on. APScheduler did the same, but importing it (with asyncio, tzlocal and the
entry-point machinery) was a third of the agent's memory (bench/agent_footprint.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Every:
    """Interval jobs, started together and stopped together."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def add(self, job: Callable[[], object], seconds: float) -> None:
        """Run ``job`` every ``seconds``, the first time ``seconds`` after ``start``."""
        name = getattr(job, "__name__", "job")
        self._threads.append(
            threading.Thread(target=self._run, args=(job, seconds), name=name, daemon=True)
        )

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def shutdown(self, wait: bool = True) -> None:
        """Stop every job; with ``wait``, until a run in progress has ended."""
        self._stop.set()
        if wait:
            for thread in self._threads:
                if thread.is_alive():
                    thread.join()

    def _run(self, job: Callable[[], object], seconds: float) -> None:
        due = time.monotonic() + seconds
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            try:
                job()
            except Exception:
                log.exception("%s failed; it runs again in %.0f s", job, seconds)
            due += seconds
            now = time.monotonic()
            if due <= now:  # it ran longer than its interval: skip the runs missed
                due = now + seconds - (now - due) % seconds
