"""The report of a period, built the same way when it is closed and when it is verified."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labmeter.config import InfluxConfig
from labmeter.influx import InfluxV1

if TYPE_CHECKING:  # the API is imported when a report is built, not when the CLI starts
    from labmeter.api.report.build import Declared
    from labmeter.api.report.model import Report

REPORT_JSON = "report/report.json"


def settings() -> dict[str, Any]:
    """The settings that shape the report's figures, the rollups' day zone included."""
    from labmeter.evidence.fingerprint import settings as figures

    return figures()


def build_report(
    influx: InfluxConfig,
    inventory_path: Path | None,
    start_ms: int,
    end_ms: int,
    site: str,
    now_ms: int,
    progress: Callable[[int, int, str], None] | None = None,
    declared: Declared | None = None,
) -> Report:
    """The report's data for ``[start, end)`` (one site or all) as of ``now_ms``, reconciled
    with ``declared`` bookings if any."""
    from labmeter.api.analysis import open_scope
    from labmeter.api.plan import Filters
    from labmeter.api.report.build import build
    from labmeter.inventory import load
    from labmeter.opening import OpeningHours

    inventory = load(inventory_path) if inventory_path is not None else None
    client = InfluxV1(influx)
    try:
        scope = open_scope(
            client, OpeningHours(inventory), start_ms, end_ms, Filters(site or None), now_ms
        )
        return build(scope, progress, declared)
    finally:
        client.close()


def write_formats(report: Report, folder: Path) -> list[Path]:
    """The report in every format and both languages; JSON once (it has no language)."""
    from labmeter.api.report.formats import Format, filename, produce
    from labmeter.api.report.texts import Lang

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    json_path = folder.parent / REPORT_JSON
    json_path.write_bytes(produce(report, Format.json, Lang.it))
    out.append(json_path)
    for fmt in (Format.csv, Format.xlsx, Format.html, Format.pdf):
        for lang in (Lang.it, Lang.en):
            path = folder / filename(report, fmt, lang)
            path.write_bytes(produce(report, fmt, lang))
            out.append(path)
    return out
