"""The figures an evaluator cites, computed from usage facts and the inventory.

utilisation = in-use time within opening hours / available time (the lab's opening hours,
minus closures and public holidays); in-use time outside them is reported as after-hours use;
coverage = observed time within opening hours / available time; openness = share of all
in-use time (after hours too) by stakeholder category, with *quota esterna* = (school +
company + training agency) / all.
Without an inventory, available time is the whole window for each device ever seen.
Devices seen on MQTT but missing from the inventory are listed as unregistered: they never
enter the aggregates of a lab, a site or a kind.

Figures follow an asset across moves and renames: the inventory lists each asset's former
topic identities with dates (``Inventory.tenures``). Rollups stay per topic identity; on read,
an identity's seconds belong to the asset that had it at the time (``Inventory.owner``), a
device row sums an asset's identities, and a lab counts each identity's seconds and opening
hours in the lab it was in while the asset was there.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

from labmeter.api.plan import Filters, ReadPlan, make_plan
from labmeter.api.records import (
    CategoryShare,
    DeviceRow,
    Figures,
    GroupRow,
    OpennessRow,
    SessionRow,
    SoftwareRow,
    UtilisationRow,
)
from labmeter.api.usage import FactKey, Totals, UsageReader, View
from labmeter.contract import CATEGORIES, EXTERNAL_CATEGORIES
from labmeter.influx import InfluxV1
from labmeter.inventory import Inventory, Tenure
from labmeter.opening import OpeningHours
from labmeter.schema import DeviceKey
from labmeter.sessions import Session
from labmeter.sessions import sessions as session_list
from labmeter.timeparse import iso

MAX_SESSION_WINDOW_MS = 31 * 24 * 3600_000  # the session listing; counts take any window
QUERY_THREADS = 2


class GroupBy(StrEnum):
    device = "device"
    lab = "lab"
    site = "site"
    kind = "kind"
    category = "category"


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
    _assets: dict[Every | None, list[PeriodAssets]] = field(default_factory=dict)
    _members: dict[DeviceKey, list[Member]] | None = None  # by asset, made once

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
        if key not in self._facts and every is None and (view, Every.month) in self._facts:
            total: dict[FactKey, Totals] = defaultdict(Totals)  # the months' sum: no read
            for month in self._facts[(view, Every.month)]:
                for fact, totals in month.facts.items():
                    total[fact].add(totals.seconds)
            self._facts[key] = [PeriodFacts(self.start_ms, self.end_ms, dict(total))]
        if key not in self._facts:
            spans = periods(self, every)
            exclude = self.unregistered() if view is View.lab else ()
            read = self.reader.facts(self.plan, spans, view, exclude)
            per: dict[int, dict[FactKey, Totals]] = {a: {} for a, _ in spans}
            for (a, fact), totals in read.items():
                per[a][fact] = totals
            self._facts[key] = [PeriodFacts(a, b, per[a]) for a, b in spans]
        return self._facts[key]

    def asset_facts(self, every: Every | None = None) -> list[PeriodAssets]:
        """Usage per asset and period: each topic identity's seconds go to the asset that had
        the identity at the time (read in parts split where an identity changes hands), under
        the asset's current identity; an identity no asset had keeps its own key."""
        if every in self._assets:
            return self._assets[every]
        inv = self.inventory
        spans = periods(self, every)
        cuts = inv.edges(self.start_ms, self.end_ms) if inv is not None else []
        if cuts:
            parts = _cut(spans, cuts)
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
        self._assets[every] = out
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


def _cut(spans: list[tuple[int, int]], cuts: list[int]) -> list[tuple[int, int]]:
    """``spans`` split at ``cuts``."""
    out = []
    for a, b in spans:
        inner = [c for c in cuts if a < c < b]
        out += list(itertools.pairwise([a, *inner, b]))
    return out


def _ratio(num: float, den: float | None) -> float | None:
    return num / den if den else None


def utilisation(scope: Scope, group_by: GroupBy, every: Every | None) -> list[UtilisationRow]:
    """Rows per device or group and per period (``every``; None: the whole window)."""
    if group_by is GroupBy.device:
        return list(device_rows(scope, every))
    return list(group_rows(scope, group_by, every))


def _kinds(scope: Scope, period: PeriodAssets) -> dict[DeviceKey, str]:
    """Every asset or device of a period: registered (with the inventory's kind), with data,
    seen (an identity some asset had is that asset's row, not one of its own)."""
    kinds = scope.registered()
    for key, kind in period.kinds.items():
        kinds.setdefault(key, kind)
    for key in scope.seen:
        if scope.filters.matches(key) and not (scope.inventory and scope.is_registered(key)):
            kinds.setdefault(key, "")
    return kinds


