"""Query-string times: RFC 3339 or epoch seconds, as the API promises."""

from __future__ import annotations

import math
from datetime import UTC, datetime

MAX_EPOCH_S = 1e11  # year ~5138: beyond any window the API accepts


def parse_time(value: str) -> int:
    """Epoch milliseconds from ``2026-11-26T08:00:00Z`` or ``1764144000`` (seconds)."""
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or abs(seconds) > MAX_EPOCH_S:
            raise ValueError(f"{value!r} is out of range for epoch seconds")
        return round(seconds * 1000)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{value!r} is neither RFC 3339 nor epoch seconds") from exc
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone offset (RFC 3339 needs one, e.g. Z)")
    try:
        return int(parsed.astimezone(UTC).timestamp() * 1000)
    except OverflowError as exc:  # 0001-01-01T00:00:00+14:00 lies before year 1 in UTC
        raise ValueError(f"{value!r} is out of range") from exc


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
