"""``labmeter period verify``: does an evidence package still prove what it says?

Checks every hash and the signature; restores the raw data into an empty InfluxDB started
for the purpose (``labmeter/localstack.py``, as the demo does), and sums the per-asset and
per-lab rollups again from it with the collector's code; rebuilds the report from the
archived inventory and settings; compares every figure with the archived report. Floats are
compared to 1e-9 relative: a sum of the same numbers read through daily instead of hourly
rollups may differ in its last bits, never more.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from labmeter import influxql
from labmeter.api.report.build import Declared
from labmeter.api.report.build import settings as report_settings
from labmeter.api.report.formats import Format, produce
from labmeter.api.report.texts import Lang
from labmeter.archive.lineprotocol import restore
from labmeter.archive.manifest import check
from labmeter.collector.daily import rederive
from labmeter.config import InfluxConfig
from labmeter.errors import EvidenceError
from labmeter.evidence import bookings as archived_bookings
from labmeter.evidence import report as report_mod
from labmeter.evidence.close import SETTINGS, Progress, _no_progress
from labmeter.influx import InfluxV1
from labmeter.influxql import STAR, agg, select
from labmeter.localstack import influxd, wait_influx_ready
from labmeter.schema import Measurement

# What a report says about its own making, not about the window: compared by nothing, and
# said so by ``period verify``.
NOT_COMPARED: dict[tuple[str, ...], str] = {
    ("meta", "generated_ms"): "when the report was made",
    ("meta", "inventory"): "where the inventory file lay (its SHA-256 is compared)",
    ("meta", "rolled_until_ms"): (
        "how far the database's hourly rollups reached (at most the window's end): the "
        "restored database has rollups only for the hours with data, and the figures are the "
        "same read from rollups or raw points"
    ),
    ("evidence", "fingerprint", "closed"): "the closure's state: 'closing' in the package",
}
NAMING_KEYS = ("site", "lab", "device", "app", "fund", "cup", "period_start_ms", "version")
REL_TOLERANCE = 1e-9


def verify(
    folder: Path,
    public_key: Path | None = None,
    progress: Progress = _no_progress,
    on_restored: Callable[[InfluxV1], None] = lambda _influx: None,
) -> tuple[list[str], str]:
    """Every problem found, each naming a file or a figure (empty: the package holds); and
    who signed it. ``on_restored`` sees the database before the report is rebuilt."""
    progress("hashes and signature", None, None)
    problems, signer = check(folder, public_key)
    if problems:
        return problems, signer
    try:
        settings = orjson.loads((folder / SETTINGS).read_bytes())
        archived = orjson.loads((folder / report_mod.REPORT_JSON).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise EvidenceError(f"cannot read the package: {exc}") from exc
    problems += _settings(settings)
    inventory = settings.get("inventory")
    inventory_path = folder / inventory["file"] if inventory else None
    with tempfile.TemporaryDirectory(prefix="labmeter-verify-") as tmp:
        db = influxd(Path(tmp) / "influxdb")
        db.start()
        try:
            url = f"http://127.0.0.1:{db.port}"
            wait_influx_ready(url)
            config = InfluxConfig(url=url, database="labmeter_verify", timeout_s=120.0)
            influx = InfluxV1(config)
            try:
                # One shard a year, not InfluxDB 1.x's week: a year's report reads 53 times
                # fewer shards (bench/report.py), and the figures cannot depend on it.
                influx.query(influxql.create_database(config.database, shard_weeks=52))
                files = sorted((folder / "data").glob("*.lp.gz"))
                restore(config, files, lambda n: progress("restoring raw data", n, None))
                problems += _counts(influx, settings.get("data", {}))
                on_restored(influx)
                progress("summing the per-asset and per-lab rollups", None, None)
                rederive(influx, influx, int(settings["start_ms"]), int(settings["end_ms"]))
            finally:
                influx.close()
            start_ms, end_ms = int(settings["start_ms"]), int(settings["end_ms"])
            rebuilt = report_mod.build_report(
                config,
                inventory_path,
                start_ms,
                end_ms,
                str(settings.get("site", "")),
                int(settings["closed_ms"]),
                lambda step, total, label: progress(f"report: {label}", step, total),
                _declared(folder, settings, inventory_path, start_ms, end_ms),
            )
        finally:
            db.stop()
    fresh = orjson.loads(produce(rebuilt, Format.json, Lang.it))
    progress("comparing every figure", None, None)
    problems += [f"{report_mod.REPORT_JSON}: {d}" for d in differences(archived, fresh)]
    return problems, signer


def _declared(
    folder: Path, settings: dict[str, Any], inventory: Path | None, start_ms: int, end_ms: int
) -> Declared | None:
    """The bookings from the package's copies, never the live calendars."""
    meta = settings.get("bookings")
    if not meta:
        return None
    from labmeter.inventory import load

    return archived_bookings.declared(
        folder, meta, load(inventory) if inventory is not None else None, start_ms, end_ms
    )


def _settings(archived: dict[str, Any]) -> list[str]:
    current = report_settings()
    return [
        f"{SETTINGS}: report setting {k} was {v!r}, this labmeter uses {current.get(k)!r}"
        for k, v in sorted(archived.get("report", {}).items())
        if current.get(k) != v
    ]


def _counts(influx: InfluxV1, expected: dict[str, int]) -> list[str]:
    out = []
    for measurement, points in sorted(expected.items()):
        found = 0
        q = select(agg("count", STAR), source=Measurement(measurement, (), ()))
        for series in influx.query(q):
            found = max(found, *(int(v or 0) for v in series.values[0][1:]))
        if found != points:
            out.append(f"data/{measurement}.lp.gz: {found} points restored, {points} archived")
    return out


def _name(item: Any, index: int) -> str:
    if isinstance(item, dict):
        named = [str(item[k]) for k in NAMING_KEYS if item.get(k) not in (None, "")]
        if named:
            return "/".join(named)
    return str(index)


def differences(old: Any, new: Any, path: tuple[str, ...] = ()) -> list[str]:
    """Every figure that differs, as ``section.row.field: archived -> rebuilt``."""
    if path in NOT_COMPARED:
        return []
    where = ".".join(path) or "(report)"
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            if key not in new:
                out.append(f"{where}.{key}: archived, missing when rebuilt")
            elif key not in old:
                out.append(f"{where}.{key}: new when rebuilt")
            else:
                out += differences(old[key], new[key], (*path, str(key)))
        return out
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{where}: {len(old)} rows archived, {len(new)} rebuilt"]
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out += differences(a, b, (*path, f"[{_name(a, i)}]"))
        return out
    if _number(old) and _number(new):
        if math.isclose(float(old), float(new), rel_tol=REL_TOLERANCE, abs_tol=1e-9):
            return []
    elif old == new:
        return []
    return [f"{where}: archived {old!r}, rebuilt {new!r}"]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
