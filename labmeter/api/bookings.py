"""Declared use against measured use: each booking's used share and no-shows, use outside
every booking, booked vs used by category and organisation, and commercial use.

A booking books its devices (a lab booking: every device of the lab in the inventory) over
its span clipped to the window; an all-day booking books the lab's opening hours of its days
(its whole days when the lab is closed then). Per booking: booked device-seconds = span x
devices, in use = in-use seconds of the booked devices within the span, used share = in use /
booked, a no-show when the share is below the threshold. Unbooked use = in-use seconds of a
lab's registered devices outside every booking that covers them. Commercial use is only what a
commercial booking declares: a PNRR-funded asset (hardware, or a PNRR software title running
on a booked device) in use under such a booking is flagged with the booking's reference; a
company's use of a PNRR asset without one is reported as that, never as commercial.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from typing_extensions import TypedDict  # pydantic reads these as response models on 3.11

from labmeter.api.openness import company_use_of_pnrr
from labmeter.api.scope import Scope
from labmeter.api.spans import Seconds, Span, SpanReader
from labmeter.api.usage import View
from labmeter.bookings import Booking, FeedState
from labmeter.bookings.fetch import shown_url
from labmeter.contract import CATEGORIES
from labmeter.schema import DeviceKey

DEFAULT_NO_SHOW_BELOW = 0.10


class BookingRow(TypedDict):
    uid: str
    site: str
    lab: str
    devices: list[str]  # the devices booked (a lab booking: every device of the lab)
    lab_booking: bool  # booked the whole lab
    start_ms: int
    end_ms: int
    all_day: bool
    organisation: str
    category: str  # declared
    activity: str
    commercial: bool
    reference: str
    source: str  # file:line
    booked_s: float  # the span within the window (an all-day booking: its opening hours)
    booked_device_s: float  # booked_s x devices
    in_use_s: float  # in-use seconds of the booked devices within it
    used_share: float | None  # in_use_s / booked_device_s
    no_show: bool  # used_share below the threshold
    in_use_by_category_s: dict[str, float]  # who the agents saw using them (measured)


class LabUse(TypedDict):
    site: str
    lab: str
    name: str
    bookings: int
    no_shows: int
    booked_device_s: float
    in_use_s: float  # every in-use second of the lab's registered devices in the window
    booked_in_use_s: float  # within a booking that covers the device
    unbooked_s: float  # in_use_s - booked_in_use_s
    unbooked_by_category_s: dict[str, float]  # measured category of the unbooked use


class DeclaredUse(TypedDict):
    """Bookings of one declared category or organisation."""

    name: str  # the category, or the organisation
    category: str
    bookings: int
    no_shows: int
    booked_device_s: float
    in_use_s: float
    used_share: float | None


class CommercialUse(TypedDict):
    """A PNRR-funded asset in use under a booking declared commercial."""

    site: str
    lab: str
    asset: str  # device id, or software title
    asset_kind: str  # "equipment" or "software"
    device: str  # where it ran (software), or the device itself
    reference: str
    organisation: str
    booking: str  # uid
    start_ms: int
    end_ms: int
    in_use_s: float  # equipment: in use; software: seconds it ran


class CompanyUse(TypedDict):
    """A company's use of a PNRR-funded device outside every commercial booking: reported as
    such, not as commercial use."""

    site: str
    lab: str
    device: str
    in_use_s: float


class FeedRow(TypedDict):
    name: str
    url: str
    fetched_ms: int | None  # the last good copy's fetch; None: never fetched
    age_s: float | None
    error: str


class Reconciliation(TypedDict):
    no_show_below: float
    bookings: list[BookingRow]
    labs: list[LabUse]
    categories: list[DeclaredUse]
    organisations: list[DeclaredUse]
    commercial: list[CommercialUse]
    company_without_commercial_booking: list[CompanyUse]
    outside_organisations: int  # distinct organisations of external categories that booked
    feeds: list[FeedRow]


@dataclass(frozen=True)
class _Booked:
    booking: Booking
    devices: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]


def _members(scope: Scope) -> dict[tuple[str, str], list[str]]:
    """Each lab's devices: every identity an asset of the inventory had in it (a booking's
    time tells which was there), or those seen without one."""
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    keys = scope.inventory.tenures if scope.inventory is not None else scope.seen
    for site, lab, device in sorted(keys):
        out[(site, lab)].append(device)
    return out


def _booked(scope: Scope, booking: Booking, members: list[str]) -> _Booked | None:
    devices = booking.devices or tuple(members)
    if scope.filters.device:
        devices = tuple(d for d in devices if d == scope.filters.device)
    a, b = max(booking.start_ms, scope.start_ms), min(booking.end_ms, scope.end_ms)
    if not devices or b <= a or not scope.filters.matches_lab(booking.site, booking.lab):
        return None
    spans: list[tuple[int, int]] = [(a, b)]
    inv = scope.inventory
    if booking.all_day and inv is not None and (lab := inv.labs.get((booking.site, booking.lab))):
        spans = list(inv.opening_spans(lab, a, b)) or spans
    return _Booked(booking, devices, tuple(spans))


def _segments(booked: list[_Booked]) -> dict[Span, list[int]]:
    """Each lab's time cut at every booking's edges; the pieces inside at least one booking,
    with the bookings that hold them. Overlapping bookings share pieces, so no second is
    read (or counted as booked use) twice."""
    by_lab: dict[tuple[str, str], list[tuple[int, int, int]]] = defaultdict(list)
    for n, item in enumerate(booked):
        for a, b in item.spans:
            by_lab[(item.booking.site, item.booking.lab)].append((a, b, n))
    out: dict[Span, list[int]] = {}
    for (site, lab), spans in by_lab.items():
        starts: dict[int, list[int]] = defaultdict(list)
        ends: dict[int, list[int]] = defaultdict(list)
        for a, b, n in spans:
            starts[a].append(n)
            ends[b].append(n)
        active: set[int] = set()
        cuts = sorted(starts.keys() | ends.keys())
        for a, b in itertools.pairwise(cuts):  # a sweep: a year holds thousands of bookings
            active.difference_update(ends.get(a, ()))
            active.update(starts.get(a, ()))
            if active:
                out[(site, lab, a, b)] = sorted(active)
    return out


def _share(used: float, booked: float) -> float | None:
    return used / booked if booked else None


def reconcile(
    scope: Scope,
    bookings: Sequence[Booking],
    no_show_below: float = DEFAULT_NO_SHOW_BELOW,
    feeds: Sequence[FeedState] = (),
) -> Reconciliation:
    """Every figure of the bookings section over the scope's window."""
    members = _members(scope)
    booked = [
        found
        for b in bookings
        if (found := _booked(scope, b, members.get((b.site, b.lab), []))) is not None
    ]
    segments = _segments(booked)
    reader = SpanReader(scope.reader.influx, scope.plan)
    seconds = reader.in_use(list(segments))
    per_booking: list[dict[str, float]] = [defaultdict(float) for _ in booked]
    covered: dict[tuple[DeviceKey, str], float] = defaultdict(float)  # booked in-use
    for span, holders in segments.items():
        site, lab = span[0], span[1]
        devices_in = {d for n in holders for d in booked[n].devices}
        for (device, category), value in seconds[span].items():
            for n in holders:
                if device in booked[n].devices:
                    per_booking[n][category] += value
            if device in devices_in:
                covered[((site, lab, device), category)] += value
    rows = [_row(item, per_booking[n], no_show_below) for n, item in enumerate(booked)]
    return Reconciliation(
        no_show_below=no_show_below,
        bookings=rows,
        labs=_labs(scope, rows, covered, members),
        categories=_declared(rows, by_organisation=False),
        organisations=_declared(rows, by_organisation=True),
        commercial=_commercial(scope, reader, booked, segments, seconds),
        company_without_commercial_booking=_company(scope, booked, segments, seconds),
        outside_organisations=len(
            {r["organisation"] for r in rows if r["category"] in _EXTERNAL and not r["no_show"]}
        ),
        feeds=[_feed(f, scope.plan.now_ms) for f in feeds],
    )


