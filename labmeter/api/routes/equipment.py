"""The inventory as the API sees it, and the devices it does not list."""

from __future__ import annotations

import dataclasses
from datetime import date

from fastapi import APIRouter
from pydantic import BaseModel

from labmeter.api.auth import Viewer
from labmeter.api.deps import ScopeDep

router = APIRouter(prefix="/api/v1", tags=["equipment"], dependencies=[Viewer])


class EquipmentRow(BaseModel):
    site: str
    lab: str
    device: str
    kind: str
    description: str = ""
    fund: str = ""
    call: str = ""
    cup: str = ""
    cost: float | None = None
    purchased: date | None = None
    collaudo: date | None = None
    final_payment: date | None = None
    pnrr: bool = False  # PNRR-funded: non-commercial use only
    since: date | None = None  # its current identity holds from then (None: always)
    former: list[str] = []  # former identities, oldest first: "lab/device until date"
    seen: bool  # has announced itself on MQTT (under its current identity)


class UnregisteredDevice(BaseModel):
    site: str
    lab: str
    device: str


class EquipmentList(BaseModel):
    inventory: str | None  # the file it came from
    equipment: list[EquipmentRow]
    unregistered: list[UnregisteredDevice]  # seen on MQTT, missing from the inventory


@router.get("/equipment", response_model=EquipmentList)
def equipment(scope: ScopeDep) -> EquipmentList:
    """Registered equipment within the filters; devices seen but not registered, apart."""
    inv = scope.inventory
    rows = []
    if inv is not None:
        for key in sorted(scope.registered()):
            eq = inv.equipment[key]
            fields = dataclasses.asdict(eq)
            fields |= fields.pop("funding")  # flat, as every row shows it
            fields["device"] = fields.pop("id")
            del fields["line"]  # where it stands in the file: not part of the row
            fields["since"] = eq.identities[-1].since
            fields["former"] = eq.former
            del fields["history"]
            rows.append(EquipmentRow(**fields, seen=key in scope.seen))
    return EquipmentList(
        inventory=inv.path if inv else None,
        equipment=rows,
        unregistered=[
            UnregisteredDevice(site=s, lab=lab, device=d) for s, lab, d in scope.unregistered()
        ],
    )
