"""Badge reader frames, repeat debouncing and swipe -> session logic, without any I/O.

RDM6300:  STX, 10 ASCII hex data, 2 ASCII hex checksum, ETX          (14 bytes)
ID-12LA:  STX, 10 ASCII hex data, 2 ASCII hex checksum, CR, LF, ETX  (16 bytes)

The 10 data characters are 5 bytes (a version/vendor byte and a 32-bit tag number); the
checksum is the XOR of those 5 bytes. Both layouts are recognised by their length, so one
decoder serves either reader. Readers repeat the frame several times a second while a card
stays in the field, hence the debouncer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STX, ETX = 0x02, 0x03
_HEX = frozenset(b"0123456789ABCDEFabcdef")


def checksum(data_hex: str) -> int:
    """XOR of the 5 bytes written as 10 hex characters."""
    value = 0
    for byte in bytes.fromhex(data_hex):
        value ^= byte
    return value


def encode_frame(badge_id: str, reader: str = "rdm6300") -> bytes:
    """The frame a reader sends for ``badge_id`` (10 hex chars); used by simulators and tests."""
    body = f"{badge_id.upper()}{checksum(badge_id):02X}".encode()
    tail = b"\r\n" if reader == "id12la" else b""
    return bytes([STX]) + body + tail + bytes([ETX])


@dataclass
class FrameDecoder:
    """Streaming decoder: feed any chunks, get the ids of valid frames; the rest is counted."""

    bad_checksum: int = 0
    malformed: int = 0  # truncated, wrong length, not hex
    stray_bytes: int = 0  # noise outside any frame
    _buf: bytearray | None = field(default=None, repr=False)

    def feed(self, data: bytes) -> list[str]:
        ids: list[str] = []
        for byte in data:
            if byte == STX:
                if self._buf is not None:
                    self.malformed += 1  # a new frame began before the last one ended
                self._buf = bytearray()
            elif self._buf is None:
                self.stray_bytes += 1
            elif byte == ETX:
                body, self._buf = bytes(self._buf), None
                badge = self._check(body)
                if badge is not None:
                    ids.append(badge)
            else:
                self._buf.append(byte)
                if len(self._buf) > 14:
                    self.malformed += 1
                    self._buf = None
        return ids

    def _check(self, body: bytes) -> str | None:
        if len(body) == 14 and body.endswith(b"\r\n"):
            body = body[:12]
        if len(body) != 12 or not all(b in _HEX for b in body):
            self.malformed += 1
            return None
        text = body.decode("ascii").upper()
        if checksum(text[:10]) != int(text[10:], 16):
            self.bad_checksum += 1
            return None
        return text[:10]


class Debouncer:
    """One swipe per presentation: repeats of the same card within ``hold_s`` are the same one."""

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self.repeats = 0
        self._last: str | None = None
        self._last_t = 0.0

    def swipe(self, badge: str, now: float) -> bool:
        """True when this read is a new swipe."""
        new = badge != self._last or now - self._last_t > self.hold_s
        self._last, self._last_t = badge, now
        if not new:
            self.repeats += 1
        return new


@dataclass(frozen=True)
class Change:
    action: str  # "start" or "end"
    badge: str


class Sessions:
    """A swipe opens a session; the same badge again closes it; another badge switches to it."""

    def __init__(self) -> None:
        self.current: str | None = None

    def swipe(self, badge: str) -> list[Change]:
        changes: list[Change] = []
        if self.current is not None:
            changes.append(Change("end", self.current))
        if self.current == badge:
            self.current = None
        else:
            self.current = badge
            changes.append(Change("start", badge))
        return changes
