"""Live occupancy: each device's current state and when it was last heard from."""

from __future__ import annotations

import time

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import ConfigDep, FiltersDep, StoreDep
from api.timeparse import iso

router = APIRouter(prefix="/api/v1", tags=["occupancy"])


class DeviceOccupancy(BaseModel):
    site: str
    lab: str
    device: str
    state: str  # the last reported state, or "offline"
    last_state: str | None  # the state in the last sample, even when offline now
    online: bool
    last_seen: str | None
    last_seen_ms: int | None


@router.get("/occupancy", response_model=list[DeviceOccupancy])
def occupancy(store: StoreDep, config: ConfigDep, filters: FiltersDep) -> list[DeviceOccupancy]:
    """Offline when the device's status says so, or when nothing came for two intervals."""
    now = int(time.time() * 1000)
    samples = store.last_samples(filters.tags)
    statuses = store.last_status(filters.tags)
    out = []
    for key in sorted(samples.keys() | statuses.keys()):
        sample = samples.get(key)
        status = statuses.get(key)
        last_seen = max(
            (r["time"] for r in (sample, status) if r is not None and (r is sample or r["status"] == "online")),
            default=None,
        )
        online = status is None or status["status"] == "online"
        if sample is not None:
            stale_ms = config.api.stale_intervals * float(sample["interval_s"]) * 1000
            online = online and now - int(sample["time"]) <= stale_ms
        last_state = sample["state"] if sample is not None else None
        out.append(
            DeviceOccupancy(
                site=key[0],
                lab=key[1],
                device=key[2],
                state=(last_state or "unknown") if online else "offline",
                last_state=last_state,
                online=online,
                last_seen=iso(last_seen) if last_seen is not None else None,
                last_seen_ms=last_seen,
            )
        )
    return out
