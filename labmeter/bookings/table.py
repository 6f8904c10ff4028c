"""Bookings from a spreadsheet's CSV (``,`` or ``;``): one row per booking.

Columns: ``site``, ``lab``, ``devices`` (space- or comma-separated; empty: the whole lab),
``start``, ``end`` (``2025-10-20 09:00``, ``20/10/2025 09:00`` or RFC 3339 with an offset;
wall-clock times in the inventory's zone), ``organisation``, ``category``, ``activity``,
``commercial`` (sì/no, yes/no, true/false, 1/0), ``reference``, and an optional ``id``.
A row whose start and end are dates alone books the lab's opening hours of those days, the
end day included. Every problem names the row's line.
"""

from __future__ import annotations

import csv
import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from labmeter.bookings.model import Booking, Defaults, check_fields, flag
from labmeter.inventory import Inventory

COLUMNS = (
    "id", "site", "lab", "devices", "start", "end", "organisation", "category", "activity",
    "commercial", "reference",
)  # fmt: skip
REQUIRED = ("start", "end")
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y")
_TIME_FORMATS = ("%H:%M", "%H:%M:%S", "%H.%M")


def _when(text: str, tz: ZoneInfo) -> tuple[datetime, bool]:
    """A moment, and whether it was a date alone."""
    value = text.strip()
    if re.search(r"[+-]\d{2}:?\d{2}$|Z$", value) and "T" in value:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment, False
    day_text, _, clock = value.replace("T", " ").partition(" ")
    day: date | None = None
    for fmt in _DATE_FORMATS:
        try:
            day = datetime.strptime(day_text, fmt).date()
            break
        except ValueError:
            pass
    if day is None:
        raise ValueError(f"{text!r} is not a date and time (2025-10-20 09:00 or 20/10/2025 09:00)")
    if not clock.strip():
        return datetime.combine(day, time(), tz), True
    for fmt in _TIME_FORMATS:
        try:
            return datetime.combine(day, datetime.strptime(clock.strip(), fmt).time(), tz), False
        except ValueError:
            pass
    raise ValueError(f"{text!r}: {clock!r} is not a time of day (09:00)")


class CsvBookings:
    """One CSV text, checked; ``between`` gives its rows within a window."""

    def __init__(self, text: str, path: str, defaults: Defaults, tz: ZoneInfo) -> None:
        self.path = path
        self.problems: list[str] = []
        self.rows: list[tuple[Booking, list[tuple[str, str]]]] = []
        text = text.removeprefix("\ufeff")
        lines = text.splitlines()
        if not lines:
            self.problems.append(f"{path}:1: empty file (expected a header: {', '.join(COLUMNS)})")
            return
        # Only the delimiter is guessed, from the header: the rest is Excel's dialect, whose
        # "" inside a quoted cell is one quote (a sniffed header with no quotes says not).
        try:
            delimiter = csv.Sniffer().sniff(lines[0], delimiters=",;").delimiter
        except csv.Error:
            delimiter = ","
        reader = csv.DictReader(lines, dialect=csv.excel, delimiter=delimiter)
        header = [h.strip().lower() for h in reader.fieldnames or []]
        reader.fieldnames = header
        unknown = [h for h in header if h not in COLUMNS]
        if unknown:
            known = ", ".join(COLUMNS)
            self.problems.append(f"{path}:1: unknown columns {unknown} (known: {known})")
        for column in REQUIRED:
            if column not in header:
                self.problems.append(f"{path}:1: no column {column!r}")
        if self.problems:
            return
        d = defaults
        for row in reader:
            line = reader.line_num
            get = {k: (row.get(k) or "").strip() for k in COLUMNS}
            try:
                start, start_day = _when(get["start"], tz)
                end, end_day = _when(get["end"], tz)
            except ValueError as exc:
                self.problems.append(f"{path}:{line}: {exc}")
                continue
            if start_day != end_day:
                self.problems.append(
                    f"{path}:{line}: start and end must both be dates or both date and time"
                )
                continue
            if end_day:  # the end day is included
                end = datetime.combine(end.date() + timedelta(days=1), time(), tz)
            commercial = flag(get["commercial"])
            fail: list[tuple[str, str]] = []
            if commercial is None:
                fail.append(("commercial", f"commercial {get['commercial']!r} is not yes or no"))
            booking = Booking(
                uid=get["id"] or f"{path}:{line}",
                site=get["site"] or d.site,
                lab=get["lab"] or d.lab,
                devices=tuple(sorted(set(re.split(r"[\s,]+", get["devices"])) - {""})),
                start_ms=int(start.timestamp() * 1000),
                end_ms=int(end.timestamp() * 1000),
                organisation=get["organisation"] or d.organisation,
                category=get["category"] or d.category,
                activity=get["activity"],
                commercial=bool(commercial),
                reference=get["reference"],
                source=f"{path}:{line}",
                all_day=start_day,
            )
            self.rows.append((booking, fail))

    def check(self, inventory: Inventory | None) -> list[str]:
        problems = list(self.problems)
        for booking, fail in self.rows:
            found = list(fail)
            check_fields(inventory, booking, found)
            problems += [f"{booking.source}: {message}" for _field, message in found]
        return sorted(problems, key=lambda p: int(p.removeprefix(f"{self.path}:").split(":")[0]))

    def between(self, start_ms: int, end_ms: int) -> list[Booking]:
        return [b for b, _ in self.rows if b.start_ms < end_ms and b.end_ms > start_ms]
