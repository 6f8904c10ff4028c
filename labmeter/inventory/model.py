"""What the inventory describes: sites, labs with opening hours, equipment, software licences.

Available time, the denominator of utilisation, comes from the labs' opening hours minus
closures and public holidays (``calendar.py``); ``opening_spans`` walks them in wall-clock
local time, so a DST day keeps its declared hours.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from labmeter.errors import LabmeterError
from labmeter.inventory.calendar import public_holidays
from labmeter.schema import DeviceKey

FUNDS = ("FESR", "FSE+", "FSE", "PNRR", "regione", "fondazione", "altro")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# weekday (0 = Monday) -> opening spans in minutes from midnight, [start, end)
Hours = dict[int, tuple[tuple[int, int], ...]]


class InventoryError(LabmeterError):
    """One or more problems, each as ``file:line: message``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Closure:
    start: date
    end: date  # inclusive
    reason: str = ""


@dataclass(frozen=True)
class Site:
    id: str
    name: str
    patron_day: tuple[int, int] | None = None  # (month, day): closed like a public holiday
    province: str = ""  # Italian province code (FI, PI, ...): its local holidays


@dataclass(frozen=True)
class Lab:
    id: str
    site: str
    name: str
    hours: Hours
    closures: tuple[Closure, ...] = ()
    public_holidays: bool = True


@dataclass(frozen=True)
class Identity:
    """A topic identity an asset had or has, from local midnight of ``since`` (None: from
    the start) to local midnight of ``until``, exclusive (None: still)."""

    site: str
    lab: str
    device: str
    since: date | None = None
    until: date | None = None
    line: int = 0

    @property
    def key(self) -> DeviceKey:
        return (self.site, self.lab, self.device)


@dataclass(frozen=True)
class Tenure:
    """One identity's period as one asset's, in epoch ms (None: unbounded)."""

    asset: DeviceKey  # the asset's current identity: its key in ``Inventory.equipment``
    start_ms: int | None
    end_ms: int | None

    def clip(self, start_ms: int, end_ms: int) -> tuple[int, int]:
        """The part of ``[start_ms, end_ms)`` within the tenure (empty: a >= b)."""
        a = start_ms if self.start_ms is None else max(start_ms, self.start_ms)
        b = end_ms if self.end_ms is None else min(end_ms, self.end_ms)
        return a, b


@dataclass(frozen=True)
class Funding:
    """Where an asset's money came from: the fund, the call, the grant's CUP, and whether the
    national recovery plan paid (then non-commercial use only)."""

    fund: str = ""  # one of FUNDS, "" when not stated
    call: str = ""
    cup: str = ""
    pnrr: bool = False


@dataclass(frozen=True)
class Equipment:
    id: str  # the asset id: its current device topic segment
    site: str
    lab: str
    kind: str
    description: str = ""
    funding: Funding = Funding()
    cost: float | None = None
    purchased: date | None = None
    collaudo: date | None = None  # acceptance test
    final_payment: date | None = None  # starts the 5-year durability period
    line: int = 0
    running_cost: float | None = None  # euro a year (maintenance, consumables, energy)
    # Former topic identities, oldest first (a move or a rename); the current one (site, lab,
    # id) holds from ``since`` (default: the last former identity's ``until``).
    history: tuple[Identity, ...] = ()
    since: date | None = None
    durability_years: int | None = None  # the grant's own durability period (default: 5)

    @property
    def key(self) -> DeviceKey:
        return (self.site, self.lab, self.id)

    @property
    def former(self) -> list[str]:
        """Its former identities as rows show them, oldest first: ``lab/device until date``."""
        return [f"{i.lab}/{i.device} until {i.until}" for i in self.history]

    @property
    def identities(self) -> tuple[Identity, ...]:
        """Every identity the asset had, oldest first, the current one last."""
        since = self.since or (self.history[-1].until if self.history else None)
        return (*self.history, Identity(self.site, self.lab, self.id, since, None, self.line))


@dataclass(frozen=True)
class Software:
    id: str  # the ``app`` tag the agents report
    site: str
    seats: int
    description: str = ""
    funding: Funding = Funding()
    cost: float | None = None
    purchased: date | None = None
    running_cost: float | None = None  # euro a year
    licence_cost: float | None = None  # euro a year (a subscription or maintenance fee)
    collaudo: date | None = None  # put in service (default: purchased)


