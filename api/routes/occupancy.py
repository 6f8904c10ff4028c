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
        seen = []
        last_state = None
        online = status is None or status["status"] == "online"
        if status is not None and status["status"] == "online":
            seen.append(int(status["time"]))
        if sample is not None:
            # Sample points are stamped at the start of their interval.
            interval_ms = float(sample["interval_s"]) * 1000
            seen.append(int(sample["time"] + interval_ms))
            last_state = sample["state"]
            online = online and now - seen[-1] <= config.api.stale_intervals * interval_ms
        last_seen = max(seen, default=None)
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