_EXTERNAL = frozenset({"school", "company", "training_agency"})


def _row(item: _Booked, by_category: dict[str, float], no_show_below: float) -> BookingRow:
    b = item.booking
    booked_s = sum(e - a for a, e in item.spans) / 1000
    booked_device_s = booked_s * len(item.devices)
    in_use = sum(by_category.values())
    share = _share(in_use, booked_device_s)
    return BookingRow(
        uid=b.uid,
        site=b.site,
        lab=b.lab,
        devices=list(item.devices),
        lab_booking=not b.devices,
        start_ms=b.start_ms,
        end_ms=b.end_ms,
        all_day=b.all_day,
        organisation=b.organisation,
        category=b.category,
        activity=b.activity,
        commercial=b.commercial,
        reference=b.reference,
        source=b.source,
        booked_s=booked_s,
        booked_device_s=booked_device_s,
        in_use_s=round(in_use, 3),
        used_share=share,
        no_show=share is not None and share < no_show_below,
        in_use_by_category_s={c: round(v, 3) for c, v in sorted(by_category.items()) if v},
    )


def _labs(
    scope: Scope,
    rows: list[BookingRow],
    covered: dict[tuple[DeviceKey, str], float],
    members: dict[tuple[str, str], list[str]],
) -> list[LabUse]:
    total: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    # Per lab and category, registered devices only (the ones bookings can name).
    for (site, lab, _device, _kind, category), t in scope.facts(View.lab)[0].facts.items():
        if (site, lab) in members:
            total[(site, lab)][category] += t.in_use_s
    booked_in: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for ((site, lab, _device), category), value in covered.items():
        booked_in[(site, lab)][category] += value
    inv = scope.inventory
    out = []
    labs = {k for k in members if scope.filters.matches_lab(*k)} | {
        (r["site"], r["lab"]) for r in rows
    }
    for key in sorted(labs):
        mine = [r for r in rows if (r["site"], r["lab"]) == key]
        all_use, inside = total.get(key, {}), booked_in.get(key, {})
        unbooked = {
            c: round(all_use.get(c, 0.0) - inside.get(c, 0.0), 3)
            for c in CATEGORIES
            if round(all_use.get(c, 0.0) - inside.get(c, 0.0), 3)
        }
        found = inv.labs.get(key) if inv is not None else None
        out.append(
            LabUse(
                site=key[0],
                lab=key[1],
                name=found.name if found is not None else key[1],
                bookings=len(mine),
                no_shows=sum(r["no_show"] for r in mine),
                booked_device_s=sum(r["booked_device_s"] for r in mine),
                in_use_s=round(sum(all_use.values()), 3),
                booked_in_use_s=round(sum(inside.values()), 3),
                unbooked_s=round(sum(all_use.values()) - sum(inside.values()), 3),
                unbooked_by_category_s=unbooked,
            )
        )
    return out


