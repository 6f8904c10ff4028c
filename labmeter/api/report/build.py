"""The report's content, following the *Rapporto di utilizzo* outline (DESIGN.md).

Every renderer (JSON, CSV, XLSX, HTML, PDF) reads this one typed structure (``model.py``), so
the formats cannot disagree. Numbers stay raw here (seconds, ratios); formatting is the
renderer's job.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Any

from labmeter import __version__
from labmeter.api import figures, openness, session_counts, software
from labmeter.api.bookings import DEFAULT_NO_SHOW_BELOW, CompanyUse, reconcile
from labmeter.api.costs import Costs, costs
from labmeter.api.figures import GroupBy
from labmeter.api.records import DeviceRow
from labmeter.api.report.model import (
    AgentVersion,
    AvailabilityRow,
    ClosedPeriod,
    Closure,
    Conclusions,
    CrossCheck,
    DeviceRef,
    EquipmentRow,
    Evidence,
    Fingerprint,
    FrameworkRow,
    Gap,
    Meta,
    MonthOpenness,
    MonthRow,
    Openness,
    Report,
    Thresholds,
    Underused,
    funded,
)
from labmeter.api.scope import QUERY_THREADS, Every, Member, Scope, overlaps
from labmeter.api.usage import Totals, View
from labmeter.bookings import Booking, Bookings, FeedState
from labmeter.contract import CATEGORIES, EXTERNAL_CATEGORIES
from labmeter.inventory import DAYS, Equipment, Software
from labmeter.periods import closure_of, refusals
from labmeter.schema import DeviceKey
from labmeter.sessions import SESSION_GAP_TOLERANCE_MS, SESSION_LOOK_BACK_MS

UNDERUSED_BELOW = 0.20  # utilisation under this is flagged as under-used
LOW_COVERAGE_BELOW = 0.80  # coverage under this is flagged as a gap
# A machine's protocol in use while its clamp says off for this long is flagged: less is a
# poll's jitter at a change (each side sees it up to a poll late).
CROSSCHECK_FLAG_S = 60.0
DURABILITY_YEARS = 5  # after the final payment (EU CPR art. 65)
RETENTION_YEARS = 10  # evidence kept; funds ask 5-10 years, the longest is kept
STEPS = 6


def settings() -> dict[str, Any]:
    """The settings in the code that shape the report's figures (thresholds, definitions):
    every report states them, and a closed period's package keeps them."""
    return {
        "underused_below": UNDERUSED_BELOW,
        "low_coverage_below": LOW_COVERAGE_BELOW,
        "durability_years": DURABILITY_YEARS,
        "retention_years": RETENTION_YEARS,
        "session_gap_tolerance_ms": SESSION_GAP_TOLERANCE_MS,
        "session_look_back_ms": SESSION_LOOK_BACK_MS,
    }


Progress = Callable[[int, int, str], None]


def _years_after(day: date | None, years: int) -> date | None:
    if day is None:
        return None
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _hours_text(hours: dict[int, tuple[tuple[int, int], ...]]) -> dict[str, str]:
    return {
        DAYS[d]: ", ".join(
            f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in spans
        )
        for d, spans in sorted(hours.items())
        if spans
    }


@dataclass(frozen=True)
class Declared:
    """The bookings a report reconciles with, and the settings of that reconciliation."""

    bookings: Sequence[Booking]
    feeds: Sequence[FeedState] = ()
    no_show_below: float = DEFAULT_NO_SHOW_BELOW

    @classmethod
    def of(
        cls, books: Bookings | None, start_ms: int, end_ms: int, no_show_below: float
    ) -> Declared | None:
        """What a report over ``[start_ms, end_ms)`` reconciles with; None without bookings."""
        if books is None:
            return None
        return cls(books.between(start_ms, end_ms), books.feed_states(), no_show_below)


