"""Query-string times: RFC 3339 or epoch seconds, as the API promises."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time(value: str) -> int:
    """Epoch milliseconds from ``2026-11-26T08:00:00Z`` or ``1764144000`` (seconds)."""
    text = value.strip()
    try:
        return round(float(text) * 1000)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{value!r} is neither RFC 3339 nor epoch seconds") from exc
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone offset (RFC 3339 needs one, e.g. Z)")
    return int(parsed.astimezone(UTC).timestamp() * 1000)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