@dataclass
class Inventory:
    path: str
    version: int
    timezone: str
    sites: dict[str, Site] = field(default_factory=dict)
    labs: dict[tuple[str, str], Lab] = field(default_factory=dict)
    equipment: dict[DeviceKey, Equipment] = field(default_factory=dict)  # by current identity
    # Every identity any asset had or has -> its periods, by start: figures follow an asset
    # across moves and renames (``index`` fills it).
    tenures: dict[DeviceKey, tuple[Tenure, ...]] = field(default_factory=dict)
    software: dict[tuple[str, str], Software] = field(default_factory=dict)
    useful_life: dict[str, float] = field(default_factory=dict)  # years per kind ("software")
    sha256: str = ""  # of the file's bytes as loaded: reports state it (their fingerprint)
    warnings: list[str] = field(default_factory=list)  # ``file:line: warning: ...``
    _spans: dict[tuple[str, str, date], tuple[tuple[int, int], ...]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def life_of(self, kind: str) -> float:
        """Years over which an asset of ``kind`` is depreciated: the inventory's, else the
        default (``depreciation.DEFAULT_USEFUL_LIFE``)."""
        from labmeter.inventory.depreciation import DEFAULT_LIFE_OTHER, DEFAULT_USEFUL_LIFE

        return self.useful_life.get(kind) or DEFAULT_USEFUL_LIFE.get(kind, DEFAULT_LIFE_OTHER)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def device(self, site: str, lab: str, device: str) -> Equipment | None:
        """The asset whose current identity this is (``owner`` for a former one)."""
        return self.equipment.get((site, lab, device))

    def index(self) -> None:
        """Fill ``tenures`` from the equipment's identities (after loading)."""
        tz = self.tz
        found: dict[DeviceKey, list[Tenure]] = {}
        for eq in self.equipment.values():
            for ident in eq.identities:
                start = None if ident.since is None else _local_ms(ident.since, 0, tz)
                end = None if ident.until is None else _local_ms(ident.until, 0, tz)
                found.setdefault(ident.key, []).append(Tenure(eq.key, start, end))
        self.tenures = {
            k: tuple(sorted(v, key=lambda t: -(2**62) if t.start_ms is None else t.start_ms))
            for k, v in found.items()
        }

    def owner(self, key: DeviceKey, t_ms: int) -> Equipment | None:
        """The asset a topic identity's data at ``t_ms`` belongs to: the one whose period
        holds it; outside every period, the next one's (the last one's after them all); None
        for an identity no asset ever had."""
        tenures = self.tenures.get(key)
        if not tenures:
            return None
        chosen = tenures[-1]
        for tenure in tenures:
            if tenure.end_ms is None or t_ms < tenure.end_ms:
                chosen = tenure
                break
        return self.equipment.get(chosen.asset)

    def held(self, key: DeviceKey, t_ms: int) -> bool:
        """Whether some asset had this identity at ``t_ms`` (data outside every period is
        still attributed, by ``owner``, but flagged)."""
        return any(
            (t.start_ms is None or t.start_ms <= t_ms) and (t.end_ms is None or t_ms < t.end_ms)
            for t in self.tenures.get(key, ())
        )

    def edges(self, start_ms: int, end_ms: int) -> list[int]:
        """Times within ``(start_ms, end_ms)`` at which some identity's period begins or ends:
        a read split there gives each part one owner, inside or outside its period."""
        out = {
            edge
            for tenures in self.tenures.values()
            for t in tenures
            for edge in (t.start_ms, t.end_ms)
            if edge is not None and start_ms < edge < end_ms
        }
        return sorted(out)

    def closed_days(self, lab: Lab, year: int) -> frozenset[date]:
        """The public holidays a lab is closed on (none if it opens on them)."""
        if not lab.public_holidays:
            return frozenset()
        site = self.sites.get(lab.site)
        if site is None:
            return public_holidays(year)
        return public_holidays(year, site.province, site.patron_day)

    def opening_spans(self, lab: Lab, start_ms: int, end_ms: int) -> Iterator[tuple[int, int]]:
        """The lab's open spans in epoch ms, clipped to ``[start_ms, end_ms)``."""
        tz = self.tz
        day = datetime.fromtimestamp(start_ms / 1000, tz).date()
        last = datetime.fromtimestamp(end_ms / 1000, tz).date()
        while day <= last:
            for a, b in self._day_spans(lab, day):
                a, b = max(a, start_ms), min(b, end_ms)
                if b > a:
                    yield a, b
            day += timedelta(days=1)

    def _day_spans(self, lab: Lab, day: date) -> tuple[tuple[int, int], ...]:
        """One local day's open spans, cached: the API asks for a year of 30 labs' spans at
        every report, and walking the calendar cost 0.2 s each time."""
        key = (lab.site, lab.id, day)
        found = self._spans.get(key)
        if found is None:
            closed = day in self.closed_days(lab, day.year) or any(
                c.start <= day <= c.end for c in lab.closures
            )
            tz = self.tz
            # Wall-clock times, so a DST day keeps its declared hours.
            found = self._spans[key] = (
                ()
                if closed
                else tuple(
                    (_local_ms(day, begin, tz), _local_ms(day, finish, tz))
                    for begin, finish in lab.hours.get(day.weekday(), ())
                )
            )
        return found

    def available_ms(self, site: str, lab: str, start_ms: int, end_ms: int) -> int:
        found = self.labs.get((site, lab))
        if found is None:
            return 0
        return sum(b - a for a, b in self.opening_spans(found, start_ms, end_ms))


def _local_ms(day: date, minutes: int, tz: ZoneInfo) -> int:
    if minutes >= 24 * 60:
        moment = datetime.combine(day + timedelta(days=1), time(), tz)
    else:
        moment = datetime.combine(day, time(minutes // 60, minutes % 60), tz)
    return int(moment.timestamp() * 1000)
