"""What a request's figures cover: its window cut into calendar periods, its read plan, the
inventory's assets with their identities over time, and the usage facts read for it once."""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from labmeter.api.plan import Filters, ReadPlan, make_plan
from labmeter.api.recent import Recent
from labmeter.api.usage import FactKey, Totals, UsageReader, View
from labmeter.influx import InfluxV1
from labmeter.inventory import Inventory, Tenure
from labmeter.opening import OpeningHours
from labmeter.schema import DeviceKey

QUERY_THREADS = 4  # a report's reads in parallel: two on InfluxDB's cores while the API sums others
T = TypeVar("T")


class Every(StrEnum):
    day = "day"
    week = "week"
    month = "month"


@dataclass
class Scope:
    """What a request's figures cover: its read plan, the inventory, and the figures already
    read for it (a report asks for the same ones several times)."""

    reader: UsageReader
    inventory: Inventory | None
    plan: ReadPlan
    _available: dict[tuple[str, str, int, int], int] = field(default_factory=dict)
    _open: dict[tuple[str, str], tuple[list[int], list[int], list[int]]] = field(
        default_factory=dict
    )
    _facts: dict[tuple[View, Every | None], list[PeriodFacts]] = field(default_factory=dict)
    _members: dict[DeviceKey, list[Member]] | None = None  # by asset, made once
    _once: Recent[str, Any] = field(default_factory=lambda: Recent(float("inf")))

    def once(self, name: str, compute: Callable[[], T]) -> T:
        """``compute()``'s value, computed once per scope however many threads ask (a scope
        is shared by the requests for the same window: ``deps.get_scope``)."""
        value: T = self._once.get(name, compute)
        return value

    @property
    def start_ms(self) -> int:
        return self.plan.start_ms

    @property
    def end_ms(self) -> int:
        return self.plan.end_ms

    @property
    def filters(self) -> Filters:
        return self.plan.filters

    @property
    def seen(self) -> frozenset[DeviceKey]:
        return self.plan.seen

    def facts(self, view: View, every: Every | None = None) -> list[PeriodFacts]:
        """Usage facts per period of ``every`` (None: the whole window), read once per scope
        (a report asks for the same ones several times). Per lab, devices the inventory does
        not list are left out: they never enter a lab's, a site's or a category's figures."""
        key = (view, every)
        if key not in self._facts:  # once, however many threads (or requests) ask
            self.once(f"facts {view} {every}", lambda: self._read_facts(view, every))
        return self._facts[key]

    def _read_facts(self, view: View, every: Every | None) -> None:
        key = (view, every)
        if every is None and (view, Every.month) in self._facts:
            total: dict[FactKey, Totals] = defaultdict(Totals)  # the months' sum: no read
            for month in self._facts[(view, Every.month)]:
                for fact, totals in month.facts.items():
                    total[fact].add(totals.seconds)
            self._facts[key] = [PeriodFacts(self.start_ms, self.end_ms, dict(total))]
        else:
            spans = periods(self, every)
            exclude = self.unregistered() if view is View.lab else ()
            read = self.reader.facts(self.plan, spans, view, exclude)
            per: dict[int, dict[FactKey, Totals]] = {a: {} for a, _ in spans}
            for (a, fact), totals in read.items():
                per[a][fact] = totals
            self._facts[key] = [PeriodFacts(a, b, per[a]) for a, b in spans]

    def asset_facts(self, every: Every | None = None) -> list[PeriodAssets]:
        """Usage per asset and period: each topic identity's seconds go to the asset that had
        the identity at the time (read in parts split where an identity changes hands), under
        the asset's current identity; an identity no asset had keeps its own key."""
        return self.once(f"assets {every}", lambda: self._asset_facts(every))

    def _asset_facts(self, every: Every | None) -> list[PeriodAssets]:
        inv = self.inventory
        spans = periods(self, every)
        cuts = inv.edges(self.start_ms, self.end_ms) if inv is not None else []
        if cuts:
            parts = cut_spans(spans, cuts)
            read = self.reader.facts(self.plan, parts, View.asset)
            pieces = [(a, fact, totals) for (a, fact), totals in read.items()]
        else:
            pieces = [
                (p.start_ms, fact, totals)
                for p in self.facts(View.asset, every)
                for fact, totals in p.facts.items()
            ]
        starts = [a for a, _ in spans]
        out = [PeriodAssets(a, b, defaultdict(Totals), {}, defaultdict(float)) for a, b in spans]
        for at, (site, lab, device, kind, _category), totals in pieces:
            period = out[bisect_right(starts, at) - 1]
            owner = inv.owner((site, lab, device), at) if inv is not None else None
            key = owner.key if owner is not None else (site, lab, device)
            period.facts[key].add(totals.seconds)
            period.kinds.setdefault(key, owner.kind if owner is not None else kind)
            if inv is not None and owner is not None and not inv.held((site, lab, device), at):
                period.outside[key] += totals.observed_s
        return out

    def unregistered(self) -> list[DeviceKey]:
        """Topic identities seen on MQTT or with samples, within the filters, that no asset
        of the inventory ever had (none without an inventory: then every device counts)."""
        if self.inventory is None:
            return []
        tenures = self.inventory.tenures
        return sorted(k for k in self.seen | self.plan.known if k not in tenures)

    def members(self) -> list[Member]:
        """What a group's figures count: each identity of each registered asset within the
        filters, for its period; without an inventory every device seen or with samples."""
        return [m for ms in self._by_asset().values() for m in ms]

    def _by_asset(self) -> dict[DeviceKey, list[Member]]:
        if self._members is not None:
            return self._members
        out: dict[DeviceKey, list[Member]] = {}
        if self.inventory is None:
            for k in sorted(k for k in self.seen | self.plan.known if self.filters.matches(k)):
                out[k] = [Member(k, k, "", None)]
        else:
            for key, tenures in sorted(self.inventory.tenures.items()):
                if self.filters.matches(key):
                    for tenure in tenures:
                        kind = self.inventory.equipment[tenure.asset].kind
                        out.setdefault(tenure.asset, []).append(
                            Member(key, tenure.asset, kind, tenure)
                        )
        self._members = out
        return out

    def member_available_s(self, member: Member, start_ms: int, end_ms: int) -> float:
        """A member's open time within ``[start_ms, end_ms)``: its lab's, while it was there."""
        if member.tenure is None:
            return (end_ms - start_ms) / 1000
        a, b = member.tenure.clip(start_ms, end_ms)
        return self.lab_available_s(member.key[0], member.key[1], a, b) if b > a else 0.0

    @property
    def tz(self) -> str:
        return self.plan.calendar.tz

    def registered(self) -> dict[DeviceKey, str]:
        """Registered assets with an identity within the filters (by their current
        identity) -> kind."""
        if self.inventory is None:
            return {}
        return {m.asset: m.kind for m in self.members()}

    def asset_key(self, key: DeviceKey) -> DeviceKey:
        """The current identity of the asset a topic identity is (or was), the last to have
        it within the window; the identity itself if no asset had it."""
        owner = self.inventory.owner(key, self.end_ms - 1) if self.inventory else None
        return owner.key if owner is not None else key

    def is_registered(self, key: DeviceKey) -> bool:
        """Whether some asset had this topic identity at some time."""
        return self.inventory is None or key in self.inventory.tenures

    def available_s(self, key: DeviceKey, start_ms: int, end_ms: int) -> float | None:
        """An asset's (by its current identity) open time: its labs' opening hours while it
        was in each, within the filters; None for a device no asset is."""
        if self.inventory is None:
            return (end_ms - start_ms) / 1000
        if key not in self.inventory.equipment:
            return None
        return sum(
            self.member_available_s(m, start_ms, end_ms) for m in self._by_asset().get(key, ())
        )

    def lab_available_s(self, site: str, lab: str, start_ms: int, end_ms: int) -> float:
        """A lab's open time in seconds (0 for a lab the inventory does not list)."""
        if self.inventory is None:
            return 0.0
        if start_ms < self.start_ms or end_ms > self.end_ms:  # beyond the spans kept
            return self.inventory.available_ms(site, lab, start_ms, end_ms) / 1000
        cache_key = (site, lab, start_ms, end_ms)
        if cache_key not in self._available:  # devices of one lab share its hours
            self._available[cache_key] = self._open_ms(self.inventory, site, lab, start_ms, end_ms)
        return self._available[cache_key] / 1000

    def _open_ms(
        self, inventory: Inventory, site: str, lab: str, start_ms: int, end_ms: int
    ) -> int:
        """Open time of a lab within the window, from its spans computed once per scope: a
        report asks for the year and each month of 30 labs, and walking the calendar each
        time cost 0.5 s. The spans are sorted and disjoint, so prefix sums answer."""
        if (site, lab) not in self._open:
            found = inventory.labs.get((site, lab))
            spans = (
                []
                if found is None
                else list(inventory.opening_spans(found, self.start_ms, self.end_ms))
            )
            self._open[(site, lab)] = (
                [a for a, _ in spans],
                [b for _, b in spans],
                list(itertools.accumulate((b - a for a, b in spans), initial=0)),
            )
        starts, ends, total = self._open[(site, lab)]
        first, stop = bisect_right(ends, start_ms), bisect_left(starts, end_ms)
        if first >= stop:
            return 0
        clipped = max(0, start_ms - starts[first]) + max(0, ends[stop - 1] - end_ms)
        return total[stop] - total[first] - clipped


