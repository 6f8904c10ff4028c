"""X11 idle through the real screensaver extension, on a real (virtual) X server."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labmeter.agent.platform import linux

pytestmark = pytest.mark.skipif(
    shutil.which("Xvfb") is None, reason="Xvfb missing (scripts/bootstrap.sh installs xvfb)"
)


@pytest.fixture
def display() -> Iterator[str]:
    number = next(n for n in range(90, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    proc = subprocess.Popen(
        ["Xvfb", f":{number}", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    socket = Path(f"/tmp/.X11-unix/X{number}")
    deadline = time.monotonic() + 10
    while not socket.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f":{number}"
    proc.terminate()
    proc.wait(10)


def test_idle_grows_and_input_resets_it(display: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", display)
    idle = linux.X11Idle()
    assert idle.display is not None
    time.sleep(1.5)
    before = idle.idle_s()
    assert before is not None and before >= 1.4
    # Move the pointer through XTest, as a user would with the mouse.
    xtst = ctypes.CDLL("libXtst.so.6")
    xtst.XTestFakeMotionEvent.argtypes = [
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_ulong,
    ]
    xtst.XTestFakeMotionEvent(idle.display, -1, 20, 30, 0)
    idle.xlib.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
    idle.xlib.XSync(idle.display, 0)
    after = idle.idle_s()
    assert after is not None and after < 0.5


def test_without_a_display_idle_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    assert linux.X11Idle().idle_s() is None