def build(
    scope: Scope, progress: Progress | None = None, declared: Declared | None = None
) -> Report:
    """Collect every section's figures; ``progress(step, total, label)`` after each query."""

    def step(n: int, label: str) -> None:
        if progress is not None:
            progress(n, STEPS, label)

    inv = scope.inventory
    # Independent reads run side by side: InfluxDB answers them in parallel and the HTTP
    # calls release the GIL. The labs' months give the window's lab figures too (their sum).
    with ThreadPoolExecutor(max_workers=QUERY_THREADS) as pool:
        lab_months = pool.submit(scope.facts, View.lab, Every.month)
        assets = pool.submit(scope.facts, View.asset)
        licences_future = pool.submit(software.licences, scope)
        versions_future = pool.submit(scope.reader.agent_versions, scope.plan)
        conflicts_future = pool.submit(scope.reader.crosscheck_conflicts, scope.plan)
        sessions_future = pool.submit(scope.once, "sessions", lambda: session_counts.count(scope))
        lab_months.result(), assets.result()
        devices = figures.device_rows(scope, None)
        labs = figures.group_rows(scope, GroupBy.lab, None)
        step(1, "utilisation per device and lab")
        months, monthly_openness = _monthly(scope)
        step(2, "monthly trend")
        openness_total = openness.openness_of(scope)
        openness_labs = openness.openness_per_lab(scope)
        step(3, "openness")
        step(4, "monthly openness")
        licences = licences_future.result()
        step(5, "software licences")
        sessions = sessions_future.result()
        versions = versions_future.result()
        conflicts = conflicts_future.result()
        step(6, "sessions and agent versions")
        influx, site = scope.reader.influx, scope.filters.tags.get("site")
        closure = closure_of(influx, scope.start_ms, scope.end_ms, site)
        refused = refusals(influx, scope.start_ms, scope.end_ms, site)

    reconciled = (
        reconcile(scope, declared.bookings, declared.no_show_below, declared.feeds)
        if declared is not None
        else None
    )
    spent = (
        costs(
            inv,
            scope.start_ms,
            scope.end_ms,
            {(r["site"], r["lab"], r["device"]): r["in_use_s"] for r in devices},
            {(r["site"], r["app"]): r["hours"] * 3600 for r in licences},
            scope.filters.tags,
        )
        if inv is not None
        else Costs(assets=[], labs=[], funds=[], useful_life_years={})
    )
    per_hour = {
        (a["site"], a["lab"], a["asset"]): a["cost_per_hour"]
        for a in spent["assets"]
        if a["asset_kind"] == "equipment"
    }
    # Per asset: a former identity's sessions are its asset's.
    counts: dict[DeviceKey, int] = defaultdict(int)
    for device, n in sessions.devices.items():
        counts[scope.asset_key(device)] += n
    registered_sessions = session_counts.summary(sessions)
    equipment = [_equipment(scope, row, counts, versions, per_hour) for row in devices]

    registered = [e for e in equipment if e["registered"]]
    available = sum(e["available_s"] or 0 for e in registered)
    observed = sum(e["observed_open_s"] for e in registered)
    gaps = [
        Gap(site=e["site"], lab=e["lab"], device=e["device"], coverage=e["coverage"])
        for e in registered
        if e["coverage"] is not None and e["coverage"] < LOW_COVERAGE_BELOW
    ]
    underused = [
        Underused(site=e["site"], lab=e["lab"], device=e["device"], utilisation=e["utilisation"])
        for e in registered
        if e["utilisation"] is not None and e["utilisation"] < UNDERUSED_BELOW
    ]
    if reconciled is not None:
        company = reconciled["company_without_commercial_booking"]
    else:  # no bookings: nothing is declared commercial, all of it is company use without one
        company = _company_use(scope)
    return Report(
        meta=Meta(
            start_ms=scope.start_ms,
            end_ms=scope.end_ms,
            generated_ms=int(time.time() * 1000),
            timezone=scope.tz,
            inventory=inv.path if inv else None,
            labmeter=__version__,
            filters={k: v for k, v in scope.filters.tags.items() if v},
            rolled_until_ms=scope.plan.rolled_until,
        ),
        framework=_framework(scope),
        availability=_availability(scope),
        equipment=equipment,
        labs=labs,
        months=months,
        licences=licences,
        users=openness_total,
        sessions=registered_sessions,
        openness=Openness(
            labs=openness_labs,
            months=monthly_openness,
            outside_organisations=(
                reconciled["outside_organisations"] if reconciled is not None else None
            ),
            external_sessions=sum(
                v["sessions"] for c, v in registered_sessions["categories"].items() if c in EXTERNAL
            ),
        ),
        evidence=Evidence(
            available_s=available,
            observed_open_s=observed,
            coverage=observed / available if available else None,
            gaps=gaps,
            never_seen=[
                _ref(key)
                for e in registered
                if (key := (e["site"], e["lab"], e["device"])) not in scope.seen
                and e["observed_s"] == 0
            ],
            unregistered=[_ref(key) for key in scope.unregistered()],
            agent_versions=_count_versions(versions),
            thresholds=Thresholds(
                underused_below=UNDERUSED_BELOW,
                low_coverage_below=LOW_COVERAGE_BELOW,
                durability_years=DURABILITY_YEARS,
                retention_years=RETENTION_YEARS,
                session_gap_tolerance_s=SESSION_GAP_TOLERANCE_MS / 1000,
                no_show_below=declared.no_show_below if declared is not None else None,
                useful_life_years=spent["useful_life_years"],
            ),
            external_categories=list(EXTERNAL_CATEGORIES),
            categories=list(CATEGORIES),
            feeds=reconciled["feeds"] if reconciled is not None else [],
            fingerprint=Fingerprint(
                inventory_sha256=inv.sha256 if inv else None,
                labmeter=__version__,
                settings=settings(),
                closed=None
                if closure is None
                else ClosedPeriod(
                    start_ms=closure.start_ms,
                    end_ms=closure.end_ms,
                    site=closure.site,
                    state=closure.state,
                    manifest_sha256=closure.manifest_sha256,
                ),
            ),
            refused=refused,
        ),
        conclusions=Conclusions(
            underused=underused,
            low_coverage=gaps,
            commercial_use=reconciled["commercial"] if reconciled is not None else [],
            company_without_commercial_booking=company,
            crosscheck=[
                CrossCheck(site=k[0], lab=k[1], device=k[2], conflict_s=round(secs, 3))
                for k, secs in sorted(conflicts.items())
                if secs >= CROSSCHECK_FLAG_S
            ],
        ),
        bookings=reconciled,
        costs=spent,
    )