def open_scope(
    influx: InfluxV1,
    opening: OpeningHours,
    start_ms: int,
    end_ms: int,
    filters: Filters,
    now_ms: int,
) -> Scope:
    """The scope of one request: its plan read from the database once."""
    plan = make_plan(influx, opening, start_ms, end_ms, filters, now_ms)
    return Scope(UsageReader(influx, opening), opening.inventory, plan)


MAX_PERIODS = 4000


def periods(scope: Scope, every: Every | None) -> list[tuple[int, int]]:
    """Calendar periods in the inventory's time zone, clipped to the window."""
    if every is not None and (scope.end_ms - scope.start_ms) / 86400_000 > MAX_PERIODS:
        raise ValueError(f"more than {MAX_PERIODS} periods: use a longer 'every'")
    if every is None:
        return [(scope.start_ms, scope.end_ms)]
    tz = ZoneInfo(scope.tz)
    day = datetime.fromtimestamp(scope.start_ms / 1000, tz).date()
    if every is Every.week:
        day -= timedelta(days=day.weekday())
    elif every is Every.month:
        day = day.replace(day=1)
    out: list[tuple[int, int]] = []
    while True:
        begin = _ms(day, tz)
        if begin >= scope.end_ms:
            return out
        if every is Every.day:
            nxt = day + timedelta(days=1)
        elif every is Every.week:
            nxt = day + timedelta(days=7)
        else:
            nxt = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        out.append((max(begin, scope.start_ms), min(_ms(nxt, tz), scope.end_ms)))
        day = nxt


