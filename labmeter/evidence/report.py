"""The report of a period, built the same way when it is closed and when it is verified."""

from __future__ import annotations

from pathlib import Path

from labmeter.api.plan import Filters
from labmeter.api.report import make
from labmeter.api.report.build import Declared
from labmeter.api.report.formats import Format, filename, produce
from labmeter.api.report.model import Report
from labmeter.api.report.texts import Lang
from labmeter.archive.sealed import REPORT_JSON as REPORT_JSON  # where verify reads it
from labmeter.config import InfluxConfig
from labmeter.inventory import Inventory, load


def build_report(
    influx: InfluxConfig,
    inventory_path: Path | Inventory | None,
    start_ms: int,
    end_ms: int,
    site: str,
    now_ms: int,
    progress: make.Progress | None = None,
    declared: Declared | None = None,
) -> Report:
    """The report of ``[start, end)`` (one site or all) from the inventory file it names, or
    from an inventory already read."""
    inventory = load(inventory_path) if isinstance(inventory_path, Path) else inventory_path
    return make.build_report(
        influx, inventory, start_ms, end_ms, Filters(site or None), now_ms, progress, declared
    )


def write_formats(report: Report, folder: Path) -> list[Path]:
    """The report in every format and both languages; JSON once (it has no language)."""
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