EXTERNAL = frozenset(EXTERNAL_CATEGORIES)


def _company_use(scope: Scope) -> list[CompanyUse]:
    """Company use of PNRR devices: with no bookings, none of it is declared commercial."""
    out: dict[DeviceKey, float] = defaultdict(float)
    for (site, lab, device), seconds in openness.company_use_of_pnrr(scope).items():
        out[(site, lab, device)] += seconds
    return [
        CompanyUse(site=k[0], lab=k[1], device=k[2], in_use_s=round(v, 3))
        for k, v in sorted(out.items())
        if v > 0
    ]


def _ref(key: DeviceKey) -> DeviceRef:
    return DeviceRef(site=key[0], lab=key[1], device=key[2])


def _equipment(
    scope: Scope,
    row: DeviceRow,
    sessions: dict[DeviceKey, int],
    versions: dict[DeviceKey, str],
    per_hour: dict[DeviceKey, float | None],
) -> EquipmentRow:
    """A device's figures with its inventory entry (empty when unregistered)."""
    key = (row["site"], row["lab"], row["device"])
    eq = scope.inventory.equipment.get(key) if scope.inventory else None
    return EquipmentRow(
        **row,
        **funded(eq.funding if eq else None),
        description=eq.description if eq else "",
        cost=eq.cost if eq else None,
        purchased=eq.purchased if eq else None,
        collaudo=eq.collaudo if eq else None,
        sessions=sessions.get(key, 0),
        cost_per_hour=per_hour.get(key),
        agent=versions.get(key),
    )


def _framework(scope: Scope) -> list[FrameworkRow]:
    """Section 1: assets per fund, call and CUP, with their durability and retention."""
    inv = scope.inventory
    if inv is None:
        return []
    framework: dict[tuple[str, str, str], FrameworkRow] = {}
    assets = [e for e in inv.equipment.values() if _in(scope, e.site, e.lab, e.id)]
    financed: list[Equipment | Software] = [*assets, *inv.software.values()]
    for a in financed:
        entry = framework.setdefault(
            (a.funding.fund, a.funding.call, a.funding.cup),
            FrameworkRow(
                **funded(a.funding),
                assets=0,
                cost=0.0,
                final_payment=None,
                durability_until=None,
                retention_until=None,
            ),
        )
        entry["assets"] += 1
        entry["cost"] += a.cost or 0.0
        final = a.final_payment if isinstance(a, Equipment) else None
        if final and (entry["final_payment"] is None or final > entry["final_payment"]):
            entry["final_payment"] = final
    for entry in framework.values():
        entry["durability_until"] = _years_after(entry["final_payment"], DURABILITY_YEARS)
        entry["retention_until"] = _years_after(entry["final_payment"], RETENTION_YEARS)
    return sorted(framework.values(), key=lambda e: (e["fund"], e["cup"]))


