"""Admin routes for API keys (creation stays on the CLI: a token is shown once, locally).
Closed periods have their own admin router, in the evidence role."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException
from fastapi import Path as FastApiPath
from pydantic import BaseModel

from labmeter.api.auth import Admin
from labmeter.api.deps import KeysDep

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Admin])


class KeyInfo(BaseModel):
    id: int
    name: str
    role: str
    created: datetime
    revoked: datetime | None


@router.get("/apikeys", response_model=list[KeyInfo])
def list_keys(keys: KeysDep) -> list[KeyInfo]:
    """Every key ever created (never the token: only its hash is stored)."""
    return [
        KeyInfo(
            id=k.id,
            name=k.name,
            role=k.role.value,
            created=datetime.fromtimestamp(k.created, UTC),
            revoked=datetime.fromtimestamp(k.revoked, UTC) if k.revoked else None,
        )
        for k in keys.list()
    ]


@router.delete("/apikeys/{key_id}", status_code=204)
def revoke_key(
    keys: KeysDep,
    # Bounded to SQLite's INTEGER range: a larger id is a 422, not a 500 (found by fuzzing).
    key_id: Annotated[int, FastApiPath(ge=1, le=2**63 - 1)],
) -> None:
    """Revoke a key at once; the next request made with it gets 401."""
    if not keys.revoke(key_id):
        raise HTTPException(404, f"no active key {key_id}")
