"""The inventory: sites, labs with opening hours, equipment and software licences.

A YAML file that technicians edit and keep under version control. Every error names the file
and the line (from yaml's node marks), because the person fixing it has the file open, not a
stack trace. Available time, the denominator of utilisation, comes from the labs' opening hours
minus closures and Italian public holidays.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from labmeter.errors import LabmeterError

FUNDS = ("FESR", "FSE+", "FSE", "PNRR", "regione", "fondazione", "altro")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SEGMENT = re.compile(r"[a-z0-9_-]{1,64}")
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
# Fixed national holidays (month, day). 4 October (St Francis) is a national holiday again
# from 2026 (law 151/2025); the patron saint's day is per site.
_FIXED_HOLIDAYS = ((1, 1), (1, 6), (4, 25), (5, 1), (6, 2), (8, 15), (11, 1), (12, 8), (12, 25))
_FIXED_HOLIDAYS_LATE = ((12, 26),)


class InventoryError(LabmeterError):
    """One or more problems, each as ``file:line: message``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def easter(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous algorithm, a.k.a. Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    day = (h + ell - 7 * m + 114) % 31 + 1
    return date(year, month, day)


def italian_holidays(year: int, patron: tuple[int, int] | None = None) -> set[date]:
    """National public holidays of ``year``, Easter Monday, and the site's patron saint."""
    days = {date(year, m, d) for m, d in _FIXED_HOLIDAYS + _FIXED_HOLIDAYS_LATE}
    if year >= 2026:
        days.add(date(year, 10, 4))
    sunday = easter(year)
    days |= {sunday, sunday + timedelta(days=1)}
    if patron is not None:
        days.add(date(year, *patron))
    return days


@dataclass(frozen=True)
class Closure:
    start: date
    end: date  # inclusive
    reason: str = ""


@dataclass(frozen=True)
class Site:
    id: str
    name: str
    patron_day: tuple[int, int] | None = None


@dataclass(frozen=True)
class Lab:
    id: str
    site: str
    name: str
    # weekday (0 = Monday) -> opening spans in minutes from midnight, [start, end)
    hours: dict[int, tuple[tuple[int, int], ...]]
    closures: tuple[Closure, ...] = ()
    public_holidays: bool = True


@dataclass(frozen=True)
class Equipment:
    id: str  # the device's topic segment
    site: str
    lab: str
    kind: str
    description: str = ""
    fund: str = ""
    call: str = ""
    cup: str = ""
    cost: float | None = None
    purchased: date | None = None
    collaudo: date | None = None  # acceptance test
    final_payment: date | None = None  # starts the 5-year durability period
    pnrr: bool = False  # PNRR-funded: non-commercial use only
    line: int = 0


@dataclass(frozen=True)
class Software:
    id: str  # the ``app`` tag the agents report
    site: str
    seats: int
    description: str = ""
    fund: str = ""
    call: str = ""
    cup: str = ""
    cost: float | None = None
    purchased: date | None = None
    pnrr: bool = False


@dataclass
class Inventory:
    path: str
    version: int
    timezone: str
    sites: dict[str, Site] = field(default_factory=dict)
    labs: dict[tuple[str, str], Lab] = field(default_factory=dict)
    equipment: dict[tuple[str, str, str], Equipment] = field(default_factory=dict)
    software: dict[tuple[str, str], Software] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def device(self, site: str, lab: str, device: str) -> Equipment | None:
        return self.equipment.get((site, lab, device))

    def closed_days(self, lab: Lab, year: int) -> set[date]:
        site = self.sites.get(lab.site)
        out = italian_holidays(year, site.patron_day if site else None)
        return out if lab.public_holidays else set()

    def opening_spans(self, lab: Lab, start_ms: int, end_ms: int) -> Iterator[tuple[int, int]]:
        """The lab's open spans in epoch ms, clipped to ``[start_ms, end_ms)``."""
        tz = self.tz
        day = datetime.fromtimestamp(start_ms / 1000, tz).date()
        last = datetime.fromtimestamp(end_ms / 1000, tz).date()
        holidays: dict[int, set[date]] = {}
        while day <= last:
            if day.year not in holidays:
                holidays[day.year] = self.closed_days(lab, day.year)
            closed = day in holidays[day.year] or any(c.start <= day <= c.end for c in lab.closures)
            if not closed:
                for begin, finish in lab.hours.get(day.weekday(), ()):
                    # Wall-clock times, so a DST day keeps its declared hours.
                    a, b = _local_ms(day, begin, tz), _local_ms(day, finish, tz)
                    a, b = max(a, start_ms), min(b, end_ms)
                    if b > a:
                        yield a, b
            day += timedelta(days=1)

    def available_ms(self, site: str, lab: str, start_ms: int, end_ms: int) -> int:
        found = self.labs.get((site, lab))
        if found is None:
            return 0
        return sum(b - a for a, b in self.opening_spans(found, start_ms, end_ms))


def _half_hour_offsets(tz: ZoneInfo) -> bool:
    """Whether the zone's offsets from UTC (winter and summer) are multiples of 30 minutes."""
    year = date.today().year
    for month in (1, 7):
        offset = datetime(year, month, 1, tzinfo=tz).utcoffset()
        if offset is not None and offset.total_seconds() % 1800:
            return False
    return True


def _local_ms(day: date, minutes: int, tz: ZoneInfo) -> int:
    if minutes >= 24 * 60:
        moment = datetime.combine(day + timedelta(days=1), time(), tz)
    else:
        moment = datetime.combine(day, time(minutes // 60, minutes % 60), tz)
    return int(moment.timestamp() * 1000)


class _Located(dict[Any, Any]):
    """A mapping that remembers the line of itself and of each key (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = _Located(super().construct_mapping(node, deep=True))
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {
            self.construct_object(k, deep=True): k.start_mark.line + 1 for k, _ in node.value
        }
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.MarkedYAMLError(
                    "in a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_mapping)


class _Checker:
    """Collects every problem instead of stopping at the first: one edit-check round."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[str] = []

    def fail(self, line: int, message: str) -> None:
        self.problems.append(f"{self.path}:{line}: {message}")

    def line_of(self, item: Any, key: str | None = None) -> int:
        if isinstance(item, _Located):
            return item.key_lines.get(key, item.line) if key else item.line
        return 0

    def mapping(self, item: Any, where: str, line: int) -> _Located | None:
        if not isinstance(item, _Located):
            self.fail(line, f"{where} must be a mapping")
            return None
        return item

    def keys(self, item: _Located, allowed: set[str], required: set[str], where: str) -> None:
        for key in item:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                self.fail(self.line_of(item, key), f"{where}: unknown key {key!r} (known: {known})")
        for key in sorted(required - item.keys()):
            self.fail(item.line, f"{where}: missing {key!r}")

    def segment(self, item: _Located, key: str, where: str) -> str:
        value = item.get(key)
        if value is None:
            return ""
        if not isinstance(value, str) or not _SEGMENT.fullmatch(value):
            self.fail(
                self.line_of(item, key), f"{where}.{key}: {value!r} is not [a-z0-9_-]{{1,64}}"
            )
            return ""
        return value

    def text(self, item: _Located, key: str, where: str) -> str:
        value = item.get(key, "")
        if value is None:
            return ""
        if not isinstance(value, str | int | float):
            self.fail(self.line_of(item, key), f"{where}.{key}: must be text")
            return ""
        return str(value)

    def day(self, item: _Located, key: str, where: str) -> date | None:
        value = item.get(key)
        if value is None or isinstance(value, date):
            return value
        self.fail(self.line_of(item, key), f"{where}.{key}: {value!r} is not a date (YYYY-MM-DD)")
        return None

    def number(self, item: _Located, key: str, where: str) -> float | None:
        value = item.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            self.fail(self.line_of(item, key), f"{where}.{key}: must be a number >= 0")
            return None
        return float(value)

    def flag(self, item: _Located, key: str, where: str, default: bool) -> bool:
        value = item.get(key, default)
        if not isinstance(value, bool):
            self.fail(self.line_of(item, key), f"{where}.{key}: must be true or false")
            return default
        return value

    def items(self, doc: _Located, key: str) -> list[tuple[str, _Located]]:
        value = doc.get(key, [])
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(self.line_of(doc, key), f"{key} must be a list")
            return []
        out = []
        for n, item in enumerate(value):
            where = f"{key}[{n}]"
            found = self.mapping(item, where, self.line_of(doc, key))
            if found is not None:
                out.append((where, found))
        return out


Hours = dict[int, tuple[tuple[int, int], ...]]


def _parse_hours(chk: _Checker, lab: _Located, where: str) -> Hours:
    raw = lab.get("hours")
    line = chk.line_of(lab, "hours")
    if not isinstance(raw, _Located):
        chk.fail(
            line, f"{where}.hours must map weekdays (mon..sun, or ranges like mon-fri) to hours"
        )
        return {}
    out: Hours = {}
    for key, value in raw.items():
        kline = chk.line_of(raw, key)
        days = _weekdays(str(key))
        if days is None:
            chk.fail(kline, f"{where}.hours: {key!r} is not a weekday or range (mon..sun, mon-fri)")
            continue
        texts = value if isinstance(value, list) else str(value or "").split(",")
        spans: list[tuple[int, int]] = []
        for text in texts:
            if not str(text).strip() or str(text).strip() == "closed":
                continue
            match = _SPAN.match(str(text))
            if not match:
                chk.fail(kline, f"{where}.hours.{key}: {text!r} is not HH:MM-HH:MM")
                continue
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            begin, end = h1 * 60 + m1, h2 * 60 + m2
            if m1 > 59 or m2 > 59 or not 0 <= begin < end <= 24 * 60:
                chk.fail(kline, f"{where}.hours.{key}: {text!r} is not a span within one day")
                continue
            if begin % 30 or end % 30:
                chk.fail(
                    kline,
                    f"{where}.hours.{key}: {text!r} must start and end on the hour or half hour "
                    "(in-use time is split at opening hours per half hour)",
                )
                continue
            spans.append((begin, end))
        spans.sort()
        if any(a[1] > b[0] for a, b in itertools.pairwise(spans)):
            chk.fail(kline, f"{where}.hours.{key}: spans overlap")
            continue
        for d in days:
            if d in out:
                chk.fail(kline, f"{where}.hours: {DAYS[d]} is given twice")
            out[d] = tuple(spans)
    return out


def _weekdays(key: str) -> list[int] | None:
    if key in DAYS:
        return [DAYS.index(key)]
    first, _, last = key.partition("-")
    if first in DAYS and last in DAYS and DAYS.index(first) <= DAYS.index(last):
        return list(range(DAYS.index(first), DAYS.index(last) + 1))
    return None


_SITE_KEYS = {"id", "name", "patron_day"}
_LAB_KEYS = {"id", "site", "name", "hours", "closures", "public_holidays"}
_ASSET_KEYS = {"description", "fund", "call", "cup", "cost", "purchased", "pnrr"}
_EQUIPMENT_KEYS = {"id", "site", "lab", "kind", "collaudo", "final_payment"} | _ASSET_KEYS
_SOFTWARE_KEYS = {"id", "site", "seats"} | _ASSET_KEYS


def _site(chk: _Checker, where: str, item: _Located) -> Site | None:
    chk.keys(item, _SITE_KEYS, {"id"}, where)
    sid = chk.segment(item, "id", where)
    patron = None
    if item.get("patron_day") is not None:
        text = str(item["patron_day"])
        match = re.fullmatch(r"(\d{2})-(\d{2})", text)
        try:
            patron = (int(match[1]), int(match[2])) if match else None
            if patron:
                date(2000, *patron)
        except ValueError:
            patron = None
        if patron is None:
            chk.fail(chk.line_of(item, "patron_day"), f"{where}.patron_day: {text!r} is not MM-DD")
    return Site(sid, chk.text(item, "name", where) or sid, patron) if sid else None


def _lab(chk: _Checker, where: str, item: _Located, sites: dict[str, Site]) -> Lab | None:
    chk.keys(item, _LAB_KEYS, {"id", "site", "hours"}, where)
    lid, site = chk.segment(item, "id", where), chk.segment(item, "site", where)
    if site and site not in sites:
        chk.fail(chk.line_of(item, "site"), f"{where}.site: {site!r} is not among sites")
    hours = _parse_hours(chk, item, where) if "hours" in item else {}
    closures = []
    raw = item.get("closures") or []
    if not isinstance(raw, list):
        chk.fail(chk.line_of(item, "closures"), f"{where}.closures must be a list")
        raw = []
    for n, c in enumerate(raw):
        cwhere = f"{where}.closures[{n}]"
        found = chk.mapping(c, cwhere, chk.line_of(item, "closures"))
        if found is None:
            continue
        chk.keys(found, {"from", "to", "reason"}, {"from"}, cwhere)
        begin = chk.day(found, "from", cwhere)
        end = chk.day(found, "to", cwhere) or begin
        if begin and end:
            if end < begin:
                chk.fail(found.line, f"{cwhere}: 'to' is before 'from'")
            closures.append(Closure(begin, end, chk.text(found, "reason", cwhere)))
    public = chk.flag(item, "public_holidays", where, True)
    if not (lid and site):
        return None
    return Lab(lid, site, chk.text(item, "name", where) or lid, hours, tuple(closures), public)


def _asset(chk: _Checker, where: str, item: _Located) -> dict[str, Any]:
    fund = chk.text(item, "fund", where)
    if fund and fund not in FUNDS:
        chk.fail(chk.line_of(item, "fund"), f"{where}.fund: {fund!r} is not one of {FUNDS}")
    pnrr = chk.flag(item, "pnrr", where, fund == "PNRR")
    return {
        "description": chk.text(item, "description", where),
        "fund": fund,
        "call": chk.text(item, "call", where),
        "cup": chk.text(item, "cup", where),
        "cost": chk.number(item, "cost", where),
        "purchased": chk.day(item, "purchased", where),
        "pnrr": pnrr,
    }


def parse(text: str, path: str = "<inventory>") -> Inventory:
    """Parse and validate; raise ``InventoryError`` with every problem found."""
    chk = _Checker(path)
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise InventoryError([f"{path}:{line}: {exc.problem or exc}"]) from exc
    except yaml.YAMLError as exc:
        raise InventoryError([f"{path}:0: {exc}"]) from exc
    if not isinstance(doc, _Located):
        raise InventoryError([f"{path}:1: the inventory must be a mapping"])
    chk.keys(
        doc, {"version", "timezone", "sites", "labs", "equipment", "software"}, {"version"}, "top"
    )
    version = doc.get("version")
    if version != 1:
        chk.fail(chk.line_of(doc, "version"), f"version: {version!r} is not supported (1)")
    tz = str(doc.get("timezone", "Europe/Rome"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        chk.fail(chk.line_of(doc, "timezone"), f"timezone: {tz!r} is not an IANA time zone")
        tz = "Europe/Rome"
    if not _half_hour_offsets(ZoneInfo(tz)):
        chk.fail(
            chk.line_of(doc, "timezone"),
            f"timezone: {tz!r} is not a whole or half hour from UTC (opening hours are kept "
            "per half hour of UTC)",
        )
    inv = Inventory(path, 1, tz)
    for where, item in chk.items(doc, "sites"):
        new_site = _site(chk, where, item)
        if new_site is not None:
            if new_site.id in inv.sites:
                chk.fail(item.line, f"{where}: site {new_site.id!r} is defined twice")
            inv.sites[new_site.id] = new_site
    for where, item in chk.items(doc, "labs"):
        new_lab = _lab(chk, where, item, inv.sites)
        if new_lab is not None:
            key = (new_lab.site, new_lab.id)
            if key in inv.labs:
                chk.fail(item.line, f"{where}: lab {key[0]}/{key[1]} is defined twice")
            inv.labs[key] = new_lab
    for where, item in chk.items(doc, "equipment"):
        chk.keys(item, _EQUIPMENT_KEYS, {"id", "site", "lab", "kind"}, where)
        eid, site, lab = (chk.segment(item, k, where) for k in ("id", "site", "lab"))
        kind = chk.segment(item, "kind", where)
        if site and lab and (site, lab) not in inv.labs:
            chk.fail(chk.line_of(item, "lab"), f"{where}.lab: {site}/{lab} is not among labs")
        asset = _asset(chk, where, item)
        collaudo = chk.day(item, "collaudo", where)
        final = chk.day(item, "final_payment", where)
        if asset["purchased"] and collaudo and collaudo < asset["purchased"]:
            chk.fail(chk.line_of(item, "collaudo"), f"{where}.collaudo: before the purchase")
        if asset["pnrr"] and asset["fund"] and asset["fund"] != "PNRR":
            chk.fail(chk.line_of(item, "pnrr"), f"{where}.pnrr: true but fund is {asset['fund']}")
        if eid and site and lab and kind:
            if (site, lab, eid) in inv.equipment:
                chk.fail(item.line, f"{where}: equipment {site}/{lab}/{eid} is defined twice")
            inv.equipment[(site, lab, eid)] = Equipment(
                eid,
                site,
                lab,
                kind,
                collaudo=collaudo,
                final_payment=final,
                line=item.line,
                **asset,
            )
    for where, item in chk.items(doc, "software"):
        chk.keys(item, _SOFTWARE_KEYS, {"id", "site", "seats"}, where)
        sid, site = chk.segment(item, "id", where), chk.segment(item, "site", where)
        seats = item.get("seats")
        if isinstance(seats, bool) or not isinstance(seats, int) or seats < 1:
            chk.fail(chk.line_of(item, "seats"), f"{where}.seats: must be an integer >= 1")
            seats = 0
        if site and site not in inv.sites:
            chk.fail(chk.line_of(item, "site"), f"{where}.site: {site!r} is not among sites")
        asset = _asset(chk, where, item)
        if sid and site and seats:
            inv.software[(site, sid)] = Software(sid, site, seats, **asset)
    if chk.problems:
        raise InventoryError(chk.problems)
    return inv


def load(path: Path | str) -> Inventory:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InventoryError([f"{path}:0: cannot read: {exc.strerror}"]) from exc
    return parse(text, str(path))


# --- CSV import: technicians keep spreadsheets --------------------------------------------

CSV_COLUMNS = (
    "id", "site", "lab", "kind", "description", "fund", "call", "cup", "cost", "purchased",
    "collaudo", "final_payment", "pnrr",
)  # fmt: skip


def _csv_date(text: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            pass
    raise ValueError(f"{text!r} is not a date (YYYY-MM-DD or DD/MM/YYYY)")


def _csv_cost(text: str) -> float | None:
    text = text.strip().replace("€", "").replace(" ", "")
    if not text:
        return None
    if "," in text:  # Italian spreadsheet: 1.234,50
        text = text.replace(".", "").replace(",", ".")
    return float(text)


def equipment_from_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a spreadsheet export (``,`` or ``;``) as inventory entries; errors name the row."""
    text = path.read_text(encoding="utf-8-sig")
    dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else ",", delimiters=",;")
    reader = csv.DictReader(text.splitlines(), dialect=dialect)
    unknown = set(reader.fieldnames or ()) - set(CSV_COLUMNS)
    problems = []
    if unknown:
        problems.append(f"{path}:1: unknown columns {sorted(unknown)} (known: {CSV_COLUMNS})")
    out: list[dict[str, Any]] = []
    for row in reader:
        line = reader.line_num
        entry: dict[str, Any] = {}
        try:
            for key in CSV_COLUMNS:
                value = (row.get(key) or "").strip()
                if not value:
                    continue
                if key in ("purchased", "collaudo", "final_payment"):
                    entry[key] = _csv_date(value)
                elif key == "cost":
                    entry[key] = _csv_cost(value)
                elif key == "pnrr":
                    entry[key] = value.lower() in ("1", "true", "yes", "si", "sì", "x")
                else:
                    entry[key] = value
        except ValueError as exc:
            problems.append(f"{path}:{line}: {exc}")
            continue
        out.append(entry)
    if problems:
        raise InventoryError(problems)
    return out


def merge_equipment(doc_text: str, entries: list[dict[str, Any]]) -> str:
    """The inventory text with ``entries`` added or replacing those with the same site/lab/id."""
    doc: dict[str, Any] = yaml.safe_load(doc_text) if doc_text.strip() else {"version": 1}
    equipment: list[dict[str, Any]] = list(doc.get("equipment") or [])
    index = {(e.get("site"), e.get("lab"), e.get("id")): n for n, e in enumerate(equipment)}
    for entry in entries:
        key = (entry.get("site"), entry.get("lab"), entry.get("id"))
        if key in index:
            equipment[index[key]] = entry
        else:
            index[key] = len(equipment)
            equipment.append(entry)
    doc["equipment"] = equipment
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
