"""Pages in headless Chromium, served over real HTTP by a real uvicorn server."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from labmeter.config import Config
from labmeter.localstack import free_port
from labmeter.server import create_app

CHROMIUM = shutil.which("chromium")


@contextmanager
def serve(config: Config) -> Iterator[str]:
    """The API of ``config`` on a free loopback port, in a thread; its base URL."""
    port = free_port()
    srv = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)


def chromium(tmp_path: Path, *args: str, budget_ms: int = 4000, timeout_s: float = 90) -> str:
    """Run headless Chromium with a fresh profile; its standard output (``--dump-dom``)."""
    assert CHROMIUM is not None
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
         *args],
        capture_output=True, text=True, timeout=timeout_s, check=True,
    )  # fmt: skip
    return result.stdout