def device_rows(scope: Scope, every: Every | None) -> list[DeviceRow]:
    """Every asset (by its current identity, all its identities summed) and every device
    no asset is (flagged unregistered)."""
    rows: list[DeviceRow] = []
    inv = scope.inventory
    for p in scope.asset_facts(every):
        for key, kind in sorted(_kinds(scope, p).items()):
            avail = scope.available_s(key, p.start_ms, p.end_ms)
            # A cast as in ``_group_row``: mypy asks a ** merge for every NotRequired key.
            row = cast(
                DeviceRow,
                {
                    "site": key[0],
                    "lab": key[1],
                    "device": key[2],
                    "kind": kind,
                    "period_start_ms": p.start_ms,
                    "period_end_ms": p.end_ms,
                    "registered": inv is None or key in inv.equipment,
                    **figures(p.facts.get(key, Totals()), avail, 1),
                },
            )
            eq = inv.equipment.get(key) if inv is not None else None
            if eq is not None and eq.history:
                row["former"] = eq.former
            if p.outside.get(key):
                row["outside_period_s"] = round(p.outside[key], 3)
            rows.append(row)
    return rows


def lab_figures(scope: Scope, members: list[Member], t: Totals, a: int, b: int) -> Figures:
    """A group's figures: its members' open time while each was in it, its assets counted
    once."""
    avail = sum(scope.member_available_s(m, a, b) for m in members) if members else None
    return figures(t, avail, len({m.asset for m in members}))


def group_rows(scope: Scope, group_by: GroupBy, every: Every | None) -> list[GroupRow]:
    """Registered devices per lab, site, kind or stakeholder category; unregistered ones
    never enter an aggregate. Per lab, site and category from the per-lab facts (a region's
    year reads 150 lab series instead of 1,500 device ones), per kind from the per-asset."""
    rows: list[GroupRow] = []
    members = scope.members()
    for a, b, sums in _group_sums(scope, group_by, every):
        if group_by is GroupBy.category:
            avail_all = sum(scope.member_available_s(m, a, b) for m in members) or None
            for (category,), t in sorted(sums.items()):
                row = _group_row(a, b, figures(t, avail_all, None))
                row["category"] = category
                row["coverage"] = None  # observed time by category has no denominator of its own
                rows.append(row)
            continue
        groups: dict[tuple[str, ...], list[Member]] = defaultdict(list)
        for m in members:
            # A lab counts the identities that were in it during the period.
            if group_by is not GroupBy.lab or m.tenure is None or overlaps(m.tenure, a, b):
                groups[_group_of(group_by, m.key, m.kind)].append(m)
        for group, within in sorted(groups.items()):
            row = _group_row(a, b, lab_figures(scope, within, sums.get(group, Totals()), a, b))
            for name, value in zip(_GROUP_NAMES[group_by], group, strict=True):
                row[name] = value
            rows.append(row)
    return rows


def _group_sums(
    scope: Scope, group_by: GroupBy, every: Every | None
) -> list[tuple[int, int, dict[tuple[str, ...], Totals]]]:
    """Per period, the seconds of each group: per kind from the per-asset facts (each
    identity's seconds with the asset that had it), otherwise from the per-lab facts (each
    identity's in the lab it was in, as its topic says)."""
    out = []
    if group_by is GroupBy.kind:
        for q in scope.asset_facts(every):
            sums: dict[tuple[str, ...], Totals] = defaultdict(Totals)
            for key, t in q.facts.items():
                if scope.is_registered(key):
                    kind = q.kinds.get(key, "") if scope.inventory is not None else ""
                    sums[(kind,)].add(t.seconds)
            out.append((q.start_ms, q.end_ms, sums))
        return out
    for p in scope.facts(View.lab, every):
        sums = defaultdict(Totals)
        for (site, lab, _d, _k, category), t in p.facts.items():
            if group_by is GroupBy.category:
                sums[(category,)].add(t.seconds)
            else:
                sums[_group_of(group_by, (site, lab, ""), "")].add(t.seconds)
        out.append((p.start_ms, p.end_ms, sums))
    return out


def overlaps(tenure: Tenure, a: int, b: int) -> bool:
    """Whether the tenure holds any of ``[a, b)``."""
    start, end = tenure.clip(a, b)
    return start < end


def _group_of(group_by: GroupBy, key: DeviceKey, kind: str) -> tuple[str, ...]:
    if group_by is GroupBy.lab:
        return key[:2]
    return key[:1] if group_by is GroupBy.site else (kind,)


def _group_row(start_ms: int, end_ms: int, fig: Figures) -> GroupRow:
    # mypy asks a ** merge for every NotRequired key; the group's names are set by the caller.
    return cast(GroupRow, {"period_start_ms": start_ms, "period_end_ms": end_ms, **fig})


_GROUP_NAMES: dict[GroupBy, tuple[Literal["site", "lab", "kind"], ...]] = {
    GroupBy.lab: ("site", "lab"),
    GroupBy.site: ("site",),
    GroupBy.kind: ("kind",),
}


