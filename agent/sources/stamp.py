"""Events stamped when a source sees them, not when the runner drains them a poll later."""

from __future__ import annotations

import time

from agent.sources import SourceEvent


def stamped(
    type: str,
    data: dict[str, str | int | float | bool] | None = None,
    user: str | None = None,
    category: str = "unknown",
) -> SourceEvent:
    return SourceEvent(type, data or {}, user, category, ts_ms=time.time_ns() // 1_000_000)