def _availability(scope: Scope) -> list[AvailabilityRow]:
    """Section 3: each lab's declared hours and closures, and its open time in the window."""
    inv = scope.inventory
    if inv is None:
        return []
    return [
        AvailabilityRow(
            site=site,
            lab=lab_id,
            name=lab.name,
            hours=_hours_text(lab.hours),
            closures=[
                Closure({"from": c.start, "to": c.end, "reason": c.reason}) for c in lab.closures
            ],
            available_s=scope.lab_available_s(site, lab_id, scope.start_ms, scope.end_ms),
        )
        for (site, lab_id), lab in sorted(inv.labs.items())
        if _in(scope, site, lab_id, None)
    ]


def _in(scope: Scope, site: str, lab: str, device: str | None) -> bool:
    if device is None:
        return scope.filters.matches_lab(site, lab)
    return scope.filters.matches((site, lab, device))


def _count_versions(versions: dict[DeviceKey, str]) -> list[AgentVersion]:
    counts: dict[str, int] = defaultdict(int)
    for version in versions.values():
        counts[version] += 1
    return [AgentVersion(version=v, devices=n) for v, n in sorted(counts.items())]


def _monthly(scope: Scope) -> tuple[list[MonthRow], list[MonthOpenness]]:
    """Per lab and month: utilisation; per month: openness; from the scope's month facts
    (one read for the whole report), unregistered devices left out."""
    members: dict[tuple[str, str], list[Member]] = defaultdict(list)
    for m in scope.members():  # each identity in the lab it was in
        if m.tenure is None or overlaps(m.tenure, scope.start_ms, scope.end_ms):
            members[(m.key[0], m.key[1])].append(m)
    spans = []
    per_lab: dict[tuple[int, str, str], Totals] = defaultdict(Totals)
    per_cat: dict[int, dict[str, float]] = defaultdict(lambda: dict.fromkeys(CATEGORIES, 0.0))
    for i, month in enumerate(scope.facts(View.lab, Every.month)):
        spans.append((month.start_ms, month.end_ms))
        for (site, lab, _d, _k, category), totals in month.facts.items():
            per_lab[(i, site, lab)].add(totals.seconds)
            per_cat[i][category] = per_cat[i].get(category, 0.0) + totals.in_use_s
    months = []
    for i, (a, b) in enumerate(spans):
        for (site, lab), everyone in sorted(members.items()):
            there = [m for m in everyone if m.tenure is None or overlaps(m.tenure, a, b)]
            f = figures.lab_figures(scope, there, per_lab.get((i, site, lab), Totals()), a, b)
            months.append(
                MonthRow(
                    site=site,
                    lab=lab,
                    period_start_ms=a,
                    period_end_ms=b,
                    in_use_s=f["in_use_s"],
                    in_use_open_s=f["in_use_open_s"],
                    after_hours_s=f["after_hours_s"],
                    observed_s=f["observed_s"],
                    observed_open_s=f["observed_open_s"],
                    available_s=f["available_s"],
                    utilisation=f["utilisation"],
                    coverage=f["coverage"],
                    devices=f.get("devices", 0),
                )
            )
    openness = []
    for i, (a, b) in enumerate(spans):
        cats = per_cat.get(i, dict.fromkeys(CATEGORIES, 0.0))
        total = sum(cats.values())
        external = sum(cats.get(c, 0.0) for c in EXTERNAL_CATEGORIES)
        openness.append(
            MonthOpenness(
                period_start_ms=a,
                period_end_ms=b,
                in_use_s=total,
                external_s=external,
                quota_esterna=external / total if total else None,
                categories=cats,
            )
        )
    return months, openness