def _declared(rows: list[BookingRow], by_organisation: bool) -> list[DeclaredUse]:
    groups: dict[tuple[str, str], list[BookingRow]] = defaultdict(list)
    for r in rows:
        groups[(r["organisation"] if by_organisation else r["category"], r["category"])].append(r)
    out = []
    for (name, category), members in sorted(groups.items()):
        booked = sum(r["booked_device_s"] for r in members)
        used = round(sum(r["in_use_s"] for r in members), 3)
        out.append(
            DeclaredUse(
                name=name,
                category=category,
                bookings=len(members),
                no_shows=sum(r["no_show"] for r in members),
                booked_device_s=booked,
                in_use_s=used,
                used_share=_share(used, booked),
            )
        )
    return out


def _commercial(
    scope: Scope,
    reader: SpanReader,
    booked: list[_Booked],
    segments: dict[Span, list[int]],
    seconds: Seconds,
) -> list[CommercialUse]:
    """PNRR equipment in use, and PNRR software running, under commercial bookings."""
    inv = scope.inventory
    if inv is None:
        return []
    out: list[CommercialUse] = []
    mine = {
        span: [n for n in holders if booked[n].booking.commercial]
        for span, holders in segments.items()
    }
    mine = {span: holders for span, holders in mine.items() if holders}
    equipment: dict[tuple[int, str], float] = defaultdict(float)
    for span, holders in mine.items():
        for (device, _category), value in seconds[span].items():
            eq = inv.owner((span[0], span[1], device), span[2])
            if eq is None or not eq.funding.pnrr:
                continue
            for n in holders:
                if device in booked[n].devices:
                    equipment[(n, device)] += value
    pnrr_apps = {app for (site, app), sw in inv.software.items() if sw.funding.pnrr}
    running = reader.running(list(mine), pnrr_apps) if pnrr_apps else {}
    software: dict[tuple[int, str, str], float] = defaultdict(float)
    for span, found in running.items():
        for (device, app), value in found.items():
            sw = inv.software.get((span[0], app))
            if sw is None or not sw.funding.pnrr:
                continue
            for n in mine[span]:
                if device in booked[n].devices:
                    software[(n, app, device)] += value
    items = [(n, device, device, "equipment", v) for (n, device), v in equipment.items()]
    items += [(n, app, device, "software", v) for (n, app, device), v in software.items()]
    for n, asset, device, kind, value in items:
        if value <= 0:
            continue
        b = booked[n].booking
        out.append(
            CommercialUse(
                site=b.site, lab=b.lab, asset=asset, asset_kind=kind, device=device,
                reference=b.reference, organisation=b.organisation, booking=b.uid,
                start_ms=b.start_ms, end_ms=b.end_ms, in_use_s=round(value, 3),
            )
        )  # fmt: skip
    return sorted(out, key=lambda c: (c["start_ms"], c["site"], c["lab"], c["asset"], c["device"]))


def _company(
    scope: Scope, booked: list[_Booked], segments: dict[Span, list[int]], seconds: Seconds
) -> list[CompanyUse]:
    """Company use of PNRR devices minus the part under commercial bookings."""
    inv = scope.inventory
    if inv is None:
        return []
    company: dict[DeviceKey, float] = defaultdict(float, company_use_of_pnrr(scope))
    for span, holders in segments.items():
        commercial = {d for n in holders if booked[n].booking.commercial for d in booked[n].devices}
        for (device, category), value in seconds[span].items():
            key = (span[0], span[1], device)
            if category == "company" and device in commercial and key in company:
                company[key] -= value
    return [
        CompanyUse(site=k[0], lab=k[1], device=k[2], in_use_s=round(v, 3))
        for k, v in sorted(company.items())
        if round(v, 3) > 0
    ]


def _feed(state: FeedState, now_ms: int) -> FeedRow:
    return FeedRow(
        name=state.name,
        url=shown_url(state.url),
        fetched_ms=state.fetched_ms,
        age_s=state.age_s(now_ms),
        error=state.error,
    )
