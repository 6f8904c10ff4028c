"""Who used the equipment: in-use time by stakeholder category (*quota esterna*), and company
use of PNRR-funded assets."""

from __future__ import annotations

from collections import defaultdict

from labmeter.api.figures import ratio
from labmeter.api.records import (
    CategoryShare,
    OpennessRow,
)
from labmeter.api.scope import Scope, cut_spans
from labmeter.api.usage import View
from labmeter.contract import CATEGORIES, EXTERNAL_CATEGORIES
from labmeter.schema import DeviceKey


def openness_of(scope: Scope) -> OpennessRow:
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
            quota_esterna=ratio(external, total),
            categories={
                c: CategoryShare(in_use_s=round(v, 3), share=ratio(v, total))
                for c, v in cats.items()
            },
        )
        if by_lab:
            row["site"], row["lab"] = site, lab
        out.append(row)
    return out


def company_use_of_pnrr(scope: Scope) -> dict[DeviceKey, float]:
    """In-use seconds of the ``company`` category on PNRR-funded devices over the window:
    read per device and category, but only that category's series."""
    inv = scope.inventory
    if inv is None:
        return {}
    pnrr = {i.key for eq in inv.equipment.values() if eq.funding.pnrr for i in eq.identities}
    if not any(scope.filters.matches(k) for k in pnrr):
        return {}
    spans = cut_spans([(scope.start_ms, scope.end_ms)], inv.edges(scope.start_ms, scope.end_ms))
    out: dict[DeviceKey, float] = defaultdict(float)
    facts = scope.reader.facts(scope.plan, spans, View.fact, categories=("company",))
    for (at, (site, lab, device, _k, _c)), t in facts.items():
        owner = inv.owner((site, lab, device), at)
        if owner is not None and owner.funding.pnrr:
            out[owner.key] += t.in_use_s
    return dict(out)
