"""Loading and checking the inventory file: every problem with its file and line.

Technicians edit the YAML and keep it under version control; the person fixing a problem has
the file open, not a stack trace, so every error names the file and the line (from yaml's
node marks), and every problem is reported in one pass instead of stopping at the first.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from labmeter.contract import SEGMENT, SEGMENT_PATTERN
from labmeter.inventory.calendar import provinces
from labmeter.inventory.model import (
    DAYS,
    FUNDS,
    Closure,
    Equipment,
    Funding,
    Hours,
    Identity,
    Inventory,
    InventoryError,
    Lab,
    Site,
    Software,
)
from labmeter.inventory.money import parse_cost

_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
# CUP (codice unico di progetto, CIPE): 15 characters, a letter, two digits, a letter, the two
# digits of the year of the decision, then nine digits, e.g. J19J21000120007.
_CUP = re.compile(r"[A-Z][0-9]{2}[A-Z][0-9]{2}[0-9]{9}")


def _whole_hour_offsets(tz: ZoneInfo) -> bool:
    """Whether the zone's offsets from UTC (winter and summer) are whole hours."""
    for month in (1, 7):
        offset = datetime(2026, month, 1, tzinfo=tz).utcoffset()
        if offset is not None and offset.total_seconds() % 3600:
            return False
    return True


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


class _Float(float):
    """A YAML float that remembers how it was written: ``24.500`` is 24.5 to YAML, but as a
    cost it was most likely typed as twenty-four thousand five hundred euro."""

    text: str = ""


def _construct_float(loader: _Loader, node: yaml.ScalarNode) -> float:
    number = _Float(loader.construct_yaml_float(node))
    number.text = str(node.value)
    return number


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


