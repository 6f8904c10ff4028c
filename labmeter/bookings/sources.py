"""The sources file: which calendars (files and feeds) a site books through, with the
defaults their events leave unsaid, e.g.::

    version: 1
    calendars:
      - {file: lab-cad.ics, site: its-prime, lab: lab-cad}
      - {url: "https://prenotazioni.example.org/lab-fab.ics", site: its-prime, lab: lab-fab}
      - {file: convenzioni.csv}
    allow_hosts: [prenotazioni.intranet]   # feeds on a private address: named one by one

Paths are relative to the sources file. ``Bookings`` is every calendar loaded and checked
against the inventory; feeds are read from their last good copy (``feeds.py``) and
``refresh`` fetches them again (``fetch.py``: redirects, addresses, size and time bounded).
A feed's URL is shown redacted (``shown_url``): its name, when none is given, is that.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import yaml

from labmeter.bookings.feeds import FeedCache, FeedState
from labmeter.bookings.fetch import FeedError, Policy, fetch, shown_url
from labmeter.bookings.ics import IcsCalendar
from labmeter.bookings.model import Booking, BookingError, Defaults
from labmeter.bookings.table import CsvBookings
from labmeter.config import BookingsConfig
from labmeter.inventory import Inventory
from labmeter.inventory.load import _Loader, _Located

_CALENDAR_KEYS = {"file", "url", "name", "site", "lab", "organisation", "category"}
_LINE = re.compile(r":(\d+): ")  # a problem's line number, "name:12: ..."


class Calendar(Protocol):
    def check(self, inventory: Inventory | None) -> list[str]: ...

    def between(self, start_ms: int, end_ms: int) -> list[Booking]: ...


def read_calendar(text: str, path: str, defaults: Defaults, tz: ZoneInfo) -> Calendar:
    """iCalendar or CSV, told apart by the name (``.csv``) or by the text itself."""
    if path.lower().endswith(".csv"):
        return CsvBookings(text, path, defaults, tz)
    if path.lower().endswith((".ics", ".ical", ".ifb")) or "BEGIN:VCALENDAR" in text[:2000]:
        return IcsCalendar(text, path, defaults, tz)
    return CsvBookings(text, path, defaults, tz)


@dataclass(frozen=True)
class Entry:
    """One calendar of the sources file."""

    name: str
    file: Path | None
    url: str
    defaults: Defaults
    line: int


@dataclass(frozen=True)
class Sources:
    """What a sources file says: its calendars, and the hosts feeds may reach at a loopback,
    link-local or private address."""

    entries: list[Entry]
    allow_hosts: frozenset[str] = field(default_factory=frozenset)


def load_sources(path: Path) -> Sources:
    """The calendars a sources file lists; ``BookingError`` with every problem."""
    where = str(path)
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except OSError as exc:
        raise BookingError([f"{where}:0: cannot read: {exc.strerror}"]) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise BookingError([f"{where}:{mark.line + 1 if mark else 0}: {exc.problem}"]) from exc
    problems: list[str] = []
    if not isinstance(doc, _Located) or doc.get("version") != 1:
        raise BookingError([f"{where}:1: a sources file is a mapping with version: 1"])
    entries: list[Entry] = []
    for key in doc:
        if key not in ("version", "calendars", "allow_hosts"):
            problems.append(f"{where}:{doc.key_lines.get(key, 1)}: unknown key {key!r}")
    allow = doc.get("allow_hosts") or []
    if not isinstance(allow, list) or not all(isinstance(h, str) and h for h in allow):
        problems.append(f"{where}:{doc.key_lines.get('allow_hosts', 1)}: allow_hosts: a list "
                        "of host names")  # fmt: skip
        allow = []
    raw = doc.get("calendars") or []
    if not isinstance(raw, list):
        raise BookingError([f"{where}:{doc.key_lines.get('calendars', 1)}: calendars: a list"])
    for n, item in enumerate(raw):
        line = item.line if isinstance(item, _Located) else doc.key_lines.get("calendars", 1)
        if not isinstance(item, _Located):
            problems.append(f"{where}:{line}: calendars[{n}] must be a mapping")
            continue
        for key in item:
            if key not in _CALENDAR_KEYS:
                known = ", ".join(sorted(_CALENDAR_KEYS))
                problems.append(f"{where}:{item.key_lines.get(key, line)}: unknown key {key!r} "
                                f"(known: {known})")  # fmt: skip
        file, url = item.get("file"), item.get("url")
        if bool(file) == bool(url):
            problems.append(f"{where}:{line}: calendars[{n}]: give either file or url")
            continue
        if url and not str(url).startswith(("http://", "https://")):
            problems.append(f"{where}:{item.key_lines['url']}: url must be http(s)://")
            continue
        defaults = Defaults(
            *(str(item.get(k) or "") for k in ("site", "lab", "organisation", "category"))
        )
        target = path.parent / str(file) if file else None
        name = str(item.get("name") or file or shown_url(str(url)))
        entries.append(Entry(name, target, str(url or ""), defaults, line))
    if problems:
        raise BookingError(problems)
    return Sources(entries, frozenset(h.strip().lower() for h in allow))


class Bookings:
    """Every calendar of a sources file, checked against the inventory.

    Files must pass every check, or loading fails with every problem (as the inventory
    does). Feeds are read from their last good copy; ``refresh`` fetches each again and keeps
    the new text only when it passes every check, so a feed that is down or broken never
    empties the bookings. The loaded state is replaced whole, so a reader never sees half a
    refresh.
    """

    def __init__(
        self,
        sources: Path,
        inventory: Inventory | None,
        cache_dir: Path | None = None,
        timeout_s: float = 20.0,
        clock: Callable[[], float] = time.time,
        max_bytes: int = 16 << 20,
    ) -> None:
        self.sources = sources
        self.inventory = inventory
        self.tz = inventory.tz if inventory is not None else ZoneInfo("Europe/Rome")
        self.cache = FeedCache(cache_dir or sources.parent / ".feeds")
        self.clock = clock
        listed = load_sources(sources)
        self.entries = listed.entries
        self.policy = Policy(timeout_s, max_bytes, listed.allow_hosts)
        self._lock = threading.Lock()
        problems: list[str] = []
        files: list[Calendar] = []
        for entry in self.entries:
            if entry.file is None:
                continue
            try:
                text = entry.file.read_text(encoding="utf-8")
            except OSError as exc:
                problems.append(f"{self.sources}:{entry.line}: cannot read {entry.file}: "
                                f"{exc.strerror}")  # fmt: skip
                continue
            calendar = read_calendar(text, str(entry.file), entry.defaults, self.tz)
            problems += calendar.check(inventory)
            files.append(calendar)
        if problems:
            raise BookingError(problems)
        self._files = files
        self._feeds: dict[str, tuple[FeedState, Calendar | None]] = {}
        for entry in self.feeds_listed():
            self._feeds[entry.url] = self._from_copy(entry)

    def feeds_listed(self) -> list[Entry]:
        return [e for e in self.entries if e.url]

    def _from_copy(self, entry: Entry) -> tuple[FeedState, Calendar | None]:
        state = self.cache.state(entry.name, entry.url)
        if state.fetched_ms is None:
            return state, None
        text = state.copy.read_text(encoding="utf-8")
        return state, read_calendar(text, entry.name, entry.defaults, self.tz)

    def refresh(self) -> list[FeedState]:
        """Fetch every feed once; keep each new text only if it passes every check."""
        for entry in self.feeds_listed():
            now_ms = int(self.clock() * 1000)
            try:
                text = fetch(entry.url, self.policy)
                calendar = read_calendar(text, entry.name, entry.defaults, self.tz)
                problems = calendar.check(self.inventory)
                if problems:
                    # Where, never what: the problems quote the reply, which is not ours to show.
                    lines = sorted({int(n) for p in problems for n in _LINE.findall(p)})
                    at = f" (lines {', '.join(map(str, lines[:10]))})" if lines else ""
                    raise FeedError(
                        f"the reply is not a calendar that passes its checks: {len(problems)} "
                        f"problem(s){at}; `labmeter bookings check` on a copy says which"
                    )
            except FeedError as exc:
                self.cache.failed(entry.url, str(exc), now_ms)
                found = self._from_copy(entry)
            else:
                self.cache.keep(entry.url, text, now_ms)
                found = (self.cache.state(entry.name, entry.url), calendar)
            with self._lock:
                self._feeds[entry.url] = found
        return self.feed_states()

    def feed_states(self) -> list[FeedState]:
        with self._lock:
            return [state for state, _ in self._feeds.values()]

    def between(self, start_ms: int, end_ms: int) -> list[Booking]:
        """Every booking that overlaps ``[start_ms, end_ms)``, in time order."""
        with self._lock:
            feeds = [c for _, c in self._feeds.values() if c is not None]
        out = [b for c in (*self._files, *feeds) for b in c.between(start_ms, end_ms)]
        return sorted(out, key=lambda b: (b.start_ms, b.site, b.lab, b.uid))

    def used_files(self) -> list[Path]:
        """The files the bookings were read from (feeds: their last good copies)."""
        out = [self.sources, *(e.file for e in self.entries if e.file is not None)]
        return out + [s.copy for s in self.feed_states() if s.fetched_ms is not None]


def check_file(
    path: Path, inventory: Inventory | None, defaults: Defaults | None = None
) -> tuple[list[str], int]:
    """Problems of one calendar (``.ics``, ``.csv``) or sources file (``.yaml``), and how many
    bookings it declares (events for iCalendar, rows for CSV; a sources file: 0)."""
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            Bookings(path, inventory)
        except BookingError as exc:
            return exc.problems, 0
        return [], 0
    tz = inventory.tz if inventory is not None else ZoneInfo("Europe/Rome")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{path}:0: cannot read: {exc}"], 0
    calendar = read_calendar(text, str(path), defaults or Defaults(), tz)
    count = len(calendar._blocks) if isinstance(calendar, IcsCalendar) else 0
    if isinstance(calendar, CsvBookings):
        count = len(calendar.rows)
    return calendar.check(inventory), count


def open_bookings(config: BookingsConfig, inventory: Inventory | None) -> Bookings:
    """The bookings a config's ``[bookings]`` names (its ``sources`` must be set)."""
    return Bookings(
        Path(config.sources),
        inventory,
        Path(config.cache_dir) if config.cache_dir else None,
        timeout_s=config.timeout_s,
        max_bytes=int(config.feed_max_mb * (1 << 20)),
    )
