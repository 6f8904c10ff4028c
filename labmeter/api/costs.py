"""Cost per hour of use: what each asset cost over the window ÷ the hours it was used.

An asset's cost over a window is its straight-line depreciation from the *collaudo* over the
useful life of its kind, plus its yearly running and licence costs
(``labmeter/inventory/depreciation.py``): a sum over time, so a year cut into months costs
what the year costs. Hours are in-use hours for equipment (after hours too), hours the program
was open for software licences. Per lab and fund: the costs of their assets ÷ their hours.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import date

from typing_extensions import TypedDict  # pydantic reads these as response models on 3.11

from labmeter.inventory import Equipment, Inventory, Software
from labmeter.inventory.depreciation import accrued, depreciation
from labmeter.schema import DeviceKey


class AssetCost(TypedDict):
    site: str
    lab: str  # "" for software: a licence belongs to the site
    asset: str
    asset_kind: str  # "equipment" or "software"
    kind: str  # the equipment's kind, or "software"
    description: str
    fund: str
    cost: float | None  # purchase cost
    useful_life_years: float
    collaudo: date | None  # software: its collaudo, else its purchase
    depreciation_eur: float
    running_eur: float
    licence_eur: float
    total_eur: float
    hours: float  # in use (equipment) or open (software)
    cost_per_hour: float | None
    note: str  # "no_collaudo" (no depreciation counted), "" otherwise


class CostGroup(TypedDict):
    site: str
    name: str  # the lab, or the fund
    assets: int
    total_eur: float
    hours: float
    cost_per_hour: float | None


class Costs(TypedDict):
    assets: list[AssetCost]
    labs: list[CostGroup]
    funds: list[CostGroup]
    useful_life_years: dict[str, float]  # per kind, as used (the inventory's, else defaults)


def _row(
    inv: Inventory, asset: Equipment | Software, hours: float, start_ms: int, end_ms: int
) -> AssetCost:
    tz = inv.tz
    if isinstance(asset, Software):
        kind, lab, yearly_licence = "software", "", asset.licence_cost or 0.0
        since = asset.collaudo or asset.purchased
    else:
        kind, lab, yearly_licence, since = asset.kind, asset.lab, 0.0, asset.collaudo
    life = inv.life_of(kind)
    dep = run = lic = 0.0
    if since is not None:
        if asset.cost:
            dep = depreciation(asset.cost, life, since, start_ms, end_ms, tz)
        run = accrued(asset.running_cost or 0.0, since, None, start_ms, end_ms, tz)
        lic = accrued(yearly_licence, since, None, start_ms, end_ms, tz)
    total = dep + run + lic
    return AssetCost(
        site=asset.site,
        lab=lab,
        asset=asset.id,
        asset_kind="software" if kind == "software" else "equipment",
        kind=kind,
        description=asset.description,
        fund=asset.funding.fund,
        cost=asset.cost,
        useful_life_years=life,
        collaudo=since,
        depreciation_eur=dep,
        running_eur=run,
        licence_eur=lic,
        total_eur=total,
        hours=hours,
        cost_per_hour=total / hours if hours else None,
        note="no_collaudo" if since is None and asset.cost else "",
    )


def costs(
    inv: Inventory,
    start_ms: int,
    end_ms: int,
    in_use_s: Mapping[DeviceKey, float],
    open_s: Mapping[tuple[str, str], float],
    wanted: Mapping[str, str | None],
) -> Costs:
    """Every asset within the filters (``wanted``: site, lab, device), its cost and hours."""
    site, lab, device = wanted.get("site"), wanted.get("lab"), wanted.get("device")
    rows = [
        _row(inv, eq, in_use_s.get(key, 0.0) / 3600, start_ms, end_ms)
        for key, eq in sorted(inv.equipment.items())
        if (not site or eq.site == site) and (not lab or eq.lab == lab)
        and (not device or eq.id == device)
    ]  # fmt: skip
    if not lab and not device:
        rows += [
            _row(inv, sw, open_s.get(key, 0.0) / 3600, start_ms, end_ms)
            for key, sw in sorted(inv.software.items())
            if not site or sw.site == site
        ]
    kinds = sorted({r["kind"] for r in rows})
    return Costs(
        assets=rows,
        labs=_groups(rows, lambda r: r["lab"], equipment_only=True),
        funds=_groups(rows, lambda r: r["fund"] or "-", equipment_only=False),
        useful_life_years={k: inv.life_of(k) for k in kinds},
    )


def _groups(
    rows: list[AssetCost], name_of: Callable[[AssetCost], str], equipment_only: bool
) -> list[CostGroup]:
    groups: dict[tuple[str, str], list[AssetCost]] = defaultdict(list)
    for r in rows:
        if equipment_only and r["asset_kind"] != "equipment":
            continue
        groups[(r["site"], str(name_of(r)))].append(r)
    out = []
    for (site, name), members in sorted(groups.items()):
        total = sum(r["total_eur"] for r in members)
        hours = sum(r["hours"] for r in members)
        out.append(
            CostGroup(
                site=site,
                name=name,
                assets=len(members),
                total_eur=total,
                hours=hours,
                cost_per_hour=total / hours if hours else None,
            )
        )
    return out
