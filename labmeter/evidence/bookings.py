"""The bookings of a closed period: copied into its package, and read back from the copies.

A closed period's report reconciles measured use with bookings (section 6), and a calendar
can be edited, a feed can change or vanish afterwards. So the close copies every calendar the
bookings are read from (the sources file, each calendar file, each feed's last good copy)
into ``bookings/``, feed URLs redacted (a token in a URL is a secret, not evidence), and
builds the report from those copies, by the same function ``labmeter period verify``
rebuilds it with: the report can only have used what the package holds, and the manifest's
SHA-256 of each copy names the one that was altered.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from labmeter.archive.manifest import member
from labmeter.bookings import Bookings, Defaults
from labmeter.bookings.feeds import FeedState
from labmeter.bookings.fetch import shown_url
from labmeter.bookings.sources import read_calendar
from labmeter.errors import EvidenceError
from labmeter.inventory import Inventory

if TYPE_CHECKING:  # the API is imported when a report is built, not when the CLI starts
    from labmeter.api.report.build import Declared

FOLDER = "bookings"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:80] or "calendar"


def archive(books: Bookings, package: Path, no_show_below: float) -> dict[str, Any]:
    """Copy the files ``books`` reads into ``package/bookings``; what ``declared`` needs to
    read them back (kept in settings.json)."""
    folder = package / FOLDER
    folder.mkdir()
    # The sources file as it was, feed URLs redacted (their tokens are not evidence).
    sources = books.sources.read_text(encoding="utf-8")
    for entry in books.entries:
        if entry.url:
            sources = sources.replace(entry.url, shown_url(entry.url))
    (folder / _safe(books.sources.name)).write_text(sources, encoding="utf-8")
    feeds = {state.url: state for state in books.feed_states()}
    calendars = []
    for n, entry in enumerate(books.entries):
        state = feeds.get(entry.url) if entry.url else None
        original = entry.file if entry.file is not None else (state.copy if state else None)
        held = entry.file is not None or (state is not None and state.fetched_ms is not None)
        copy = f"{FOLDER}/{n:02d}-{_safe(original.name if original else entry.name)}"
        if held and original is not None:
            shutil.copyfile(original, package / copy)
        calendars.append(
            {
                "name": entry.name,
                "file": copy if held else None,  # a feed never fetched: nothing to copy
                "source": str(original) if entry.file is not None else shown_url(entry.url),
                # what its bookings and problems are named by (``Booking.source``)
                "path": str(entry.file) if entry.file is not None else entry.name,
                "url": shown_url(entry.url) if entry.url else "",
                "defaults": dataclasses.asdict(entry.defaults),
                "fetched_ms": state.fetched_ms if state else None,
                "attempted_ms": state.attempted_ms if state else None,
                "error": state.error if state else "",
            }
        )
    return {
        "sources": f"{FOLDER}/{_safe(books.sources.name)}",
        "source": str(books.sources),
        "calendars": calendars,
        "no_show_below": no_show_below,
    }


def declared(
    package: Path, meta: dict[str, Any], inventory: Inventory | None, start_ms: int, end_ms: int
) -> Declared:
    """The bookings of ``[start, end)`` read from the package's copies (never the live
    files); an ``EvidenceError`` names a copy that cannot be read or fails its checks."""
    from labmeter.api.report.build import Declared

    tz = inventory.tz if inventory is not None else ZoneInfo("Europe/Rome")
    bookings, feeds, problems = [], [], []
    for c in meta["calendars"]:
        text = None
        if c["file"] is not None:
            try:
                text = member(package, c["file"]).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise EvidenceError(
                    f"{c['file']}: cannot read the archived calendar: {exc}"
                ) from exc
        if c["url"]:
            copy = package / c["file"] if c["file"] else package / FOLDER / "missing"
            feeds.append(
                FeedState(c["name"], c["url"], copy, c["fetched_ms"], c["attempted_ms"], c["error"])
            )
        if text is None:
            continue
        calendar = read_calendar(text, c["path"], Defaults(**c["defaults"]), tz)
        found = calendar.check(inventory)
        problems += [f"{c['file']}: {p}" for p in found]
        bookings += calendar.between(start_ms, end_ms)
    if problems:
        raise EvidenceError("the archived bookings fail their checks: " + "; ".join(problems))
    bookings.sort(key=lambda b: (b.start_ms, b.site, b.lab, b.uid))
    return Declared(bookings, feeds, float(meta["no_show_below"]))
