"""``labmeter period verify``: does an evidence package still prove what it says?

Checks every hash and the signature against the trust anchor the auditor brings (the lab's
pinned public key, the manifest hash cited with the report: ``archive/manifest.py``); with a
config, also the closure recorded in InfluxDB and in the archive folder's record. Restores
the raw data into an empty InfluxDB started for the purpose (``labmeter/localstack.py``, as
the demo does), and sums the per-asset and per-lab rollups again from it with the
collector's code; rebuilds the report from the archived inventory and settings; compares
every figure with the archived report. Floats are compared to 1e-9 relative: a sum of the
same numbers read through daily instead of hourly rollups may differ in its last bits, never
more.
"""

from __future__ import annotations

import hashlib
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
from labmeter.archive import ledger
from labmeter.archive.lineprotocol import restore
from labmeter.archive.manifest import MANIFEST, Trust, check, member, read_json, read_manifest
from labmeter.collector.daily import rederive
from labmeter.config import Config, InfluxConfig
from labmeter.errors import EvidenceError
from labmeter.evidence import bookings as archived_bookings
from labmeter.evidence import report as report_mod
from labmeter.evidence.close import SETTINGS, Progress, _no_progress
from labmeter.influx import InfluxV1
from labmeter.influxql import STAR, agg, select
from labmeter.localstack import influxd, wait_influx_ready
from labmeter.periods import closures_query, parse_closures
from labmeter.schema import Measurement
from labmeter.timeparse import iso

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
    trust: Trust = Trust(),  # noqa: B008 - frozen
    progress: Progress = _no_progress,
    on_restored: Callable[[InfluxV1], None] = lambda _influx: None,
    config: Config | None = None,
) -> tuple[list[str], str]:
    """Every problem found, each naming a file or a figure (empty: the package holds); and
    who signed it. ``config``: compare with the closure its InfluxDB and archive folder
    record. ``on_restored`` sees the database before the report is rebuilt."""
    progress("hashes and signature", None, None)
    problems, signer = check(folder, trust)
    if config is not None and not problems:
        problems += recorded(folder, config)
    if problems:
        return problems, signer
    try:
        settings = read_json(folder / SETTINGS, SETTINGS)
        archived = read_json(folder / report_mod.REPORT_JSON, report_mod.REPORT_JSON)
        start_ms, end_ms = int(settings["start_ms"]), int(settings["end_ms"])
        site, closed_ms = str(settings.get("site", "")), int(settings["closed_ms"])
        inventory = settings.get("inventory")
        inventory_path = member(folder, inventory["file"]) if inventory else None
    except (KeyError, TypeError, ValueError) as exc:
        raise EvidenceError(f"{SETTINGS}: not the settings of a package ({exc!r})") from exc
    problems += _settings(settings)
    with tempfile.TemporaryDirectory(prefix="labmeter-verify-") as tmp:
        db = influxd(Path(tmp) / "influxdb")
        db.start()
        try:
            url = f"http://127.0.0.1:{db.port}"
            wait_influx_ready(url)
            config_ = InfluxConfig(url=url, database="labmeter_verify", timeout_s=120.0)
            influx = InfluxV1(config_)
            try:
                # One shard a year, not InfluxDB 1.x's week: a year's report reads 53 times
                # fewer shards (bench/report.py), and the figures cannot depend on it.
                influx.query(influxql.create_database(config_.database, shard_weeks=52))
                files = sorted((folder / "data").glob("*.lp.gz"))
                restore(config_, files, lambda n: progress("restoring raw data", n, None))
                problems += _counts(influx, settings.get("data", {}))
                on_restored(influx)
                progress("summing the per-asset and per-lab rollups", None, None)
                rederive(influx, influx, start_ms, end_ms)
            finally:
                influx.close()
            rebuilt = report_mod.build_report(
                config_,
                inventory_path,
                start_ms,
                end_ms,
                site,
                closed_ms,
                lambda step, total, label: progress(f"report: {label}", step, total),
                _declared(folder, settings, inventory_path, start_ms, end_ms),
            )
        finally:
            db.stop()
    fresh = orjson.loads(produce(rebuilt, Format.json, Lang.it))
    progress("comparing every figure", None, None)
    problems += [f"{report_mod.REPORT_JSON}: {d}" for d in differences(archived, fresh)]
    return problems, signer


def recorded(folder: Path, config: Config) -> list[str]:
    """The package against its closure: as InfluxDB records it (``config.influx``) and as
    the archive folder records it (``evidence.archive_dir``). Whoever rewrote a closure in
    one of them is named here."""
    manifest = read_manifest(folder)
    digest = hashlib.sha256((folder / MANIFEST).read_bytes()).hexdigest()
    try:
        cid, site = int(manifest["closure_id"]), str(manifest.get("site", ""))
        window = (int(manifest["start_ms"]), int(manifest["end_ms"]), site)
    except (KeyError, TypeError, ValueError):
        return [f"{MANIFEST}: names no closure (closure_id, start_ms, end_ms)"]
    expected = (*window, "closed", digest)
    problems = []
    influx = InfluxV1(config.influx)
    try:
        closures = parse_closures(influx.query(closures_query()), withdrawn=True)
    finally:
        influx.close()
    found = next((c for c in closures if (c.id, c.site) == (cid, site)), None)
    if found is None:
        problems.append(f"InfluxDB records no closure {cid} of this package's period")
    elif (found.start_ms, found.end_ms, found.site, found.state, found.manifest_sha256) != expected:
        problems.append(
            f"InfluxDB's closure {cid} says {found}, manifest {found.manifest_sha256 or '-'}; "
            f"the package is of {iso(window[0])} - {iso(window[1])}, manifest {digest}"
        )
    if config.evidence.archive_dir:
        records = ledger.read(Path(config.evidence.archive_dir))
        mine = next((r for r in records if r.id == cid), None)
        if mine is None:
            problems.append(f"{ledger.RECORD}: no record of closure {cid}")
        elif (mine.start_ms, mine.end_ms, mine.site, "closed", mine.manifest_sha256) != expected:
            problems.append(
                f"{ledger.RECORD}: closure {cid} is recorded as {mine}, manifest "
                f"{mine.manifest_sha256}; the package's manifest is {digest}"
            )
    return problems


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