def figures(t: Totals, available: float | None, devices: int | None) -> Figures:
    """Only time within opening hours is divided by them; use after hours is shown apart."""
    in_use_open, observed_open = t.seconds["in_use_open_s"], t.seconds["observed_open_s"]
    out = Figures(
        in_use_s=round(t.in_use_s, 3),
        in_use_open_s=round(in_use_open, 3),
        after_hours_s=None if available is None else round(t.in_use_s - in_use_open, 3),
        observed_s=round(t.observed_s, 3),
        observed_open_s=round(observed_open, 3),
        alarm_s=round(t.seconds["alarm_s"], 3),
        off_s=round(t.seconds["off_s"], 3),
        available_s=available,
        utilisation=_ratio(in_use_open, available),
        coverage=_ratio(observed_open, available),
    )
    if devices is not None:
        out["devices"] = devices
    return out


def openness(scope: Scope) -> OpennessRow:
    """In-use seconds by stakeholder category and the external share over the window."""
    return _openness(scope, by_lab=False)[0]


def openness_per_lab(scope: Scope) -> list[OpennessRow]:
    return _openness(scope, by_lab=True)


def _openness(scope: Scope, by_lab: bool) -> list[OpennessRow]:
    groups: dict[tuple[str, str], dict[str, float]] = defaultdict(
        lambda: dict.fromkeys(CATEGORIES, 0.0)
    )
    for (site, lab, _d, _k, category), t in scope.facts(View.lab)[0].facts.items():
        group = (site, lab) if by_lab else ("", "")
        groups[group][category] = groups[group].get(category, 0.0) + t.in_use_s
    if not by_lab and not groups:
        groups[("", "")] = dict.fromkeys(CATEGORIES, 0.0)
    out = []
    for (site, lab), cats in sorted(groups.items()):
        total = sum(cats.values())
        external = sum(cats.get(c, 0.0) for c in EXTERNAL_CATEGORIES)
        row = OpennessRow(
            in_use_s=round(total, 3),
            external_s=round(external, 3),
            quota_esterna=_ratio(external, total),
            categories={
                c: CategoryShare(in_use_s=round(v, 3), share=_ratio(v, total))
                for c, v in cats.items()
            },
        )
        if by_lab:
            row["site"], row["lab"] = site, lab
        out.append(row)
    return out


def software(scope: Scope) -> list[SoftwareRow]:
    """Hours per title and peak concurrent seats against the seats owned."""
    s = scope
    seconds = s.reader.app_seconds(s.plan)
    peaks = s.reader.peak_seats(s.plan)
    titles: dict[tuple[str, str], dict[str, Any]] = {}
    for (site, _lab, _device, app), secs in seconds.items():
        entry = titles.setdefault((site, app), {"seconds": 0.0, "devices": 0})
        entry["seconds"] += secs
        entry["devices"] += 1 if secs > 0 else 0
    if s.inventory is not None:
        for site, app in s.inventory.software:
            if not s.filters.site or s.filters.site == site:
                titles.setdefault((site, app), {"seconds": 0.0, "devices": 0})
    rows = []
    for (site, app), entry in sorted(titles.items()):
        lic = s.inventory.software.get((site, app)) if s.inventory else None
        peak = peaks.get((site, app), 0)
        rows.append(
            SoftwareRow(
                site=site,
                app=app,
                hours=round(entry["seconds"] / 3600, 6),
                devices=entry["devices"],
                peak_seats=peak,
                seats_owned=lic.seats if lic else None,
                peak_share=_ratio(peak, lic.seats if lic else None),
                registered=lic is not None,
            )
        )
    return rows


def sessions(scope: Scope) -> list[SessionRow]:
    """The sessions begun in the window (``labmeter/sessions.py``: the agent's session events
    where it sends them, otherwise runs of samples of one pseudonym), from raw points."""
    found = session_list(
        scope.reader.samples(scope.plan),
        scope.reader.session_events(scope.plan),
        scope.start_ms,
        scope.end_ms,
        scope.plan.calendar,
    )
    return [_row(s) for s in found]


def _row(s: Session) -> SessionRow:
    return SessionRow(
        site=s.site, lab=s.lab, device=s.device, user=s.user, category=s.category,
        start=iso(s.start_ms), end=iso(s.end_ms), start_ms=s.start_ms, end_ms=s.end_ms,
        duration_s=(s.end_ms - s.start_ms) / 1000, in_use_s=round(s.in_use_s, 3),
        source=s.source,
    )  # fmt: skip


def company_use_of_pnrr(scope: Scope) -> dict[DeviceKey, float]:
    """In-use seconds of the ``company`` category on PNRR-funded devices over the window:
    read per device and category, but only that category's series."""
    inv = scope.inventory
    if inv is None:
        return {}
    pnrr = {i.key for eq in inv.equipment.values() if eq.funding.pnrr for i in eq.identities}
    if not any(scope.filters.matches(k) for k in pnrr):
        return {}
    spans = _cut([(scope.start_ms, scope.end_ms)], inv.edges(scope.start_ms, scope.end_ms))
    out: dict[DeviceKey, float] = defaultdict(float)
    facts = scope.reader.facts(scope.plan, spans, View.fact, categories=("company",))
    for (at, (site, lab, device, _k, _c)), t in facts.items():
        owner = inv.owner((site, lab, device), at)
        if owner is not None and owner.funding.pnrr:
            out[owner.key] += t.in_use_s
    return dict(out)
