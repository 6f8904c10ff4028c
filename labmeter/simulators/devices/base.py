"""What every simulated serial device shares: the pty, the I/O thread, the timeline, the truth.

The truth is what an observer *could* know: the device's state while it is plugged in and
talking, ``None`` while it is unplugged, silent or rebooting. Those are the seconds an honest
agent must report as unknown.
"""

from __future__ import annotations

import contextlib
import os
import select
import tempfile
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class PtyPort:
    """A pty whose slave is published at ``path`` (a symlink), unpluggable and repluggable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.master: int | None = None
        self._slave: int | None = None

    def plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line discipline: bytes pass as they are
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(slave))
        os.replace(tmp, self.path)  # atomic: the agent never sees a missing link mid-swap
        self.master, self._slave = master, slave

    def unplug(self) -> None:
        """Close both ends: the agent's next read fails as with a USB cable pulled out."""
        self.path.unlink(missing_ok=True)
        for fd in (self.master, self._slave):
            if fd is not None:
                os.close(fd)
        self.master = self._slave = None

    def write(self, data: bytes) -> None:
        if self.master is not None:
            # OSError: nobody has the slave open, like a UART with no listener.
            with contextlib.suppress(OSError):
                os.write(self.master, data)

    def wait_readable(self, timeout: float) -> int | None:
        """The master fd once it has bytes to read, else None (also while unplugged)."""
        master = self.master
        if master is None:
            time.sleep(timeout)
            return None
        try:
            ready, _, _ = select.select([master], [], [], timeout)
        except (OSError, ValueError):  # closed by unplug() meanwhile
            return None
        return master if ready else None

    def read(self, fd: int) -> bytes:
        """Read what ``wait_readable`` announced, unless the port was swapped since."""
        if fd != self.master:
            return b""
        try:
            return os.read(fd, 4096)
        except OSError:
            return b""


class Device:
    """Base of a simulated device; subclasses answer bytes in ``on_bytes`` and talk in ``tick``."""

    def __init__(self, path: Path | None = None, name: str = "device") -> None:
        if path is None:
            path = Path(tempfile.mkdtemp(prefix=f"labmeter-{name}-")) / "tty"
        self.port = PtyPort(path)
        self.truth: list[tuple[int, str | None]] = []
        self.silent = False
        self.plugged = False
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._io = threading.Thread(target=self._run_io, name=f"sim-{name}", daemon=True)
        self._state: str | None = None

    @property
    def path(self) -> str:
        return str(self.port.path)

    # --- truth ---------------------------------------------------------------------------

    def set_state(self, state: str | None) -> None:
        with self._lock:
            self._state = state
            self._record()

    def observable(self) -> bool:
        return self.plugged and not self.silent

    def _record(self) -> None:
        self.truth.append((now_ms(), self._state if self.observable() else None))

    # --- faults --------------------------------------------------------------------------

    def unplug(self) -> None:
        with self._lock:
            self.port.unplug()
            self.plugged = False
            self._record()

    def replug(self) -> None:
        with self._lock:
            self.port.plug()
            self.plugged = True
            self.on_plug()
            self._record()

    def silence(self, on: bool) -> None:
        with self._lock:
            self.silent = on
            self._record()

    def send(self, data: bytes) -> None:
        """Write unless silenced (a silent device neither answers nor reports)."""
        if not self.silent:
            self.port.write(data)

    # --- life ----------------------------------------------------------------------------

    def start(self) -> Device:
        self.replug()
        self._io.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._io.join(timeout=2.0)
        with self._lock:
            self.port.unplug()
            self.plugged = False
            self._record()

    def run(
        self,
        timeline: list[tuple[float, Callable[[], None]]],
        stop: threading.Event | None = None,
    ) -> None:
        """Run ``(at_seconds, action)`` steps relative to now, in order, on the calling thread."""
        stop = stop or threading.Event()
        t0 = time.monotonic()
        for at, action in timeline:
            if stop.wait(max(0.0, t0 + at - time.monotonic())):
                return
            action()

    def _run_io(self) -> None:
        while not self._stop.is_set():
            fd = self.port.wait_readable(0.01)
            with self._lock:
                data = self.port.read(fd) if fd is not None else b""
                if data and not self.silent:
                    self.on_bytes(data)
                self.tick(time.monotonic())

    def on_plug(self) -> None:
        """Called with the lock held after each plug-in (a boot message, for instance)."""

    def on_bytes(self, data: bytes) -> None:
        """Called with the lock held for every chunk the agent wrote."""

    def tick(self, now: float) -> None:
        """Called with the lock held about every 10 ms (auto-reports, print progress)."""
