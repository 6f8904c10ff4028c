"""Utilisation with its denominator and its coverage, grouped and per calendar period."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel

from labmeter.api import figures
from labmeter.api.auth import Viewer
from labmeter.api.closed import SEALED_HEADER, utilisation_rows
from labmeter.api.deps import FiltersDep, ServicesDep, WindowDep, get_scope
from labmeter.api.figures import GroupBy
from labmeter.api.scope import Every
from labmeter.timeparse import iso

router = APIRouter(prefix="/api/v1", tags=["utilisation"], dependencies=[Viewer])


class Iso22400Figures(BaseModel):
    """ISO 22400-2 time elements beside labmeter's names (docs/numbers.md)."""

    planned_busy_time_s: float | None  # PBT = available_s: the opening hours
    actual_production_time_s: float  # APT = in_use_open_s
    actual_unit_setup_time_s: float  # AUST = setup_s
    availability: float | None  # APT / PBT = utilisation


class UtilisationRow(BaseModel):
    site: str | None = None
    lab: str | None = None
    device: str | None = None
    kind: str | None = None
    category: str | None = None
    period_start: str
    period_end: str
    devices: int | None = None
    in_use_s: float  # all in-use time in the period, after hours too
    in_use_open_s: float  # in-use time within opening hours: the utilisation numerator
    after_hours_s: float | None  # in_use_s - in_use_open_s; None: unregistered
    observed_s: float
    observed_open_s: float  # observed time within opening hours: the coverage numerator
    setup_s: float  # machines: Executing in Setup (or Maintenance), OPC 40001-1
    alarm_s: float
    off_s: float
    available_s: float | None  # opening hours (minus closures, holidays); None: unregistered
    utilisation: float | None  # in_use_open / available, never above 1
    coverage: float | None  # observed_open / available; low coverage is a gap, not idleness
    iso22400: Iso22400Figures  # the same seconds under ISO 22400-2's names
    registered: bool | None = None  # device rows: listed in the inventory
    former: list[str] | None = None  # an asset's former identities: "lab/device until date"
    outside_period_s: float | None = None  # observed under an identity outside its period


@router.get("/utilisation", response_model=list[UtilisationRow])
def utilisation(
    services: ServicesDep,
    window: WindowDep,
    filters: FiltersDep,
    response: Response,
    group_by: GroupBy = GroupBy.device,
    every: Every | None = None,
) -> list[UtilisationRow]:
    """In-use, observed and available hours per group and period.

    Available time comes from the inventory's opening hours; without an inventory it is the
    whole window for every device that ever announced itself (a silent device stays in the
    denominator). Unregistered devices appear in device rows only, never in aggregates. A
    closed period's rows per device and per lab come from its evidence package (header
    ``X-Labmeter-Sealed``).
    """
    sealed = services.closed.find(window.start_ms, window.end_ms, filters)
    rows = utilisation_rows(sealed, group_by, every) if sealed is not None else None
    if sealed is not None and rows is not None:
        response.headers[SEALED_HEADER] = sealed.closure.manifest_sha256
    else:
        try:
            rows = figures.utilisation(get_scope(services, window, filters), group_by, every)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
    return [
        UtilisationRow.model_validate(
            {**r, "period_start": iso(r["period_start_ms"]), "period_end": iso(r["period_end_ms"])}
        )
        for r in rows
    ]
