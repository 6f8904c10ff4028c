"""Bookings from iCalendar (RFC 5545): files, and the copies of feeds.

Parsing is ``icalendar``'s and recurrence (RRULE, RDATE, EXDATE, moved occurrences, time
zones) is ``recurring-ical-events``': both maintained, and recurrence across a DST change is
where hand-written code goes wrong (a weekly 09:00 stays 09:00 local after the clocks move).
Neither says on which line a problem is, so a first pass over the text keeps the line of every
event and property, checks that each line is a content line and that BEGIN and END pair up:
the technician fixing the feed gets ``file:line: message``.

Fields (every one may also come from the calendar's defaults in the sources file):
lab ``X-LABMETER-LAB`` (``site/lab`` or ``lab``), devices ``X-LABMETER-DEVICES`` (comma list;
none: the whole lab), organisation ``X-LABMETER-ORGANISATION`` or the ORGANIZER's CN,
category ``X-LABMETER-CATEGORY`` or a stakeholder category among CATEGORIES, activity SUMMARY,
commercial ``X-LABMETER-COMMERCIAL`` (TRUE/FALSE), reference ``X-LABMETER-REFERENCE``.
Times without a zone (floating) are read in the inventory's zone; an all-day event (DTSTART
a DATE) books the lab's opening hours of its days.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from labmeter.bookings.model import Booking, Defaults, check_fields, flag
from labmeter.contract import CATEGORIES
from labmeter.inventory import Inventory

_PARAM = r';[A-Za-z0-9-]+=(?:"[^"]*"|[^";:,]*)(?:,(?:"[^"]*"|[^";:,]*))*'
_CONTENT = re.compile(rf"^([A-Za-z0-9-]+)(?:{_PARAM})*:")
# Where a problem with each field is shown: the first of its properties the event has.
FIELD_PROPS = {
    "lab": ("X-LABMETER-LAB",),
    "devices": ("X-LABMETER-DEVICES",),
    "organisation": ("X-LABMETER-ORGANISATION", "ORGANIZER"),
    "category": ("X-LABMETER-CATEGORY", "CATEGORIES"),
    "commercial": ("X-LABMETER-COMMERCIAL",),
    "reference": ("X-LABMETER-REFERENCE", "X-LABMETER-COMMERCIAL"),
    "start": ("DTSTART",),
    "end": ("DTEND", "DURATION"),
}


@dataclass
class _Block:
    """One VEVENT as written: the line of its BEGIN and of each property."""

    line: int
    props: dict[str, int] = field(default_factory=dict)


def _scan(text: str, path: str) -> tuple[list[_Block], list[str]]:
    """Events with their lines, and the problems of the text's structure."""
    problems: list[str] = []
    blocks: list[_Block] = []
    stack: list[tuple[str, int]] = []
    current: _Block | None = None
    logical: list[tuple[int, str]] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        if raw[:1] in (" ", "\t") and logical:
            logical[-1] = (logical[-1][0], logical[-1][1] + raw[1:])
        elif raw.strip():
            logical.append((n, raw))
    for n, content in logical:
        match = _CONTENT.match(content)
        if match is None:
            problems.append(f"{path}:{n}: not an iCalendar content line (NAME:value): {content!r}")
            continue
        name = match[1].upper()
        value = content[match.end() :].strip().upper()
        if name == "BEGIN":
            stack.append((value, n))
            if value == "VEVENT":
                current = _Block(n)
                blocks.append(current)
        elif name == "END":
            if not stack or stack[-1][0] != value:
                opened = f"{stack[-1][0]} opened at line {stack[-1][1]}" if stack else "nothing"
                problems.append(f"{path}:{n}: END:{value} does not close {opened}")
                continue
            stack.pop()
            if value == "VEVENT":
                current = None
        elif current is not None:
            current.props.setdefault(name, n)
    for name, n in stack:
        problems.append(f"{path}:{n}: BEGIN:{name} is never closed")
    if not any(v == "VCALENDAR" for v, _ in _begins(logical)):
        problems.append(f"{path}:1: not an iCalendar file (no BEGIN:VCALENDAR)")
    return blocks, problems


def _begins(logical: list[tuple[int, str]]) -> Iterator[tuple[str, int]]:
    for n, content in logical:
        if content.upper().startswith("BEGIN:"):
            yield content[6:].strip().upper(), n


def _text(component: Any, name: str) -> str:
    value = component.get(name)
    if value is None:
        return ""
    if isinstance(value, list):
        value = value[0]
    return str(value).strip()


def _category(event: Any, default: str) -> str:
    own = _text(event, "X-LABMETER-CATEGORY")
    if own:
        return own
    found = event.get("CATEGORIES")
    for entry in found if isinstance(found, list) else [found] if found is not None else []:
        for cat in getattr(entry, "cats", []):
            if str(cat).strip().lower() in CATEGORIES:
                return str(cat).strip().lower()
    return default


def _organisation(event: Any, default: str) -> str:
    own = _text(event, "X-LABMETER-ORGANISATION")
    if own:
        return own
    organizer = event.get("ORGANIZER")
    if organizer is not None and organizer.params.get("CN"):
        return str(organizer.params["CN"]).strip()
    return default


