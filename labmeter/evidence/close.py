"""``labmeter period close``: refuse new data in a window, then seal what it holds.

Order matters: the closure is written first (collectors refuse the window from then on),
the close waits until every live collector has applied it and owes no rollup before the
window's end (``collector/admission.py`` says why that is enough), and only then reads the
report and the raw data. The package is written in a hidden folder and renamed when
complete; the closure is marked ``closed`` with the manifest's hash last. A close that fails
half-way leaves the window refused and ``closing``: the same command finishes it.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from labmeter import __version__
from labmeter.api.report.build import settings as report_settings
from labmeter.archive.lineprotocol import Dumper
from labmeter.archive.manifest import load_private_key, seal, sha256_file
from labmeter.bookings import BookingError, Bookings, open_bookings
from labmeter.config import Config
from labmeter.contract import SEGMENT, SEGMENT_PATTERN
from labmeter.errors import EvidenceError
from labmeter.evidence import bookings as archived_bookings
from labmeter.evidence import report as report_mod
from labmeter.influx import InfluxV1, make_writer
from labmeter.periods import Closure, closures_query, heartbeats_query, parse_closures
from labmeter.schema import DEFAULT_TZ, Calendar
from labmeter.timeparse import iso

# A collector silent for longer has stopped, or is cut off from InfluxDB: it reads the
# closures again before it writes anything (``collector.admission.STALE_S`` = 20 s), and a
# write it had in flight has ended (influx timeouts are seconds), so it need not be waited for.
LIVE_S = 60.0
SETTINGS = "settings.json"

Progress = Callable[[str, float | None, float | None], None]  # stage, done, total


def _no_progress(_stage: str, _done: float | None, _total: float | None) -> None:
    return None


@dataclass(frozen=True)
class Closed:
    closure: Closure
    folder: Path
    manifest_sha256: str
    points: int
    seconds: float


def calendar_of(config: Config) -> Calendar:
    """The rollups' calendar: the time zone of the inventory the collector cuts days with."""
    from labmeter.inventory import load

    path = config.collector.inventory or config.api.inventory
    return Calendar(load(path).timezone if path else DEFAULT_TZ)


def check_window(start_ms: int, end_ms: int, site: str, now_ms: int, calendar: Calendar) -> None:
    """A period is whole local days (the daily rollups' days) and lies in the past."""
    if end_ms <= start_ms:
        raise EvidenceError("the period's end must be after its start")
    if end_ms > now_ms:
        raise EvidenceError(f"the period ends {iso(end_ms)}, in the future: only the past closes")
    for name, ms in (("start", start_ms), ("end", end_ms)):
        if calendar.day_of(ms) != ms:
            raise EvidenceError(
                f"the period's {name} {iso(ms)} is not a local midnight in {calendar.tz}: "
                "periods are whole days, so that every daily rollup lies wholly in or out of them"
            )
    if site and not SEGMENT.fullmatch(site):
        raise EvidenceError(f"site {site!r} is not a topic segment {SEGMENT_PATTERN}")


def folder_name(start_ms: int, end_ms: int, site: str, calendar: Calendar) -> str:
    first = calendar.date_of(start_ms)
    last = calendar.date_of(end_ms) - timedelta(days=1)
    return f"period-{site or 'all'}-{first:%Y%m%d}-{last:%Y%m%d}"


