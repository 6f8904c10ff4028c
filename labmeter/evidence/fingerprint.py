"""What a report states about its own making: the inventory's hash, the version, the
settings, the closed period it belongs to, and what the collectors refused in its window.

An auditor reading a figure years later can tie it to the exact inventory file and software
that made it, and, for a closed period, to the evidence package (its manifest's SHA-256).
"""

from __future__ import annotations

from typing import Any

from labmeter.influx import InfluxV1
from labmeter.influxql import agg, select
from labmeter.periods import Closure, closures_query, parse_closures
from labmeter.schema import REFUSALS


def settings() -> dict[str, Any]:
    """The settings in the code that shape the report's figures (thresholds, definitions)."""
    from labmeter.api.report import build
    from labmeter.sessions import LOOK_BACK_MS, SESSION_GAP_TOLERANCE_MS

    return {
        "underused_below": build.UNDERUSED_BELOW,
        "low_coverage_below": build.LOW_COVERAGE_BELOW,
        "durability_years": build.DURABILITY_YEARS,
        "retention_years": build.RETENTION_YEARS,
        "session_gap_tolerance_ms": SESSION_GAP_TOLERANCE_MS,
        "session_look_back_ms": LOOK_BACK_MS,
    }


def closure_of(influx: InfluxV1, start_ms: int, end_ms: int, site: str | None) -> Closure | None:
    """The closed period holding the whole window (for every site, or the window's site)."""
    for closure in parse_closures(influx.query(closures_query())):
        if (
            closure.start_ms <= start_ms
            and end_ms <= closure.end_ms
            and (not closure.site or closure.site == site)
        ):
            return closure
    return None


def refusals(influx: InfluxV1, start_ms: int, end_ms: int, site: str | None) -> dict[str, int]:
    """Messages the collectors refused while the window ran, by reason."""
    query = (
        select(agg("sum", "count"), source=REFUSALS)
        .between(start_ms, end_ms)
        .where(site=site)
        .group_by("reason")
    )
    out: dict[str, int] = {}
    for series in influx.query(str(query)):
        reason = series.tags.get("reason", "")
        out[reason] = out.get(reason, 0) + int(series.values[0][1] or 0)
    return dict(sorted(out.items()))