def _ms(value: date | datetime, tz: ZoneInfo) -> int:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(), tz)
    elif value.tzinfo is None:  # floating: the labs' own wall clock
        value = value.replace(tzinfo=tz)
    return int(value.timestamp() * 1000)


class IcsCalendar:
    """One iCalendar text, checked; ``between`` expands its occurrences."""

    def __init__(self, text: str, path: str, defaults: Defaults, tz: ZoneInfo) -> None:
        import icalendar

        self.path = path
        self.defaults = defaults
        self.tz = tz
        self.problems: list[str] = []
        self._blocks, self.problems = _scan(text, path)
        self._calendar: Any = None
        self._lines: dict[str, int] = {}
        if self.problems:
            return
        try:
            self._calendar = icalendar.Calendar.from_ical(text)
        except ValueError as exc:
            self.problems.append(f"{path}:0: {exc}")
            return
        events = list(self._calendar.walk("VEVENT"))
        if len(events) != len(self._blocks):  # not once _scan passed; but never zip them wrong
            self.problems.append(f"{path}:0: {len(events)} events read, {len(self._blocks)} seen")
            return
        for event, block in zip(events, self._blocks, strict=True):
            uid = _text(event, "UID")
            if not uid:
                self.problems.append(f"{path}:{block.line}: event without UID")
            elif "RECURRENCE-ID" not in event:
                self._lines.setdefault(uid, block.line)

    def check(self, inventory: Inventory | None) -> list[str]:
        """Every problem of the calendar's events (not of each occurrence: a recurring event
        is one line to fix)."""
        problems = list(self.problems)
        if self._calendar is None:
            return problems
        for event, block in zip(self._calendar.walk("VEVENT"), self._blocks, strict=True):
            fail: list[tuple[str, str]] = []
            broken = {name for name, _message in getattr(event, "errors", [])}
            for name, message in getattr(event, "errors", []):
                line = block.props.get(str(name).upper(), block.line)
                problems.append(f"{self.path}:{line}: {name}: {message}")
            if "DTSTART" in broken or "DTEND" in broken:
                continue
            fields = self._fields(event, fail, block)
            if fields is not None:
                check_fields(inventory, fields, fail)
            for key, message in fail:
                lines = [block.props[p] for p in FIELD_PROPS.get(key, ()) if p in block.props]
                line = lines[0] if lines else block.line
                problems.append(f"{self.path}:{line}: {message}")
        return problems

    def _fields(self, event: Any, fail: list[tuple[str, str]], block: _Block) -> Booking | None:
        start = event.get("DTSTART")
        if start is None:
            fail.append(("start", "event without DTSTART"))
            return None
        begin = start.dt
        end_prop, duration = event.get("DTEND"), event.get("DURATION")
        if end_prop is not None:
            end = end_prop.dt
        elif duration is not None:
            end = begin + duration.dt
        elif isinstance(begin, datetime):
            fail.append(("start", "event without DTEND or DURATION: how long is it booked?"))
            return None
        else:
            end = begin + timedelta(days=1)
        if isinstance(begin, datetime) != isinstance(end, datetime):
            fail.append(("end", "DTSTART and DTEND must both be dates or both be times"))
            return None
        return self._booking(event, _ms(begin, self.tz), _ms(end, self.tz), block.line)

    def _booking(self, event: Any, start_ms: int, end_ms: int, line: int) -> Booking:
        d = self.defaults
        site, lab = d.site, d.lab
        own = _text(event, "X-LABMETER-LAB")
        if own:
            site, _, lab = own.rpartition("/")
            site = site or d.site
        devices = tuple(
            sorted({x.strip() for x in _text(event, "X-LABMETER-DEVICES").split(",") if x.strip()})
        )
        commercial = flag(_text(event, "X-LABMETER-COMMERCIAL"))
        return Booking(
            uid=_text(event, "UID"),
            site=site,
            lab=lab,
            devices=devices,
            start_ms=start_ms,
            end_ms=end_ms,
            organisation=_organisation(event, d.organisation),
            category=_category(event, d.category),
            activity=_text(event, "SUMMARY"),
            commercial=bool(commercial),
            reference=_text(event, "X-LABMETER-REFERENCE"),
            source=f"{self.path}:{line}",
            all_day=not isinstance(event["DTSTART"].dt, datetime),
        )

    def between(self, start_ms: int, end_ms: int) -> list[Booking]:
        """The occurrences that overlap ``[start_ms, end_ms)``."""
        import recurring_ical_events

        if self._calendar is None:
            return []
        # A day's margin each side: floating times are read in the labs' zone below.
        a = datetime.fromtimestamp(start_ms / 1000, self.tz) - timedelta(days=1)
        b = datetime.fromtimestamp(end_ms / 1000, self.tz) + timedelta(days=1)
        out = []
        for event in recurring_ical_events.of(self._calendar).between(a, b):
            begin, finish = _ms(event["DTSTART"].dt, self.tz), _ms(event["DTEND"].dt, self.tz)
            if finish <= start_ms or begin >= end_ms:
                continue
            uid = _text(event, "UID")
            line = self._lines.get(uid, 0)
            booking = self._booking(event, begin, finish, line)
            out.append(replace(booking, uid=f"{uid}#{begin}"))
        return out
