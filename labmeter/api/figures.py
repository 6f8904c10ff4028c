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

from collections import defaultdict
from enum import StrEnum
from typing import Literal, cast

from labmeter.api.records import (
    DeviceRow,
    Figures,
    GroupRow,
    Iso22400,
    UtilisationRow,
)
from labmeter.api.scope import Every, Member, PeriodAssets, Scope, overlaps
from labmeter.api.usage import Totals, View
from labmeter.schema import DeviceKey


class GroupBy(StrEnum):
    device = "device"
    lab = "lab"
    site = "site"
    kind = "kind"
    category = "category"


def ratio(num: float, den: float | None) -> float | None:
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
    setup = round(t.seconds["setup_s"], 3)
    out = Figures(
        in_use_s=round(t.in_use_s, 3),
        in_use_open_s=round(in_use_open, 3),
        after_hours_s=None if available is None else round(t.in_use_s - in_use_open, 3),
        observed_s=round(t.observed_s, 3),
        observed_open_s=round(observed_open, 3),
        setup_s=setup,
        alarm_s=round(t.seconds["alarm_s"], 3),
        off_s=round(t.seconds["off_s"], 3),
        available_s=available,
        utilisation=ratio(in_use_open, available),
        coverage=ratio(observed_open, available),
        iso22400=Iso22400(
            planned_busy_time_s=available,
            actual_production_time_s=round(in_use_open, 3),
            actual_unit_setup_time_s=setup,
            availability=ratio(in_use_open, available),
        ),
    )
    if devices is not None:
        out["devices"] = devices
    return out
