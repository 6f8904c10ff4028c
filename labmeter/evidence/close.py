"""``labmeter period close``: refuse new data in a window, then seal what it holds.

Order matters: the closure is written first (collectors refuse the window from then on),
the close waits until every live collector has applied it and owes no rollup before the
window's end (``collector/admission.py`` says why that is enough), and only then reads the
report and the raw data. The package is written in a hidden folder and renamed when
complete, recorded in the archive folder's own record (``archive/ledger.py``), and the
closure is marked ``closed`` with the manifest's hash last. A close that fails half-way
leaves the window refused and ``closing``: the same command finishes it.

One close at a time: a lock on the archive folder (the CLI and the API's admin route alike),
and the closure itself as the lock between hosts that do not share that folder: of two
overlapping closes the one with the lower id goes on and the other withdraws its closure;
a close goes on sealing only while the closure still names it as its owner.
The inventory is read once, at the start: the report, the bookings' checks, the copy in the
package and its hash all come from the same bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from labmeter import __version__
from labmeter.api.report.build import settings as report_settings
from labmeter.archive import ledger
from labmeter.archive.lineprotocol import Dumper
from labmeter.archive.manifest import load_private_key, seal
from labmeter.bookings import BookingError, Bookings, open_bookings
from labmeter.config import Config, InfluxConfig
from labmeter.contract import SEGMENT, SEGMENT_PATTERN
from labmeter.errors import EvidenceError, InfluxError
from labmeter.evidence import bookings as archived_bookings
from labmeter.evidence import report as report_mod
from labmeter.influx import InfluxV1, LineWriter, make_writer
from labmeter.inventory import Inventory
from labmeter.periods import Closure, closures_query, heartbeats_query, parse_closures
from labmeter.schema import DEFAULT_TZ, Calendar
from labmeter.timeparse import iso

# A collector silent for longer has stopped, or is cut off from InfluxDB: it reads the
# closures again before it writes anything (``collector.admission.STALE_S`` = 20 s), and a
# write it had in flight has ended (influx timeouts are seconds), so it need not be waited for.
LIVE_S = 60.0
SETTINGS = "settings.json"
LOCK = ".close.lock"

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


def calendar_of(config: Config, inventory: Inventory | None = None) -> Calendar:
    """The rollups' calendar: the time zone of the inventory the collector cuts days with
    (``inventory``: that file, read already)."""
    from labmeter.inventory import load

    if inventory is not None:
        return Calendar(inventory.timezone)
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


def _bookings(config: Config, inventory: Inventory | None) -> Bookings | None:
    """The bookings the API reconciles with (feeds: their last good copies), checked against
    the inventory; None when none are configured."""
    if not config.bookings.sources:
        return None
    try:
        return open_bookings(config.bookings, inventory)
    except BookingError as exc:
        raise EvidenceError(f"the bookings do not load: {'; '.join(exc.problems)}") from exc


def _read_inventory(config: Config) -> tuple[Path, bytes, Inventory] | None:
    """``api.inventory`` read once: its path, its bytes and what they say."""
    from labmeter.inventory import InventoryError
    from labmeter.inventory.load import from_bytes

    if not config.api.inventory:
        return None
    path = Path(config.api.inventory)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise EvidenceError(f"api.inventory {path} does not exist") from exc
    except OSError as exc:
        raise EvidenceError(f"api.inventory {path} cannot be read ({exc.strerror})") from exc
    try:
        return path, data, from_bytes(data, str(path))
    except InventoryError as exc:
        raise EvidenceError(f"the inventory does not load: {'; '.join(exc.problems)}") from exc


def closing_influx(config: Config) -> InfluxConfig:
    """The InfluxDB credentials that close periods: ``evidence.influx_username`` when set
    (the API's own user only reads), else ``influx``'s."""
    if not config.evidence.influx_username:
        return config.influx
    return dataclasses.replace(
        config.influx,
        username=config.evidence.influx_username,
        password=config.evidence.influx_password,
    )


@contextlib.contextmanager
def archive_lock(archive: Path) -> Iterator[None]:
    """One close at a time on an archive folder: a second one, from the CLI or the API, is
    refused at once rather than writing beside the first."""
    import fcntl

    fd = os.open(archive / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise EvidenceError(
                f"another close is running on the archive folder {archive} (it holds {LOCK}): "
                "let it finish, then run this one again"
            ) from exc
        yield
    finally:
        os.close(fd)  # releases the lock, also when the process dies


def _claim(influx: InfluxV1, writer: LineWriter, closure: Closure, new: bool) -> None:
    """Write ``closure`` and check that it holds: no overlapping close began before it (a
    lower id), and the point still names this close as its owner. A new closure that lost
    is withdrawn (it then refuses nothing)."""
    try:
        writer.write_lines([closure.to_line()])
    except InfluxError as exc:
        if exc.status not in (401, 403):
            raise
        raise EvidenceError(
            f"InfluxDB refused the closure (HTTP {exc.status}): this user may not write; "
            "close with the closing user (evidence.influx_username and influx_password)"
        ) from exc
    _still_ours(influx, writer, closure, withdraw=new)


def _still_ours(influx: InfluxV1, writer: LineWriter, closure: Closure, withdraw: bool) -> None:
    window = (closure.start_ms, closure.end_ms, closure.site)
    for other in parse_closures(influx.query(closures_query())):
        if (other.id, other.site) == (closure.id, closure.site):
            if other.owner != closure.owner:
                raise EvidenceError(
                    f"another close took over the period {other}: it finishes it, not this one"
                )
        elif other.id < closure.id and other.overlaps(*window):
            if withdraw:
                writer.write_lines([dataclasses.replace(closure, state="withdrawn").to_line()])
            raise EvidenceError(f"another close of an overlapping window began first: {other}")


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
    read = _read_inventory(config)
    inventory = read[2] if read is not None else None
    calendar = calendar_of(config, inventory if not config.collector.inventory else None)
    check_window(start_ms, end_ms, site, now_ms, calendar)
    archive = check_archive(config)
    key = load_private_key(config.evidence.signing_key) if config.evidence.signing_key else None
    books = _bookings(config, inventory)
    with archive_lock(archive):
        return _close(config, archive, start_ms, end_ms, site, progress, now_ms, began, read,
                      calendar, key, books)  # fmt: skip


def _close(
    config: Config,
    archive: Path,
    start_ms: int,
    end_ms: int,
    site: str,
    progress: Progress,
    now_ms: int,
    began: float,
    read: tuple[Path, bytes, Inventory] | None,
    calendar: Calendar,
    key: Any,
    books: Bookings | None,
) -> Closed:
    name = folder_name(start_ms, end_ms, site, calendar)
    final = archive / name
    closing = closing_influx(config)
    influx = InfluxV1(closing)
    writer = make_writer(closing)
    owner = secrets.token_hex(8)
    partial = archive / f".{name}.partial"
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
        closure = dataclasses.replace(resume, owner=owner) if resume else Closure(
            max([now_ms, *(c.id + 1 for c in existing)]), start_ms, end_ms, site, owner=owner
        )  # fmt: skip
        _claim(influx, writer, closure, new=resume is None)
        progress("closure written: new data in the window is refused", None, None)
        collectors = wait_for_collectors(influx, closure, config.evidence.close_wait_s, progress)
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        inventory_meta: dict[str, Any] | None = None
        inventory = None
        if read is not None:
            path, data, inventory = read
            (partial / "inventory").mkdir()
            (partial / "inventory" / path.name).write_bytes(data)
            inventory_meta = {
                "file": f"inventory/{path.name}",
                "sha256": inventory.sha256,
                "source": str(path.resolve()),
            }
        # The report reads the bookings from the package's copies, as verify will.
        booked, bookings_meta = None, None
        if books is not None:
            bookings_meta = archived_bookings.archive(books, partial, config.bookings.no_show_below)
            booked = archived_bookings.declared(partial, bookings_meta, inventory, start_ms, end_ms)
        report = report_mod.build_report(
            closing,
            inventory,
            start_ms,
            end_ms,
            site,
            now_ms,
            lambda step, total, label: progress(f"report: {label}", step, total),
            booked,
        )
        # The raw data are read (InfluxDB's work) while the formats render (ours).
        dumper = Dumper(closing, calendar)
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
        _still_ours(influx, writer, closure, withdraw=False)
        os.replace(partial, final)
        closed = dataclasses.replace(
            closure, state="closed", manifest_sha256=digest, archive=str(final)
        )
        ledger.append(archive, closed)
        writer.write_lines([closed.to_line()])
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        influx.close()
        writer.close()
    points = sum(e.points for e in exported)
    return Closed(closed, final, digest, points, time.monotonic() - began)


def list_closures(config: Config) -> tuple[list[Closure], dict[int, str]]:
    """The closures in InfluxDB, and those that differ from the archive folder's record
    (none when ``evidence.archive_dir`` is not set)."""
    influx = InfluxV1(config.influx)
    try:
        closures = parse_closures(influx.query(closures_query()))
    finally:
        influx.close()
    if not config.evidence.archive_dir:
        return closures, {}
    return closures, ledger.compare(closures, ledger.read(Path(config.evidence.archive_dir)))