def _ms(day: date, tz: ZoneInfo) -> int:
    return int(datetime.combine(day, time(), tz).timestamp() * 1000)


@dataclass(frozen=True)
class PeriodFacts:
    start_ms: int
    end_ms: int
    facts: dict[FactKey, Totals]


@dataclass(frozen=True)
class PeriodAssets:
    """A period's usage per asset (its current identity) or unregistered device."""

    start_ms: int
    end_ms: int
    facts: dict[DeviceKey, Totals]
    kinds: dict[DeviceKey, str]
    outside: dict[DeviceKey, float]  # observed seconds under an identity outside its period


@dataclass(frozen=True)
class Member:
    """One identity of one asset, for the period it was the asset's (None: always)."""

    key: DeviceKey  # the topic identity
    asset: DeviceKey  # the asset's current identity
    kind: str
    tenure: Tenure | None


def cut_spans(spans: list[tuple[int, int]], cuts: list[int]) -> list[tuple[int, int]]:
    """``spans`` split at ``cuts``."""
    out = []
    for a, b in spans:
        inner = [c for c in cuts if a < c < b]
        out += list(itertools.pairwise([a, *inner, b]))
    return out


def overlaps(tenure: Tenure, a: int, b: int) -> bool:
    """Whether the tenure holds any of ``[a, b)``."""
    start, end = tenure.clip(a, b)
    return start < end