def check_archive(config: Config) -> Path:
    """The archive folder, created if missing, known to be writable."""
    if not config.evidence.archive_dir:
        raise EvidenceError("evidence.archive_dir is not set: where should the package go?")
    folder = Path(config.evidence.archive_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise EvidenceError(
            f"archive folder {folder} is not writable ({exc.strerror}): "
            "fix evidence.archive_dir or its permissions"
        ) from exc
    return folder


def wait_for_collectors(
    influx: InfluxV1, closure: Closure, timeout_s: float, progress: Progress
) -> list[str]:
    """Until every live collector has applied ``closure`` and owes no rollup before its end;
    the collectors that confirmed."""
    deadline = time.monotonic() + timeout_s
    while True:
        now_ms = time.time() * 1000
        live, pending = [], []
        for series in influx.query(heartbeats_query()):
            name = series.tags.get("collector", "?")
            _t, seen, applied, owed = series.values[0]
            if seen is None or seen < now_ms - LIVE_S * 1000:
                continue
            live.append(name)
            if applied is None or applied < closure.id:
                pending.append(f"{name} has not applied the closure")
            elif owed is not None and 0 <= owed < closure.end_ms:
                pending.append(f"{name} still owes rollups from {iso(int(owed))}")
        progress("waiting for collectors", len(live) - len(pending), len(live))
        if not pending:
            return live
        if time.monotonic() > deadline:
            raise EvidenceError(
                f"after {timeout_s:.0f} s: {'; '.join(pending)}. The window is refused already "
                "(state 'closing'); run the same close again to finish it"
            )
        time.sleep(1.0)


def _bookings(config: Config, inventory: Path | None) -> Bookings | None:
    """The bookings the API reconciles with (feeds: their last good copies), checked against
    the inventory; None when none are configured."""
    if not config.bookings.sources:
        return None
    from labmeter.inventory import load

    try:
        return open_bookings(config.bookings, load(inventory) if inventory is not None else None)
    except BookingError as exc:
        raise EvidenceError(f"the bookings do not load: {'; '.join(exc.problems)}") from exc


def close_period(
    config: Config,
    start_ms: int,
    end_ms: int,
    site: str = "",
    progress: Progress = _no_progress,
    now_ms: int | None = None,
) -> Closed:
    """Close ``[start, end)`` for ``site`` ("" = every site) and write its evidence package."""
    began = time.monotonic()
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    calendar = calendar_of(config)
    check_window(start_ms, end_ms, site, now_ms, calendar)
    archive = check_archive(config)
    key = load_private_key(config.evidence.signing_key) if config.evidence.signing_key else None
    inventory = Path(config.api.inventory) if config.api.inventory else None
    if inventory is not None and not inventory.is_file():
        raise EvidenceError(f"api.inventory {inventory} does not exist")
    books = _bookings(config, inventory)
    name = folder_name(start_ms, end_ms, site, calendar)
    final = archive / name
    influx = InfluxV1(config.influx)
    writer = make_writer(config.influx)
    try:
        existing = parse_closures(influx.query(closures_query()))
        resume = next(
            (
                c
                for c in existing
                if (c.start_ms, c.end_ms, c.site, c.state) == (start_ms, end_ms, site, "closing")
            ),
            None,
        )
        for other in existing:
            if other is not resume and other.overlaps(start_ms, end_ms, site):
                raise EvidenceError(f"the window overlaps the period closed {other}")
        if final.exists():
            raise EvidenceError(f"{final} exists already: a package is never overwritten")
        closure = resume or Closure(
            max([now_ms, *(c.id + 1 for c in existing)]), start_ms, end_ms, site
        )
        writer.write_lines([closure.to_line()])
        progress("closure written: new data in the window is refused", None, None)
        collectors = wait_for_collectors(influx, closure, config.evidence.close_wait_s, progress)
        partial = archive / f".{name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        # The report reads the bookings from the package's copies, as verify will.
        booked, bookings_meta = None, None
        if books is not None:
            bookings_meta = archived_bookings.archive(books, partial, config.bookings.no_show_below)
            booked = archived_bookings.declared(
                partial, bookings_meta, books.inventory, start_ms, end_ms
            )
        report = report_mod.build_report(
            config.influx,
            inventory,
            start_ms,
            end_ms,
            site,
            now_ms,
            lambda step, total, label: progress(f"report: {label}", step, total),
            booked,
        )
        # The raw data are read (InfluxDB's work) while the formats render (ours).
        dumper = Dumper(config.influx, calendar)
        try:
            with ThreadPoolExecutor(1) as background:
                dumping = background.submit(
                    dumper.dump,
                    partial / "data",
                    start_ms,
                    end_ms,
                    site,
                    lambda m, n: progress(f"raw data: {m}", n, None),
                )
                report_mod.write_formats(report, partial / "report")
                exported = dumping.result()
        finally:
            dumper.close()
        inventory_meta: dict[str, Any] | None = None
        if inventory is not None:
            (partial / "inventory").mkdir()
            shutil.copyfile(inventory, partial / "inventory" / inventory.name)
            inventory_meta = {
                "file": f"inventory/{inventory.name}",
                "sha256": sha256_file(inventory),
                "source": str(inventory.resolve()),
            }
        meta = {
            "period": {"start": iso(start_ms), "end": iso(end_ms), "site": site},
            "start_ms": start_ms,
            "end_ms": end_ms,
            "site": site,
            "closure_id": closure.id,
            "closed_ms": now_ms,
            "labmeter_version": __version__,
        }
        settings = {
            **meta,
            "python": sys.version.split()[0],
            "inventory": inventory_meta,
            "bookings": bookings_meta,
            "report": report_settings(),
            "api": {"stale_intervals": config.api.stale_intervals},
            "collector": {
                "max_age_days": config.collector.max_age_days,
                "rollup_grace_s": config.collector.rollup_grace_s,
            },
            "collectors_confirmed": sorted(collectors),
            "database": config.influx.database,
            "data": {e.measurement: e.points for e in exported},
        }
        import orjson

        (partial / SETTINGS).write_bytes(
            orjson.dumps(settings, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        )
        progress("manifest", None, None)
        digest = seal(partial, meta, key)
        os.replace(partial, final)
        closed = dataclasses.replace(
            closure, state="closed", manifest_sha256=digest, archive=str(final)
        )
        writer.write_lines([closed.to_line()])
    finally:
        influx.close()
        writer.close()
    points = sum(e.points for e in exported)
    return Closed(closed, final, digest, points, time.monotonic() - began)


def list_closures(config: Config) -> list[Closure]:
    influx = InfluxV1(config.influx)
    try:
        return parse_closures(influx.query(closures_query()))
    finally:
        influx.close()
