"""Utilisation with its denominator and its coverage, per device or per lab."""

from __future__ import annotations

from enum import StrEnum

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import FiltersDep, StoreDep, WindowDep

router = APIRouter(prefix="/api/v1", tags=["utilisation"])


class GroupBy(StrEnum):
    device = "device"
    lab = "lab"


class UtilisationRow(BaseModel):
    site: str
    lab: str
    device: str | None = None
    devices: int
    in_use_s: float
    observed_s: float
    available_s: float
    utilisation: float | None  # in_use / available
    coverage: float | None  # observed / available; low coverage is a gap, not idleness


@router.get("/utilisation", response_model=list[UtilisationRow])
def utilisation(
    store: StoreDep, window: WindowDep, filters: FiltersDep, group_by: GroupBy = GroupBy.device
) -> list[UtilisationRow]:
    """Until opening hours come from the inventory, available time is the whole window."""
    span_s = (window.end_ms - window.start_ms) / 1000
    groups: dict[tuple[str, ...], list[float]] = {}
    for totals in store.device_totals(window.start_ms, window.end_ms, filters.tags):
        key: tuple[str, ...] = (totals.site, totals.lab, totals.device)
        if group_by is GroupBy.lab:
            key = key[:2]
        acc = groups.setdefault(key, [0.0, 0.0, 0.0])
        acc[0] += totals.in_use_s
        acc[1] += totals.observed_s
        acc[2] += 1
    rows = []
    for key, (in_use, observed, devices) in sorted(groups.items()):
        available = span_s * devices
        rows.append(
            UtilisationRow(
                site=key[0],
                lab=key[1],
                device=key[2] if len(key) > 2 else None,
                devices=int(devices),
                in_use_s=round(in_use, 3),
                observed_s=round(observed, 3),
                available_s=available,
                utilisation=in_use / available if available else None,
                coverage=observed / available if available else None,
            )
        )
    return rows
