"""Admin routes: API keys (creation stays on the CLI: a token is shown once, locally) and
closed periods."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as FastApiPath
from pydantic import BaseModel, Field

from labmeter.api.auth import Admin
from labmeter.api.keys import KeyStore
from labmeter.api.timeparse import iso, parse_time
from labmeter.errors import EvidenceError
from labmeter.periods import Closure

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Admin])


class KeyInfo(BaseModel):
    id: int
    name: str
    role: str
    created: datetime
    revoked: datetime | None


def _keys(request: Request) -> KeyStore:
    keys: KeyStore = request.app.state.keys
    return keys


@router.get("/apikeys", response_model=list[KeyInfo])
def list_keys(request: Request) -> list[KeyInfo]:
    """Every key ever created (never the token: only its hash is stored)."""
    return [
        KeyInfo(
            id=k.id,
            name=k.name,
            role=k.role.value,
            created=datetime.fromtimestamp(k.created, UTC),
            revoked=datetime.fromtimestamp(k.revoked, UTC) if k.revoked else None,
        )
        for k in _keys(request).list()
    ]


@router.delete("/apikeys/{key_id}", status_code=204)
def revoke_key(
    request: Request,
    # Bounded to SQLite's INTEGER range: a larger id is a 422, not a 500 (found by fuzzing).
    key_id: Annotated[int, FastApiPath(ge=1, le=2**63 - 1)],
) -> None:
    """Revoke a key at once; the next request made with it gets 401."""
    if not _keys(request).revoke(key_id):
        raise HTTPException(404, f"no active key {key_id}")


class PeriodIn(BaseModel):
    start: str  # RFC 3339 or epoch seconds: a local midnight
    end: str  # exclusive: a local midnight
    site: str = Field("", pattern=r"^([a-z0-9_-]{1,64})?$")  # "" = every site


class PeriodOut(BaseModel):
    id: int
    start: str
    end: str
    site: str
    state: str  # "closing" (data refused, package being written) or "closed"
    manifest_sha256: str
    archive: str


def _period(c: Closure) -> PeriodOut:
    return PeriodOut(
        id=c.id, start=iso(c.start_ms), end=iso(c.end_ms), site=c.site, state=c.state,
        manifest_sha256=c.manifest_sha256, archive=c.archive,
    )  # fmt: skip


@router.get("/periods", response_model=list[PeriodOut])
def list_periods(request: Request) -> list[PeriodOut]:
    """Closed periods, oldest first: samples and events in them are refused."""
    from labmeter.evidence.close import list_closures

    return [_period(c) for c in list_closures(request.app.state.config)]


@router.post("/periods", response_model=PeriodOut, status_code=201)
def close_period(request: Request, period: PeriodIn) -> PeriodOut:
    """Close a period and write its evidence package, as ``labmeter period close`` does.

    Answers when the package is complete (a year of a region takes tens of seconds); 409
    when the window overlaps a closed one, the archive folder is not writable or the
    signing key is missing.
    """
    from labmeter.evidence.close import close_period as close

    try:
        start_ms, end_ms = parse_time(period.start), parse_time(period.end)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    try:
        closed = close(request.app.state.config, start_ms, end_ms, period.site)
    except EvidenceError as exc:
        raise HTTPException(409, str(exc)) from exc
    return _period(closed.closure)
