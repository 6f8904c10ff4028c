"""Live occupancy: each device's current state and when it was last heard from."""

from __future__ import annotations

import time

from fastapi import APIRouter
from pydantic import BaseModel

from labmeter.api.auth import Viewer
from labmeter.api.deps import ConfigDep, FiltersDep, InventoryDep, StoreDep
from labmeter.schema import DeviceKey
from labmeter.timeparse import iso

router = APIRouter(prefix="/api/v1", tags=["occupancy"], dependencies=[Viewer])


class DeviceOccupancy(BaseModel):
    site: str
    lab: str
    device: str
    state: str  # the last reported state, or "offline"
    last_state: str | None  # the state in the last sample, even when offline now
    online: bool
    last_seen: str | None
    last_seen_ms: int | None
    kind: str | None = None  # from the inventory
    registered: bool | None = None  # None: no inventory configured


@router.get("/occupancy", response_model=list[DeviceOccupancy])
def occupancy(
    store: StoreDep, config: ConfigDep, filters: FiltersDep, inventory: InventoryDep
) -> list[DeviceOccupancy]:
    """Offline when the device's status says so, or when nothing came for two intervals.

    Registered devices that never reported are listed too: offline, with no last state.
    """
    now = int(time.time() * 1000)
    samples = store.last_samples(filters)
    statuses = store.last_status(filters)
    out = []
    registered: set[DeviceKey] = set()
    if inventory is not None:
        registered = {k for k in inventory.equipment if filters.matches(k)}
    for key in sorted(samples.keys() | statuses.keys() | registered):
        sample = samples.get(key)
        status = statuses.get(key)
        seen = []
        last_state = None
        online = (status is not None or sample is not None) and (
            status is None or status["status"] == "online"
        )
        if status is not None and status["status"] == "online":
            seen.append(int(status["time"]))
        if sample is not None:
            # Sample points are stamped at the start of their interval.
            interval_ms = float(sample["interval_s"]) * 1000
            seen.append(int(sample["time"] + interval_ms))
            last_state = sample["state"]
            online = online and now - seen[-1] <= config.api.stale_intervals * interval_ms
        last_seen = max(seen, default=None)
        owner = inventory.owner(key, now) if inventory is not None else None
        former = owner is not None and owner.key != key
        if former and not online:
            continue  # an asset's former identity: the asset is listed where it is now
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
                kind=owner.kind if owner is not None else None,
                registered=None if inventory is None else owner is not None,
            )
        )
    return out


class LabOccupancy(BaseModel):
    site: str
    lab: str
    devices: int
    online: int
    states: dict[str, int]  # devices per current state (offline included)


@router.get("/occupancy/labs", response_model=list[LabOccupancy])
def occupancy_labs(
    store: StoreDep, config: ConfigDep, filters: FiltersDep, inventory: InventoryDep
) -> list[LabOccupancy]:
    """Live occupancy per lab: how many devices are in each state now."""
    labs: dict[tuple[str, str], LabOccupancy] = {}
    for row in occupancy(store, config, filters, inventory):
        lab = labs.setdefault(
            (row.site, row.lab),
            LabOccupancy(site=row.site, lab=row.lab, devices=0, online=0, states={}),
        )
        lab.devices += 1
        lab.online += int(row.online)
        lab.states[row.state] = lab.states.get(row.state, 0) + 1
    return [labs[k] for k in sorted(labs)]