class _Checker:
    """Collects every problem instead of stopping at the first: one edit-check round."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def fail(self, line: int, message: str) -> None:
        self.problems.append(f"{self.path}:{line}: {message}")

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(f"{self.path}:{line}: warning: {message}")

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
        if not isinstance(value, str) or not SEGMENT.fullmatch(value):
            self.fail(self.line_of(item, key), f"{where}.{key}: {value!r} is not {SEGMENT_PATTERN}")
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

    def cost(self, item: _Located, key: str, where: str) -> float | None:
        """A number, or text in Italian or English notation (``money.py``); never guessed."""
        value = item.get(key)
        if value is None:
            return None
        if isinstance(value, str | _Float):
            try:
                return parse_cost(value.text if isinstance(value, _Float) else value)
            except ValueError as exc:
                self.fail(self.line_of(item, key), f"{where}.{key}: {exc}")
                return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            self.fail(self.line_of(item, key), f"{where}.{key}: must be an amount >= 0")
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


_SITE_KEYS = {"id", "name", "patron_day", "province"}
_LAB_KEYS = {"id", "site", "name", "hours", "closures", "public_holidays"}
_ASSET_KEYS = {"description", "fund", "call", "cup", "cost", "purchased", "pnrr", "running_cost"}
_EQUIPMENT_KEYS = {
    "id", "site", "lab", "kind", "collaudo", "final_payment", "history", "since",
    "durability_years",
} | _ASSET_KEYS  # fmt: skip
_HISTORY_KEYS = {"lab", "device", "since", "until"}
_SOFTWARE_KEYS = {"id", "site", "seats", "licence_cost", "collaudo"} | _ASSET_KEYS


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
    province = chk.text(item, "province", where).upper()
    if province and province not in provinces():
        chk.fail(
            chk.line_of(item, "province"),
            f"{where}.province: {province!r} is not an Italian province code (FI, PI, LU, ...)",
        )
        province = ""
    return Site(sid, chk.text(item, "name", where) or sid, patron, province) if sid else None


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
    cup = chk.text(item, "cup", where).replace(" ", "").upper()
    if cup and not _CUP.fullmatch(cup):
        chk.fail(
            chk.line_of(item, "cup"),
            f"{where}.cup: {item.get('cup')!r} is not a CUP (15 characters: a letter, two "
            "digits, a letter, two digits of the year, nine digits; e.g. J19J21000120007)",
        )
    return {
        "description": chk.text(item, "description", where),
        "funding": Funding(fund, chk.text(item, "call", where), cup, pnrr),
        "cost": chk.cost(item, "cost", where),
        "purchased": chk.day(item, "purchased", where),
        "running_cost": chk.cost(item, "running_cost", where),
    }


def _history(
    chk: _Checker, item: _Located, where: str, site: str, labs: dict[tuple[str, str], Lab]
) -> tuple[tuple[Identity, ...], date | None]:
    """An asset's former identities, oldest first, and when its current one began.

    Each former identity lasts until local midnight of its ``until`` (exclusive) and, unless
    it says ``since``, began where the one before it ended. Overlaps and dates out of order
    are errors; a gap (the asset had no identity: stored, under repair) is a warning.
    """
    raw = item.get("history")
    current_since = chk.day(item, "since", where)
    if raw is None:
        return (), current_since
    if not isinstance(raw, list) or not raw:
        chk.fail(chk.line_of(item, "history"), f"{where}.history must be a list of identities")
        return (), current_since
    out: list[Identity] = []
    for n, entry in enumerate(raw):
        hwhere = f"{where}.history[{n}]"
        found = chk.mapping(entry, hwhere, chk.line_of(item, "history"))
        if found is None:
            continue
        chk.keys(found, _HISTORY_KEYS, {"until"}, hwhere)
        lab = chk.segment(found, "lab", hwhere) or str(item.get("lab") or "")
        device = chk.segment(found, "device", hwhere) or str(item.get("id") or "")
        if "lab" in found and lab and site and (site, lab) not in labs:
            chk.fail(chk.line_of(found, "lab"), f"{hwhere}.lab: {site}/{lab} is not among labs")
        since, until = chk.day(found, "since", hwhere), chk.day(found, "until", hwhere)
        if until is None:
            continue
        out.append(Identity(site, lab, device, since, until, found.line))
    resolved: list[Identity] = []
    for ident in out:
        previous = resolved[-1] if resolved else None
        since = ident.since
        if since is None and previous is not None:
            since = previous.until
        resolved.append(dataclasses.replace(ident, since=since))
    current = Identity(
        site, str(item.get("lab") or ""), str(item.get("id") or ""),
        current_since or (resolved[-1].until if resolved else None), None,
        chk.line_of(item, "since") if current_since else item.line,
    )  # fmt: skip
    for ident in (*resolved, current):
        if ident.since and ident.until and ident.until <= ident.since:
            chk.fail(
                ident.line,
                f"{where}: {ident.lab}/{ident.device} ends ({ident.until}) on or before it "
                f"begins ({ident.since})",
            )
    for a, b in itertools.pairwise((*resolved, current)):
        if a.until is None or b.since is None:
            continue
        if b.since < a.until:
            chk.fail(
                b.line,
                f"{where}: {b.lab}/{b.device} from {b.since} overlaps {a.lab}/{a.device} "
                f"until {a.until} (line {a.line}): history is oldest first, one identity at a time",
            )
        elif b.since > a.until:
            chk.warn(
                b.line,
                f"{where}: no identity from {a.until} to {b.since} (between {a.lab}/{a.device} "
                f"and {b.lab}/{b.device}): the asset counts as not in any lab then",
            )
    return tuple(resolved), current_since


def _claims(chk: _Checker, inv: Inventory) -> None:
    """Two assets may not claim the same topic identity over overlapping periods."""
    for key, tenures in inv.tenures.items():
        for a, b in itertools.combinations(tenures, 2):
            if a.asset == b.asset:
                continue  # one asset's own overlaps are reported with its history
            start = max(_ms_or(a.start_ms, -1), _ms_or(b.start_ms, -1))
            end = min(_ms_or(a.end_ms, 2**62), _ms_or(b.end_ms, 2**62))
            if start < end:
                first, second = inv.equipment[a.asset], inv.equipment[b.asset]
                chk.fail(
                    _line_of_identity(second, key),
                    f"{'/'.join(key)} is claimed by asset {second.id!r} and by asset "
                    f"{first.id!r} (line {_line_of_identity(first, key)}) over the same period: "
                    "give each a 'since' or 'until' that tells them apart",
                )


def _ms_or(value: int | None, default: int) -> int:
    return default if value is None else value


def _line_of_identity(eq: Equipment, key: tuple[str, str, str]) -> int:
    return next((i.line for i in eq.identities if i.key == key), eq.line)


def _dates_in_order(
    chk: _Checker,
    item: _Located,
    where: str,
    purchased: date | None,
    collaudo: date | None,
    final: date | None,
) -> None:
    """purchase <= acceptance test (collaudo) <= final payment, where given."""
    named = [("purchased", purchased), ("collaudo", collaudo), ("final_payment", final)]
    given = [(k, d) for k, d in named if d is not None]
    for (k1, d1), (k2, d2) in itertools.pairwise(given):
        if d2 < d1:
            chk.fail(chk.line_of(item, k2), f"{where}.{k2}: {d2} is before {k1} ({d1})")


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
        doc,
        {"version", "timezone", "sites", "labs", "equipment", "software", "useful_life"},
        {"version"},
        "top",
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
    if not _whole_hour_offsets(ZoneInfo(tz)):
        chk.fail(
            chk.line_of(doc, "timezone"),
            f"timezone: {tz!r} is not a whole number of hours from UTC (daily rollups are "
            "made of whole UTC hours)",
        )
    inv = Inventory(path, 1, tz)
    life = doc.get("useful_life")
    if life is None:
        life = {}
    elif not isinstance(life, _Located):
        chk.fail(chk.line_of(doc, "useful_life"), "useful_life must map kinds to years")
        life = {}
    for kind, years in life.items():
        if isinstance(years, bool) or not isinstance(years, int | float) or not 0 < years <= 50:
            chk.fail(
                chk.line_of(life, kind),
                f"useful_life.{kind}: {years!r} is not a number of years (0 < years <= 50)",
            )
            continue
        inv.useful_life[str(kind)] = float(years)
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
    seen_ids: dict[tuple[str, str], tuple[str, int]] = {}
    for where, item in chk.items(doc, "equipment"):
        chk.keys(item, _EQUIPMENT_KEYS, {"id", "site", "lab", "kind"}, where)
        eid, site, lab = (chk.segment(item, k, where) for k in ("id", "site", "lab"))
        kind = chk.segment(item, "kind", where)
        if site and lab and (site, lab) not in inv.labs:
            chk.fail(chk.line_of(item, "lab"), f"{where}.lab: {site}/{lab} is not among labs")
        asset = _asset(chk, where, item)
        collaudo = chk.day(item, "collaudo", where)
        final = chk.day(item, "final_payment", where)
        _dates_in_order(chk, item, where, asset["purchased"], collaudo, final)
        history, since = _history(chk, item, where, site, inv.labs)
        durability = item.get("durability_years")
        if durability is not None and (
            isinstance(durability, bool)
            or not isinstance(durability, int)
            or not 0 < durability <= 30
        ):
            chk.fail(
                chk.line_of(item, "durability_years"),
                f"{where}.durability_years: {durability!r} is not a number of years (1 to 30)",
            )
            durability = None
        funding = asset["funding"]
        if funding.pnrr and funding.fund and funding.fund != "PNRR":
            chk.fail(chk.line_of(item, "pnrr"), f"{where}.pnrr: true but fund is {funding.fund}")
        if eid and site and lab and kind:
            if (site, lab, eid) in inv.equipment:
                chk.fail(item.line, f"{where}: equipment {site}/{lab}/{eid} is defined twice")
            elif (elsewhere := seen_ids.get((site, eid))) is not None:
                chk.fail(
                    item.line,
                    f"{where}: asset id {eid!r} is already used in {site}/{elsewhere[0]} "
                    f"(line {elsewhere[1]}): give each asset of a site its own id",
                )
            seen_ids.setdefault((site, eid), (lab, item.line))
            inv.equipment[(site, lab, eid)] = Equipment(
                eid,
                site,
                lab,
                kind,
                collaudo=collaudo,
                final_payment=final,
                line=item.line,
                history=history,
                since=since,
                durability_years=durability,
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
        collaudo = chk.day(item, "collaudo", where)
        _dates_in_order(chk, item, where, asset["purchased"], collaudo, None)
        licence = chk.cost(item, "licence_cost", where)
        if sid and site and seats:
            inv.software[(site, sid)] = Software(
                sid, site, seats, licence_cost=licence, collaudo=collaudo, **asset
            )
    inv.index()
    _claims(chk, inv)
    if chk.problems:
        raise InventoryError(chk.problems)
    inv.warnings = chk.warnings
    return inv


def load(path: Path | str) -> Inventory:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InventoryError([f"{path}:0: cannot read: {exc.strerror}"]) from exc
    return from_bytes(data, str(path))


def from_bytes(data: bytes, path: str) -> Inventory:
    """The inventory in ``data`` (read from ``path``), with the SHA-256 of those very bytes:
    what a closed period's package copies, hashes and reports from."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InventoryError([f"{path}:0: not UTF-8 ({exc.reason})"]) from exc
    inventory = parse(text.replace("\r\n", "\n"), path)
    inventory.sha256 = hashlib.sha256(data).hexdigest()
    return inventory
