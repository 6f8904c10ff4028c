"""One long-lived serial connection owned by a background thread, reopened after unplugs.

``poll()`` must never block on a device, so a reader thread owns the port: it hands every
chunk of bytes to the source and calls the source's ``tick`` a few times a second (to send
status queries and notice silence). A port that vanishes (USB unplug, pty closed) is reopened
at the same path every ``reconnect_s``; udev ``/dev/serial/by-id`` links keep that path stable.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

import serial

log = logging.getLogger(__name__)

TICK_S = 0.05  # default read timeout: how often tick() runs while the line is quiet


def open_port(url: str, baudrate: int, timeout: float = TICK_S) -> serial.Serial:
    """Open without toggling DTR/RTS: on Arduino-based controllers (GRBL, Marlin) a DTR edge
    resets the board and would kill a running job.

    The lines are set low *before* ``open()``; hardware flow control is off so pyserial never
    drives them. (Linux still raises DTR for an instant while opening a tty with HUPCL set:
    ``stty -F <port> -hupcl`` once, or a capacitor on RESET, removes that too.)
    The port is locked (``exclusive``): a second reader would steal half of the replies.
    """
    port = serial.serial_for_url(
        url,
        do_not_open=True,
        baudrate=baudrate,
        timeout=timeout,
        write_timeout=1.0,
        dsrdtr=False,
        rtscts=False,
        exclusive=True,
    )
    port.dtr = False
    port.rts = False
    port.open()
    return port


class SerialLink:
    """Reader thread around one port; callbacks run on that thread only."""

    def __init__(
        self,
        url: str,
        baudrate: int,
        *,
        on_data: Callable[[bytes, float], None],
        on_tick: Callable[[float], None],
        on_connect: Callable[[float], None],
        on_disconnect: Callable[[float, str], None],
        reconnect_s: float = 1.0,
        tick_s: float = TICK_S,
        name: str = "serial",
    ) -> None:
        self.url = url
        # Each tick wakes the thread; a source that sends nothing on its own can tick slowly.
        self.tick_s = tick_s
        self.baudrate = baudrate
        self.reconnect_s = reconnect_s
        self._on_data = on_data
        self._on_tick = on_tick
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._port: serial.Serial | None = None
        self._stop = threading.Event()
        self.connects = 0
        self.write_errors = 0
        self._thread = threading.Thread(target=self._run, name=f"labmeter-{name}", daemon=True)

    @property
    def connected(self) -> bool:
        return self._port is not None

    def start(self) -> None:
        self._thread.start()

    def write(self, data: bytes) -> bool:
        """Send bytes; False when the port is gone (the reader thread will notice and reopen)."""
        port = self._port
        if port is None:
            return False
        try:
            port.write(data)
        except (serial.SerialException, OSError) as exc:
            self.write_errors += 1
            log.debug("write to %s failed: %s", self.url, exc)
            return False
        return True

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        last_error = ""
        while not self._stop.is_set():
            try:
                port = open_port(self.url, self.baudrate, self.tick_s)
            except (serial.SerialException, OSError, ValueError) as exc:
                if str(exc) != last_error:  # log each new reason once, not every retry
                    log.warning("cannot open %s: %s", self.url, exc)
                    last_error = str(exc)
                self._stop.wait(self.reconnect_s)
                continue
            last_error = ""
            self._port = port
            self.connects += 1
            self._on_connect(time.monotonic())
            reason = self._pump(port)
            self._port = None
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()
            if reason is not None:
                log.warning("%s disconnected: %s", self.url, reason)
                self._on_disconnect(time.monotonic(), reason)
                self._stop.wait(self.reconnect_s)

    def _pump(self, port: serial.Serial) -> str | None:
        """Read until stopped (None) or until the port fails (the reason)."""
        while not self._stop.is_set():
            try:
                data = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError, TypeError) as exc:
                # TypeError: pyserial's read on a port closed under it by another thread.
                return str(exc) or type(exc).__name__
            now = time.monotonic()
            if data:
                self._on_data(data, now)
            self._on_tick(now)
        return None


class LineBuffer:
    """Splits a byte stream into text lines; overlong runs without a newline are cut and counted.

    Bytes that are not ASCII are decoded with replacement so the parser sees them and counts the
    line as garbage instead of the reader thread dying on a ``UnicodeDecodeError``.
    """

    def __init__(self, max_line: int = 256) -> None:
        self.max_line = max_line
        self.overflows = 0
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[str]:
        self._buf += data
        lines: list[str] = []
        while (i := self._buf.find(b"\n")) >= 0:
            raw = bytes(self._buf[:i]).rstrip(b"\r")
            del self._buf[: i + 1]
            if len(raw) > self.max_line:
                self.overflows += 1
                continue
            lines.append(raw.decode("ascii", errors="replace"))
        if len(self._buf) > self.max_line:
            self.overflows += 1
            self._buf.clear()
        return lines

    def clear(self) -> None:
        self._buf.clear()
