"""Admin routes for closed periods: list them, close one (the evidence package is written
before the answer). Mounted beside the read API by ``labmeter.server``."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from labmeter.api.auth import Admin
from labmeter.api.deps import ConfigDep
from labmeter.contract import SEGMENT_PATTERN
from labmeter.errors import EvidenceError
from labmeter.evidence.close import close_period, list_closures
from labmeter.periods import Closure
from labmeter.timeparse import iso, parse_time

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Admin])


class PeriodIn(BaseModel):
    start: str  # RFC 3339 or epoch seconds: a local midnight
    end: str  # exclusive: a local midnight
    site: str = Field("", pattern=f"^({SEGMENT_PATTERN})?$")  # "" = every site


class PeriodOut(BaseModel):
    id: int
    start: str
    end: str
    site: str
    state: str  # "closing" (data refused, package being written) or "closed"
    manifest_sha256: str
    archive: str
    # How this closure differs from the archive folder's record of its close ("" = it agrees).
    record: str = ""


def _period(c: Closure, record: str = "") -> PeriodOut:
    return PeriodOut(
        id=c.id, start=iso(c.start_ms), end=iso(c.end_ms), site=c.site, state=c.state,
        manifest_sha256=c.manifest_sha256, archive=c.archive, record=record,
    )  # fmt: skip


@router.get("/periods", response_model=list[PeriodOut])
def list_periods(config: ConfigDep) -> list[PeriodOut]:
    """Closed periods, oldest first: samples and events in them are refused. ``record``
    names a closure that differs from the archive folder's record of its close."""
    closures, differ = list_closures(config)
    return [_period(c, differ.get(c.id, "")) for c in closures]


@router.post("/periods", response_model=PeriodOut, status_code=201)
def close(config: ConfigDep, period: PeriodIn) -> PeriodOut:
    """Close a period and write its evidence package, as ``labmeter period close`` does.

    Answers when the package is complete (a year of a region takes tens of seconds); 409
    when the window overlaps a closed one, the archive folder is not writable or the
    signing key is missing.
    """
    try:
        start_ms, end_ms = parse_time(period.start), parse_time(period.end)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    try:
        closed = close_period(config, start_ms, end_ms, period.site)
    except EvidenceError as exc:
        raise HTTPException(409, str(exc)) from exc
    return _period(closed.closure)
