"""RDM6300 / ID-12LA badge readers: a presented card repeats its frame while in the field.

The truth this device records is the badge in the field (``None`` when none): tests derive
the sessions they expect from it. Raw ids exist only here and in the agent's badge table.
"""

from __future__ import annotations

import time
from pathlib import Path

from labmeter.agent.sources.badge.protocol import encode_frame
from labmeter.simulators.devices.base import Device


class BadgeReaderDevice(Device):
    def __init__(
        self, path: Path | None = None, reader: str = "rdm6300", repeat_s: float = 0.1
    ) -> None:
        super().__init__(path, name=reader)
        self.reader = reader
        self.repeat_s = repeat_s
        self._present_until = 0.0
        self._next = 0.0

    def present(self, badge: str, seconds: float = 0.35) -> None:
        """Hold a card to the reader: its frame repeats every ``repeat_s`` for ``seconds``."""
        with self._lock:
            self._present_until = time.monotonic() + seconds
            self._next = 0.0
            self.set_state(badge)

    def tick(self, now: float) -> None:
        if self._state is None:
            return
        if now >= self._present_until:
            self.set_state(None)
        elif now >= self._next:
            self._next = now + self.repeat_s
            self.send(encode_frame(self._state, self.reader))

    def bad_frames(self) -> None:
        """A wrong checksum, a truncated frame, a frame with non-hex data and loose noise."""
        with self._lock:
            good = encode_frame("0415AB12CD", self.reader)
            wrong_sum = good[:11] + (b"00" if good[11:13] != b"00" else b"11") + good[13:]
            self.send(wrong_sum + good[:7] + b"\x02" + b"ZZ15AB12CD00\x03" + b"\x00\xff\x13")
            self.send(good[7:])  # the tail of the truncated frame, now stray bytes
